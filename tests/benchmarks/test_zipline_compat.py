"""The compat harness renames zipline imports and nothing else; its generated data is sane."""

from __future__ import annotations

import csv

from benchmarks.zipline_compat import EQUITIES, generate_data, rename_imports


def test_rename_imports_touches_import_lines_only():
    src = (
        "from zipline.api import order, symbol\n"
        "from zipline.finance import commission, slippage\n"
        "import zipline\n"
        "    from zipline.pipeline.factors import RSI\n"
        "# zipline.api is great; see zipline docs\n"
        "name = 'zipline'\n"
        "from ziplinex import y\n"
    )
    out = rename_imports(src).splitlines()
    assert out[0] == "from rustybt.api import order, symbol"
    assert out[1] == "from rustybt.finance import commission, slippage"
    assert out[2] == "import rustybt"
    assert out[3] == "    from rustybt.pipeline.factors import RSI"
    assert out[4:] == src.splitlines()[4:]


def test_generated_data_is_valid_ohlcv_on_nyse_sessions(tmp_path):
    eq_dir, cr_dir = generate_data(tmp_path)
    assert sorted(p.stem for p in eq_dir.glob("*.csv")) == sorted(EQUITIES)
    with (eq_dir / "AAPL.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    with (cr_dir / "BTCUSD.csv").open() as fh:
        crypto = list(csv.DictReader(fh))
    assert rows[0]["date"] == "2010-01-04" and rows[-1]["date"] == "2013-12-31"
    assert len(crypto) > len(rows)  # 24/7: weekends too
    for r in rows:
        o, h, lo, c = (float(r[k]) for k in ("open", "high", "low", "close"))
        assert lo <= min(o, c) <= max(o, c) <= h and lo > 0
        assert int(r["volume"]) > 0
