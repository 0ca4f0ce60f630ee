"""The pipeline's DuckDB connections draw no progress bar on stdout.

DuckDB draws one for every statement over 2 s, also when stdout is a log file: a 30M-event day's run
log held about 12 KB of bars between Dagster's lines. To keep the tests fast, every connection opened
here starts with ``progress_bar_time = 0`` (set before ``connect()`` turns the bar off: setting the time
afterwards would turn it back on), so a statement of a fraction of a second would draw a bar.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from pipelines.duck import compute_connection, connect
from pipelines.lake import DataDir

PACKAGE = Path(__file__).resolve().parents[1] / "pipelines"
# Modules allowed to call duckdb.connect themselves, and why.
OWN_CONNECTIONS = {
    "duck.py": "defines connect()",
    "warehouse/query.py": "revwh sql fetches lazily, which draws no bar; its output is the analyst's",
    "bench/bare.py": "the bare statement stays a plain DuckDB statement (it turns the bar off itself)",
    "bench/ruled.py": "runs in a child process and turns the bar off itself",
}
STATEMENT = "SELECT sum(hash(range)) FROM range(20000000)"


@pytest.fixture(autouse=True)
def _bar_for_every_statement(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    plain_connect = duckdb.connect

    def connect_with_instant_bar(*args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        con = plain_connect(*args, **kwargs)
        con.execute("SET progress_bar_time = 0")
        return con

    monkeypatch.setattr(duckdb, "connect", connect_with_instant_bar)
    yield


def _run(con: duckdb.DuckDBPyConnection, capfd: pytest.CaptureFixture[str]) -> str:
    capfd.readouterr()
    con.execute(STATEMENT).fetchall()
    return capfd.readouterr().out


def test_plain_duckdb_draws_a_bar_on_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    """The control: without connect(), the same statement prints a bar, so the tests below can see one."""
    with duckdb.connect() as con:
        assert "%" in _run(con, capfd)


def test_connect_draws_no_bar(capfd: pytest.CaptureFixture[str]) -> None:
    with connect() as con:
        assert _run(con, capfd) == ""
        with con.cursor() as cursor:  # landing and the raw-line recount work on cursors
            assert _run(cursor, capfd) == ""


def test_compute_connection_draws_no_bar(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with compute_connection(DataDir.at(tmp_path)) as con:
        assert _run(con, capfd) == ""


def test_read_only_file_connection_draws_no_bar(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    with connect(str(path), read_only=True) as con:
        assert _run(con, capfd) == ""


def test_pipeline_modules_open_duckdb_through_connect() -> None:
    """A new module that called duckdb.connect directly would bring the bars back into run logs."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module in OWN_CONNECTIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "connect"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "duckdb"
            ):
                offenders.append(f"{module}:{node.lineno}")
    assert offenders == [], f"use pipelines.duck.connect instead of duckdb.connect: {offenders}"
    assert all((PACKAGE / module).exists() for module in OWN_CONNECTIONS)
