"""Ad-hoc SQL while runs write: readers never get a lock error, never see a torn warehouse,
and never make a run fail.

The design under test (pipelines/warehouse/publish.py): a run never opens the
published ``warehouse.duckdb``; it builds a new file beside it and renames it
over the old one, and the lake files behind the views are replaced the same
way. So a reader's snapshot is whichever file it opened, whole.

Here real multi-day runs go through Dagster (``execute_range``) while, in
other processes, a poller opens the warehouse read-only every 100 ms exactly
as ``revwh sql`` does, ``revwh sql`` itself runs again and again, and one more
process keeps a read-only connection open for the whole time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.lake import DataDir
from pipelines.runner import execute_range, failure_messages
from pipelines.warehouse.publish import publish_warehouse
from pipelines.warehouse.query import connect_read_only
from tests.tiny_data import EXPECTED_BY_STREAM, write_tiny_dataset

REPO = Path(__file__).resolve().parents[1]
FIRST = dt.date(2025, 3, 1)
DAYS = 6

# One statement, so one snapshot: per event date, the two SPEC marts must agree.
CONSISTENCY_SQL = """
SELECT CAST(event_date AS VARCHAR) AS event_date,
       s.net AS stream_net, r.net AS region_net, s.n AS stream_events, r.n AS region_events
FROM (SELECT event_date, sum(net_revenue_usd) AS net, sum(event_count) AS n
      FROM marts.revenue_by_stream GROUP BY ALL) AS s
FULL OUTER JOIN (SELECT event_date, sum(net_revenue_usd) AS net, sum(event_count) AS n
      FROM marts.revenue_by_region GROUP BY ALL) AS r USING (event_date)
ORDER BY event_date
"""

# Polls through query.py's own connect function until the stop file appears; one JSON line per poll.
POLLER = """
import json, sys, time
from pathlib import Path
from pipelines.warehouse.query import connect_read_only

