"""`rustybt run` and `rustybt ingest` from the command line."""

from __future__ import annotations

from typer.testing import CliRunner

from rustybt.cli.main import app

runner = CliRunner()


def test_run_backtests_the_quickstart_and_prints_a_summary(tmp_path):
    out = tmp_path / "results"
    res = runner.invoke(
        app,
        [
            "run",
            "-f",
            "examples/quickstart.py",
            "--bundle",
            "demo",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-03",
            "--no-progress",
            "--output",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Total return" in res.output and "Max drawdown" in res.output and "Sharpe" in res.output
    assert (out / "daily.parquet").exists() and (out / "transactions.parquet").exists()


def test_run_with_missing_bundle_exits_2_with_a_hint():
    res = runner.invoke(app, ["run", "-f", "examples/quickstart.py", "--bundle", "nope"])
    assert res.exit_code == 2
    assert "rustybt ingest" in res.output


def test_run_with_start_after_end_exits_2():
    res = runner.invoke(
        app,
        ["run", "-f", "examples/quickstart.py", "--start", "2024-01-10", "--end", "2024-01-05"],
    )
    assert res.exit_code == 2
    assert "after" in res.output


def test_ingest_reports_a_malformed_row_with_file_line_and_column(tmp_path):
    csv = tmp_path / "XYZ.csv"
    csv.write_text(
        "dt,open,high,low,close,volume\n"
        "2024-01-02,10.00,10.50,9.90,10.20,1000\n"
        "2024-01-03,10.20,abc,10.00,10.30,1200\n"
    )
    res = runner.invoke(app, ["ingest", "--bundle", "mine", str(csv)])
    assert res.exit_code == 2
    assert "XYZ.csv" in res.output and "line 3" in res.output and "high" in res.output


def test_ingest_then_backtest_on_the_new_bundle(tmp_path):
    csv = tmp_path / "XYZ.csv"
    rows = ["dt,open,high,low,close,volume"]
    for day in range(2, 20):
        rows.append(f"2024-01-{day:02d},10.00,10.50,9.90,10.{day:02d},1000")
    csv.write_text("\n".join(rows) + "\n")
    res = runner.invoke(app, ["ingest", "--bundle", "mine", str(csv)])
    assert res.exit_code == 0, res.output
    algo = tmp_path / "algo.py"
    algo.write_text(
        "from rustybt.algorithm import TradingAlgorithm\n"
        "class A(TradingAlgorithm):\n"
        "    def initialize(self):\n"
        "        self.x = self.symbol('XYZ')\n"
        "    def handle_data(self, context, data):\n"
        "        self.order_target(self.x, 10)\n"
    )
    res = runner.invoke(
        app,
        ["run", "-f", str(algo), "--bundle", "mine", "--data-frequency", "daily", "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    assert "Orders" in res.output


def _run_with_calendar(tmp_path, calendar):
    return runner.invoke(
        app,
        ["run", "-f", "examples/zipline_style.py", "--start", "2024-01-05", "--end",
         "2024-01-08", "--no-progress", "--output", str(tmp_path / calendar.replace("/", "_")),
         "--calendar", calendar],
    )  # fmt: skip


def test_run_calendar_option_sets_the_clock(tmp_path):
    import polars as pl

    equity = _run_with_calendar(tmp_path, "XNYS")
    always = _run_with_calendar(tmp_path, "24/7")
    assert equity.exit_code == 0 and always.exit_code == 0, equity.output + always.output
    assert pl.read_parquet(tmp_path / "XNYS" / "daily.parquet").height == 2  # Fri, Mon
    assert pl.read_parquet(tmp_path / "24_7" / "daily.parquet").height == 4  # every day


def test_run_calendar_option_refuses_unknown_and_absent_calendars(tmp_path):
    unknown = _run_with_calendar(tmp_path, "NOPE")
    assert unknown.exit_code == 2 and "not a known trading calendar" in unknown.output
    absent = _run_with_calendar(tmp_path, "XLON")  # a real calendar, no asset on it
    assert absent.exit_code == 2 and "holds no asset on that calendar" in absent.output
