"""Every fenced ``python`` block in README.md and docs/ (sub-folders too) runs as written.

Conventions (docs/index.md, "Code in these docs"): a block right after an HTML comment
``<!-- fragment -->`` is a fragment — only compiled (top-level ``await`` allowed), not run;
a block after ``<!-- continues -->`` runs in the names the previous block of the same page
left. Every other block runs on its own, in a scratch folder (with ``examples/`` linked in)
and an isolated ``$RUSTYBT_ROOT``, so nothing lands in the checkout. A failure names the
page, the block's line and the error.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_OPEN = re.compile(r"^\s*```\s*python\b")
_CLOSE = re.compile(r"^\s*```\s*$")
_MARK = re.compile(r"^\s*<!--\s*(fragment|continues)\b.*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    code: str
    mark: str | None  # "fragment", "continues" or None

    @property
    def name(self) -> str:
        return _rel(self.page)

    @property
    def where(self) -> str:
        return f"{self.name}:{self.line}"


def _rel(page: Path) -> str:
    try:
        return str(page.relative_to(REPO))
    except ValueError:
        return page.name


def doc_pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def python_blocks(page: Path) -> list[Block]:
    """The page's ```python blocks, each with the marker comment just above it, if any."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if _OPEN.match(lines[i]):
            end = i + 1
            while end < len(lines) and not _CLOSE.match(lines[end]):
                end += 1
            if end == len(lines):
                raise AssertionError(f"{_rel(page)}:{i + 1}: unclosed ```python block")
            above = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            mark = _MARK.match(above)
            blocks.append(
                Block(page, i + 1, "\n".join(lines[i + 1 : end]), mark.group(1) if mark else None)
            )
            i = end
        i += 1
    return blocks


def _pages_blocks() -> list[tuple[Path, list[Block]]]:
    return [(page, python_blocks(page)) for page in doc_pages()]


PAGES = [(p, b) for p, b in _pages_blocks() if b]


def _compile(block: Block):
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if block.mark == "fragment" else 0
    # Blank lines in front keep the reported line numbers equal to the page's.
    source = "\n" * block.line + block.code
    return compile(source, block.name, "exec", flags=flags)


def _fail(block: Block, exc: BaseException) -> None:
    code = block.code.splitlines()

    def source(lineno: int | None) -> str:
        i = (lineno or 0) - block.line - 1  # the block's first code line is line+1
        return code[i].strip() if 0 <= i < len(code) else ""

    frames = [
        f"  line {f.lineno}: {source(f.lineno)}"
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename == block.name
    ]
    pytest.fail(
        f"{block.where}: the python block starting here failed: {type(exc).__name__}: {exc}\n"
        + "\n".join(frames)
        + "\n(mark a block not meant to run with <!-- fragment --> above it; see docs/index.md)",
        pytrace=False,
    )


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("page", "blocks"), PAGES, ids=[_rel(p) for p, _ in PAGES])
def test_every_python_block_of_the_page_runs_as_written(page, blocks, scratch):
    run_blocks(blocks)


def run_blocks(blocks: list[Block]) -> None:
    """Run a page's blocks in order; the first failure fails the test naming its place."""
    namespace: dict = {}
    for block in blocks:
        try:
            code = _compile(block)
        except SyntaxError as exc:
            _fail(block, exc)
        if block.mark == "fragment":
            continue
        if block.mark != "continues":
            namespace = {"__name__": "__docs_snippet__"}
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(code, namespace)
        except BaseException as exc:  # noqa: BLE001 - report any failure with its place
            _fail(block, exc)


def test_a_failing_block_is_reported_with_page_line_and_failing_code(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# t\n\n```python\nx = 1\ny = undefined_name\n```\n")
    with pytest.raises(pytest.fail.Exception) as failed:
        run_blocks(python_blocks(page))
    msg = str(failed.value)
    assert "p.md:3: the python block starting here failed: NameError" in msg
    assert "line 5: y = undefined_name" in msg
    page.write_text("<!-- fragment -->\n```python\nawait later()\n```\n```python\nawait x\n```\n")
    with pytest.raises(pytest.fail.Exception, match="p.md:5: .*SyntaxError"):
        run_blocks(python_blocks(page))


def test_the_extractor_sees_markers_and_reports_unclosed_blocks(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "text\n<!-- fragment -->\n\n```python\nawait x\n```\n"
        "```python\ny = 1\n```\n<!-- continues -->\n```python\nz = y\n```\n"
    )
    blocks = python_blocks(page)
    assert [(b.line, b.mark) for b in blocks] == [(4, "fragment"), (7, None), (11, "continues")]
    page.write_text("```python\nx = 1\n")
    with pytest.raises(AssertionError, match="unclosed"):
        python_blocks(page)