data_dir, stop, sql = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
while not stop.exists():
    began = time.time()
    try:
        con = connect_read_only(data_dir)
        try:
            rows = con.execute(sql).fetchall()
            facts = con.execute("SELECT count(*) FROM facts.revenue_events").fetchone()[0]
            rejected = con.execute("SELECT count(*) FROM quality.quarantine").fetchone()[0]
            staged = con.execute("SELECT count(*) FROM staged.impressions").fetchone()[0]
        finally:
            con.close()
        seen = {"t": began, "rows": rows, "facts": facts, "rejected": rejected, "staged": staged}
        print(json.dumps(seen), flush=True)
    except Exception as exc:
        print(json.dumps({"t": began, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
    time.sleep(max(0.0, 0.1 - (time.time() - began)))
"""

# Opens one read-only connection, says so, and uses it again only when told: a notebook left open.
HOLDER = """
import json, sys
from pathlib import Path
from pipelines.warehouse.query import connect_read_only

con = connect_read_only(Path(sys.argv[1]))
before = con.execute(sys.argv[2]).fetchall()
print(json.dumps({"before": before}), flush=True)
sys.stdin.readline()
after = con.execute(sys.argv[2]).fetchall()
print(json.dumps({"after": after}), flush=True)
con.close()
"""


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def _run(data: Path, start: dt.date, end: dt.date) -> None:
    result = execute_range(data, start, end, log_level="WARNING", instance=dg.DagsterInstance.ephemeral())
    assert result.success, failure_messages(result)


def _inconsistencies(rows: list[list]) -> list[str]:
    problems = []
    for day, stream_net, region_net, stream_n, region_n in rows:
        if stream_net is None or region_net is None or stream_n != region_n:
            problems.append(f"{day}: stream={stream_net}/{stream_n} region={region_net}/{region_n}")
        elif not math.isclose(stream_net, region_net, abs_tol=1e-6):
            problems.append(f"{day}: stream net {stream_net} != region net {region_net}")
    return problems


def _shrinking(observations: list[tuple[float, set[str]]]) -> list[str]:
    """Event dates may only be added as publishes go by, never disappear (readers in time order)."""
    problems = []
    for (_, before), (t, after) in itertools.pairwise(observations):
        if not before <= after:
            problems.append(f"at {t:.2f}: dates {sorted(before - after)} disappeared")
    return problems


class SqlLoop(threading.Thread):
    """`revwh sql` in a loop, as an analyst at a terminal would, until stopped."""

    def __init__(self, data: Path) -> None:
        super().__init__(daemon=True)
        self.data = data
        self.stop = threading.Event()
        self.results: list[tuple[float, int, str, str]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.time()
            proc = subprocess.run(
                [sys.executable, "-m", "pipelines.cli", "sql", CONSISTENCY_SQL, "--data-dir", str(self.data)]
                + ["--format", "json"],
                cwd=REPO,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            self.results.append((began, proc.returncode, proc.stdout, proc.stderr))
            self.stop.wait(1.0)  # a few invocations are enough; each one costs an interpreter start


@pytest.mark.slow
def test_readers_never_lock_block_or_tear_while_runs_publish(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dates = write_tiny_dataset(data, FIRST, DAYS)
    first_publish = {d.isoformat() for d in dates[:3]}

    stop = tmp_path / "stop"
    poller_out = (tmp_path / "poller.jsonl").open("w")
    poller = subprocess.Popen(
        [sys.executable, "-c", POLLER, str(data), str(stop), CONSISTENCY_SQL],
        cwd=REPO,
        env=_env(),
        stdout=poller_out,
        stderr=subprocess.STDOUT,
    )
    sql_loop = SqlLoop(data)
    holder: subprocess.Popen[str] | None = None
    try:
        sql_loop.start()
        # Readers poll from before the first publish; then two runs: the first publishes three dates,
        # the second rewrites two of them and adds the rest. Each re-lands, re-stages and republishes.
        _run(data, dates[0], dates[2])
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(data), CONSISTENCY_SQL],
            cwd=REPO,
            env=_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        held_before = json.loads(holder.stdout.readline() or "{}").get("before")
        assert held_before is not None, holder.stderr.read()
        _run(data, dates[1], dates[-1])
        time.sleep(1.0)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        held_after = json.loads(holder.stdout.readline() or "{}").get("after")
        assert holder.wait(timeout=60) == 0, holder.stderr.read()
    finally:
        stop.touch()
        sql_loop.stop.set()
        sql_loop.join(timeout=120)
        try:
            poller.wait(timeout=30)
        finally:
            for proc in (poller, holder):
                if proc is not None and proc.poll() is None:
                    proc.kill()
            poller_out.close()

    lines = (tmp_path / "poller.jsonl").read_text().splitlines()
    polls = [json.loads(line) for line in lines if line.startswith("{")]
    # Until the first publish there is no warehouse to read: that answer is expected, once only at the start.
    unpublished = 0
    while unpublished < len(polls) and "no warehouse at" in polls[unpublished].get("error", ""):
        unpublished += 1
    polls = polls[unpublished:]
    errors = [p["error"] for p in polls if "error" in p]
    assert not [e for e in errors if "lock" in e.lower()], errors[:5]
    assert not errors, errors[:5]
    assert len(polls) >= 20, f"only {len(polls)} polls: the reader did not run alongside the runs"

    sql_ok = [(t, out) for t, rc, out, err in sql_loop.results if rc == 0]
    sql_failures = [err.strip() for _, rc, _, err in sql_loop.results if rc != 0 and "no warehouse at" not in err]
    assert not [e for e in sql_failures if "lock" in e.lower()], sql_failures[:5]
    assert not sql_failures, sql_failures[:5]
    assert len(sql_ok) >= 3, "revwh sql answered fewer than 3 times during the runs"
    sql_rows = [(t, [list(r.values()) for r in json.loads(out)]) for t, out in sql_ok]

    torn = [f"poll at {p['t']:.2f}: {x}" for p in polls for x in _inconsistencies(p["rows"])]
    torn += [f"revwh sql at {t:.2f}: {x}" for t, rows in sql_rows for x in _inconsistencies(rows)]
    assert not torn, torn[:5]
    seen = [(p["t"], {r[0] for r in p["rows"]}) for p in polls]
    assert not _shrinking(seen), _shrinking(seen)[:5]
    assert not _shrinking([(t, {r[0] for r in rows}) for t, rows in sql_rows])

    # The readers straddled both publishes: three dates first, all six at the end.
    assert seen[0][1] == first_publish
    assert seen[-1][1] == {d.isoformat() for d in dates}
    # The connection held open through the second run still works and still sees the snapshot it opened.
    assert held_after == held_before
    assert {r[0] for r in held_after} == first_publish

    print(f"{len(polls)} polls, {len(sql_ok)} revwh sql answers: no lock error, no torn or shrinking read")
    # What the last poll read is the right answer, not just a consistent one.
    net = sum(v[3] for v in EXPECTED_BY_STREAM.values())
    events = sum(v[4] for v in EXPECTED_BY_STREAM.values())
    for day, stream_net, _, stream_n, _ in polls[-1]["rows"]:
        assert math.isclose(stream_net, net, abs_tol=1e-9) and stream_n == events, day


def test_a_new_connection_sees_the_newest_publish_while_an_old_one_is_open(tmp_path: Path) -> None:
    """DuckDB shares one database instance per path within a process: a notebook (or a reader thread)
    that keeps a connection open would make every later ``duckdb.connect(path)`` read the replaced file.
    ``connect_read_only`` ATTACHes instead, so a new connection always reads the latest publish."""
    data = DataDir.at(tmp_path / "data")
    data.root.mkdir()
    publish_warehouse(data)  # nothing in the lake yet: empty marts
    held = connect_read_only(data.root)
    try:
        assert held.execute("SELECT count(*) FROM marts.revenue_by_stream").fetchone() == (0,)
        mart = data.mart_file("revenue_by_stream", FIRST)
        mart.parent.mkdir(parents=True)
        with duckdb.connect() as con:
            con.execute(
                "COPY (SELECT DATE '2025-03-01' AS event_date, 'advertising' AS stream, 1.5 AS net_revenue_usd) "
                f"TO '{mart.as_posix()}' (FORMAT parquet)"
            )
        publish_warehouse(data)
        fresh = connect_read_only(data.root)
        try:
            assert fresh.execute("SELECT count(*) FROM marts.revenue_by_stream").fetchone() == (1,)
        finally:
            fresh.close()
        assert held.execute("SELECT count(*) FROM marts.revenue_by_stream").fetchone() == (0,)  # its snapshot
    finally:
        held.close()
