"""`revwh sql` and `revwh report` on bad input and bad output: one clear line, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.cli_helpers import run_cli as run


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose warehouse.duckdb holds one table of 200k rows (enough to fill a pipe)."""
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(200000)")
    return tmp_path


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("", "no SQL statement given"),
        ("   ", "no SQL statement given"),
        ("-- only a comment", "no SQL statement given"),
        ("SELECT 1; SELECT 2", "one SQL statement at a time, got 2"),
    ],
)
def test_sql_needs_exactly_one_statement(
    data_dir: Path, capsys: pytest.CaptureFixture[str], sql: str, message: str
) -> None:
    assert run(["sql", sql, "--data-dir", str(data_dir)]) == 2  # unusable input, like a bad argument
    captured = capsys.readouterr()
    assert captured.err.strip() == f"revwh sql: error: {message}" and captured.out == ""


def test_sql_with_a_trailing_semicolon_is_one_statement(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sql", "SELECT count(*) AS n FROM numbers;", "--data-dir", str(data_dir), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "200000"]


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_sql_into_a_pipe_closed_early_stops_quietly(data_dir: Path, fmt: str) -> None:
    """`revwh sql … | head -1`: the reader leaves; no BrokenPipeError traceback, SIGPIPE's exit code."""
    command = [sys.executable, "-m", "pipelines.cli", "sql", "SELECT * FROM numbers", "--data-dir", str(data_dir)]
    proc = subprocess.Popen([*command, "--format", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert first and err == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_sql_output_that_cannot_be_written_is_one_line(data_dir: Path) -> None:
    command = [sys.executable, "-m", "pipelines.cli", "sql", "SELECT 42", "--data-dir", str(data_dir)]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "revwh sql: error: cannot write the result: No space left on device"


def test_sql_on_a_data_directory_that_cannot_be_read_is_one_line_and_exit_2(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root ignores permissions here: the refusal is simulated where the warehouse is opened. It was reported
    as 'cannot write the result', exit 1."""
    from pipelines.warehouse import query

    def refuse(where: Path) -> None:
        raise PermissionError(13, "Permission denied", str(where))

    monkeypatch.setattr(query, "connect_read_only", refuse)
    assert run(["sql", "SELECT 1", "--data-dir", str(data_dir)]) == 2
    assert capsys.readouterr().err == f"revwh sql: error: cannot read {data_dir}: Permission denied\n"


def test_report_into_a_folder_that_cannot_be_made(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = data_dir / "a-file"
    blocker.write_text("x")
    assert run(["report", "--data-dir", str(data_dir), "--out", str(blocker / "report.html")]) == 2
    err = capsys.readouterr().err.strip()
    target = blocker / "report.html"
    assert err == f"revwh report: error: cannot write the report to {target}: {blocker} is a file, not a folder"
    assert run(["report", "--data-dir", str(data_dir), "--out", str(blocker / "deeper" / "report.html")]) == 2
    assert capsys.readouterr().err.strip().endswith(f": {blocker} is a file, not a folder")


def test_report_on_a_warehouse_without_marts(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["report", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"revwh report: error: cannot read {data_dir / 'warehouse.duckdb'}: Catalog Error")
    assert "\n" not in err


def test_report_on_a_file_that_is_not_duckdb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "warehouse.duckdb").write_text("not a database")
    assert run(["report", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"revwh report: error: cannot read {tmp_path / 'warehouse.duckdb'}: ") and "\n" not in err


def test_report_days_from_the_environment_must_be_a_number(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVWH_REPORT_DAYS", "abc")
    assert run(["report", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "revwh report: error: REVWH_REPORT_DAYS must be 0 (all history) or a number of days, got 'abc'"


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("COPY (SELECT 42 AS x) TO '{warehouse}' (FORMAT csv)", "COPY"),
        ("COPY numbers TO '{elsewhere}'", "COPY"),
        ("EXPORT DATABASE '{elsewhere}'", "EXPORT"),
        ("ATTACH '{elsewhere}' AS other", "ATTACH"),
        ("DELETE FROM numbers", "DELETE"),
        ("VACUUM", "VACUUM"),
        # EXPLAIN runs what it explains in these forms: what it explains is checked like a statement
        ("EXPLAIN ANALYZE COPY (SELECT 42 AS x) TO '{warehouse}' (FORMAT csv)", "COPY"),
        ("explain analyse COPY numbers TO '{elsewhere}'", "COPY"),
        ("EXPLAIN (ANALYZE false) COPY numbers TO '{elsewhere}'", "COPY"),
        ("EXPLAIN (FORMAT json, ANALYZE true) COPY numbers TO '{elsewhere}'", "COPY"),
        ("/* x */ EXPLAIN COPY numbers TO '{elsewhere}'", "COPY"),
        ("EXPLAIN ANALYZE DELETE FROM numbers", "DELETE"),
    ],
)
def test_sql_refuses_statements_that_write(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], sql: str, kind: str
) -> None:
    """COPY … TO pointed at warehouse.duckdb used to overwrite it with a CSV, read-only attach or not."""
    warehouse = data_dir / "warehouse.duckdb"
    before = warehouse.read_bytes()
    elsewhere = tmp_path_factory.mktemp("out") / "export"
    statement = sql.format(warehouse=warehouse, elsewhere=elsewhere)
    assert run(["sql", statement, "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"revwh sql: error: {kind} statements are refused") and "--format csv" in err
    assert warehouse.read_bytes() == before and not elsewhere.exists()


@pytest.mark.parametrize(
    "sql",
    ["SHOW ALL TABLES", "DESCRIBE numbers", "SUMMARIZE numbers", "EXPLAIN SELECT 1", "PRAGMA show_tables",
     "CALL duckdb_tables()", "WITH a AS (SELECT 1 AS x) SELECT * FROM a", "FROM numbers LIMIT 1"],
)  # fmt: skip
def test_sql_reads_with_every_kind_of_query(data_dir: Path, capsys: pytest.CaptureFixture[str], sql: str) -> None:
    assert run(["sql", sql, "--data-dir", str(data_dir), "--format", "csv"]) == 0
    assert capsys.readouterr().out


def test_sql_table_cells_keep_small_and_huge_doubles(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT 1234.5::DOUBLE AS money, 3.9315758e-05::DOUBLE AS rate, 1e300::DOUBLE AS huge, 0::DOUBLE AS zero"
    assert run(["sql", sql, "--data-dir", str(data_dir)]) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert [cell.strip() for cell in row.split("|")] == ["1234.500000", "3.931576e-05", "1.000000e+300", "0.000000"]


def test_sql_table_cells_with_line_ends_span_lines(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A text with line ends (a mart's description, an EXPLAIN plan) continues on the next lines, marked +, as psql
    does; a CR or a tab inside a text is shown escaped; CJK characters count two columns."""
    sql = (
        "SELECT 'grain: a' || chr(10) || 'audit: bb' AS doc, 'x' || chr(13) || chr(9) || 'y' AS raw, 2 AS n, "
        "'日本' AS region, -0.0::DOUBLE AS share"
    )
    assert run(["sql", sql, "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "doc       | raw    | n | region | share",
        "----------+--------+---+--------+---------",
        "grain: a +| x\\r\\ty | 2 | 日本   | 0.000000",
        "audit: bb |        |   |        |",
        "(1 row)",
    ]
    assert run(["sql", "EXPLAIN SELECT 1", "--data-dir", str(data_dir)]) == 0
    plan = capsys.readouterr().out.splitlines()
    assert plan[2].startswith("physical_plan | ") and plan[2].endswith("+") and len(plan) > 5


def test_sql_prints_duckdb_values_not_python_ones(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Months stay months, infinity stays infinity, a FLOAT is not widened, NULL and '' differ in csv."""
    sql = (
        "SELECT age(DATE '2025-03-04', DATE '2025-01-01') AS age, INTERVAL 1 YEAR AS year, 'infinity'::DATE AS inf, "
        "0.1::FLOAT AS f, [1, NULL] AS l, true AS b, NULL::VARCHAR AS nothing, '' AS empty, 'a,\"b' AS quoted, "
        "'2025-01-01 10:00:00.123456789'::TIMESTAMP_NS AS ns"
    )
    assert run(["sql", sql, "--data-dir", str(data_dir), "--format", "csv"]) == 0
    assert capsys.readouterr().out == (
        "age,year,inf,f,l,b,nothing,empty,quoted,ns\n"
        '2 months 3 days,1 year,infinity,0.1,"[1, NULL]",true,,"","a,""b",2025-01-01 10:00:00.123456789\n'
    )
    assert run(["sql", sql, "--data-dir", str(data_dir), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"age": "2 months 3 days", "year": "1 year", "inf": "infinity", "f": 0.1, "l": [1, None], "b": True,
         "nothing": None, "empty": "", "quoted": 'a,"b', "ns": "2025-01-01 10:00:00.123456789"}
    ]  # fmt: skip
    assert run(["sql", sql, "--data-dir", str(data_dir)]) == 0
    row = [cell.strip() for cell in capsys.readouterr().out.splitlines()[2].split(" | ")]
    assert row == ["2 months 3 days", "1 year", "infinity", "0.100000", "[1, NULL]", "true", "NULL", "", 'a,"b',
                   "2025-01-01 10:00:00.123456789"]  # fmt: skip


def test_sql_json_keeps_every_column_and_nested_values(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A name used twice is numbered, DECIMALs are numbers, a MAP with date keys and NaN inside a LIST are
    valid JSON (they used to crash with a traceback), and a string that reads NaN stays a string."""
    sql = (
        "SELECT 1 AS n, 2 AS n, 0.05 AS rate, -72.26::DECIMAL(18, 2) AS net, map([DATE '2025-03-01'], [3]) AS m, "
        "[1.0, 'nan'::DOUBLE, '-inf'::DOUBLE] AS l, {'a': 'inf'::DOUBLE, 'b': 'NaN'} AS s, 'Infinity' AS t"
    )
    assert run(["sql", sql, "--data-dir", str(data_dir), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"n": 1, "n_1": 2, "rate": 0.05, "net": -72.26, "m": {"2025-03-01": 3}, "l": [1.0, None, None],
         "s": {"a": None, "b": "NaN"}, "t": "Infinity"}
    ]  # fmt: skip


def test_sql_reads_dates_in_utc_whatever_the_time_zone(data_dir: Path) -> None:
    """An analyst in Tokyo gets the contract's UTC dates, not local ones."""
    sql = "SELECT CAST(TIMESTAMPTZ '2025-03-01 23:30:00+00' AS DATE) AS d, current_setting('TimeZone') AS tz"
    env = os.environ | {"TZ": "Asia/Tokyo"}
    argv = [sys.executable, "-m", "pipelines.cli", "sql", sql, "--data-dir", str(data_dir), "--format", "csv"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout == "d,tz\n2025-03-01,UTC\n"


def test_sql_json_is_valid_json_without_nan(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT n, CASE WHEN n = 1 THEN 'nan'::DOUBLE ELSE n / 2 END AS half FROM numbers WHERE n < 3 ORDER BY n"
    assert run(["sql", sql, "--data-dir", str(data_dir), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 0, "half": 0.0}, {"n": 1, "half": None}, {"n": 2, "half": 1.0}]
    assert run(["sql", "SELECT 1 AS x WHERE false", "--data-dir", str(data_dir), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_sql_csv_streams_instead_of_holding_the_result(data_dir: Path) -> None:
    """A large export holds one batch of rows, not the result: peak RSS barely moves with the row count."""
    script = (
        "import resource, sys; from pipelines.cli import main; "
        "rc = main(['sql', sys.argv[1], '--data-dir', sys.argv[2], '--format', 'csv']); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)"
    )

    def peak_kib(rows: int) -> int:
        sql = f"SELECT range AS n, repeat('x', 100) AS pad FROM range({rows})"
        proc = subprocess.run(
            [sys.executable, "-c", script, sql, str(data_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300, check=True,
        )  # fmt: skip
        return int(proc.stderr.strip().splitlines()[-1])

    small, large = peak_kib(10_000), peak_kib(3_000_000)  # 3M rows of ~110 bytes: 330 MB of text
    assert large - small < 150 * 1024, (small, large)


def test_sql_does_not_load_the_pipeline_or_the_report(data_dir: Path) -> None:
    """`revwh sql` answers in a fraction of a second: registering `revwh report` loaded matplotlib (about a
    second) for every command, before the report package stopped importing its builder."""
    code = (
        "import sys; from pipelines.cli import main; main(['sql', 'SELECT 1', '--data-dir', sys.argv[1]]); "
        "print(sorted(m for m in ('matplotlib', 'polars', 'dagster', 'pandera') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-1] == "[]"
