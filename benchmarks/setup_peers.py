"""Create one isolated virtualenv per peer framework under ``.bench/``.

Peers must never share an interpreter with RustyBT or with each other: zipline-reloaded pins
pandas < 3, nautilus_trader pins its own Cython stack, and backtrader is old enough to trip over
new libraries. Each venv is built with ``python3 -m venv`` + pip, by package name only, and a
stamp file records a finished install so rerunning is cheap (idempotent). A failed install
leaves ``.bench/install-<peer>.log`` and no stamp; the harness reports the reason instead of
numbers.

Usage: ``python -m benchmarks.setup_peers [zipline backtrader nautilus]``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / ".bench"


@dataclass(frozen=True)
class PeerSpec:
    """What to install for one peer; paths are resolved against a bench folder."""

    name: str
    requirements: tuple[str, ...]
    import_name: str

    def venv(self, bench_dir: Path = BENCH_DIR) -> Path:
        return Path(bench_dir) / f"venv-{self.name}"

    def python(self, bench_dir: Path = BENCH_DIR) -> Path:
        return self.venv(bench_dir) / "bin" / "python"

    def stamp(self, bench_dir: Path = BENCH_DIR) -> Path:
        return self.venv(bench_dir) / ".installed"

    def log(self, bench_dir: Path = BENCH_DIR) -> Path:
        return Path(bench_dir) / f"install-{self.name}.log"


PEERS: dict[str, PeerSpec] = {
    # zipline-reloaded 3.x still breaks on pandas 3, hence the explicit cap.
    "zipline": PeerSpec("zipline", ("zipline-reloaded", "pandas<3"), "zipline"),
    "backtrader": PeerSpec("backtrader", ("backtrader", "pandas"), "backtrader"),
    # 1.221.0 is the last release that ships Python 3.11 wheels.
    "nautilus": PeerSpec("nautilus", ("nautilus_trader==1.221.0",), "nautilus_trader"),
}


def is_installed(spec: PeerSpec, bench_dir: Path = BENCH_DIR) -> bool:
    """True when the peer's venv finished installing (stamp present and interpreter exists)."""
    return spec.stamp(bench_dir).exists() and spec.python(bench_dir).exists()


def install_failure(spec: PeerSpec, bench_dir: Path = BENCH_DIR) -> str | None:
    """The telling lines of a failed install log, or None if no failure was recorded."""
    log = spec.log(bench_dir)
    if is_installed(spec, bench_dir) or not log.exists():
        return None
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    tail = errors[-3:] if errors else lines[-3:]
    return " | ".join(tail)[:600] or "install failed (empty log)"


def ensure_peer(spec: PeerSpec, bench_dir: Path = BENCH_DIR, python: str = "python3") -> bool:
    """Create and populate the venv for ``spec`` unless already stamped. Returns success."""
    if is_installed(spec, bench_dir):
        return True
    bench_dir = Path(bench_dir)
    bench_dir.mkdir(parents=True, exist_ok=True)
    py = str(spec.python(bench_dir))
    steps = [
        [python, "-m", "venv", str(spec.venv(bench_dir))],
        [py, "-m", "pip", "install", "--upgrade", "pip", "wheel"],
        [py, "-m", "pip", "install", *spec.requirements],
        [py, "-c", f"import {spec.import_name}"],
    ]
    with spec.log(bench_dir).open("w") as log:
        for cmd in steps:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            try:
                proc = subprocess.run(
                    cmd, stdout=log, stderr=subprocess.STDOUT, timeout=1800, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.write(f"error: {exc}\n")
                return False
            if proc.returncode != 0:
                log.write(f"error: exit code {proc.returncode}\n")
                return False
    spec.stamp(bench_dir).write_text("ok\n")
    return True


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(PEERS)
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        print(f"unknown peer(s) {unknown}; choose from {sorted(PEERS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        spec = PEERS[name]
        ok = ensure_peer(spec)
        print(f"{name}: {'ok' if ok else 'FAILED, see ' + str(spec.log())}", flush=True)
        if not ok:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
