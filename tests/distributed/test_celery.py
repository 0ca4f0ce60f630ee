"""`revwh run --executor celery`: the steps of one run executed by two Celery workers over Redis.

Everything runs on loopback but in separate processes, as it would on several
machines: a Redis server on a free port (no persistence, in a temp dir), two
workers (`celery -A pipelines.celery_worker worker --concurrency 1`) sharing
a DAGSTER_HOME, and the orchestrating `revwh run` in its own process. The
marts must equal those of an in-process run on a copy of the same data, and the
instance's event log must show that both workers executed steps.

Not part of `make test` (it starts servers): run `make test-distributed`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

pytestmark = pytest.mark.distributed

REPO = Path(__file__).resolve().parents[2]
START, END = "2025-03-01", "2025-03-03"  # three event dates; arrival days up to 2025-03-06
WORKERS = ("w1", "w2")
QUERIES = {
    "revenue_by_stream": "SELECT * FROM marts.revenue_by_stream ORDER BY ALL",
    "revenue_by_region": "SELECT * FROM marts.revenue_by_region ORDER BY ALL",
    "quarantine_counts": "SELECT log, reason, count(*) FROM quality.quarantine GROUP BY ALL ORDER BY ALL",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the process group we started (a Celery worker forks pool children), then SIGKILL if needed."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def redis_url(workdir: Path) -> Iterator[str]:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(server).exists():
        pytest.fail("redis-server is not installed: `make test-distributed` installs it with apt-get")
    port = _free_port()
    folder = workdir / "redis"
    folder.mkdir()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=open(folder / "redis.log", "w"),  # noqa: SIM115 (closed with the process)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start: {(folder / 'redis.log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc, grace=10)


@pytest.fixture(scope="module")
def env(workdir: Path, redis_url: str) -> dict[str, str]:
    """The environment every process shares: broker, and one DAGSTER_HOME (Postgres in a real deployment)."""
    home = workdir / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    out = dict(os.environ)
    out.pop("REVWH_CELERY_BACKEND", None)
    out.update(REVWH_CELERY_BROKER=redis_url, DAGSTER_HOME=str(home), PYTHONUNBUFFERED="1")
    return out


@pytest.fixture(scope="module")
def workers(workdir: Path, env: dict[str, str]) -> Iterator[dict[str, Path]]:
    """Two workers, each its own process with one execution slot; yields {name: log file}."""
    procs, logs = [], {}
    try:
        for name in WORKERS:
            logs[name] = workdir / f"worker-{name}.log"
            cmd = [sys.executable, "-m", "celery", "-A", "pipelines.celery_worker", "worker"]
            cmd += ["--concurrency", "1", "--prefetch-multiplier", "1", "--loglevel", "INFO", "-n", f"{name}@%h"]
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=REPO,
                    env=env,
                    stdout=open(logs[name], "w"),  # noqa: SIM115 (closed with the process)
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        _wait_for_workers(env, procs, logs)
        yield logs
    finally:
        for proc in procs:
            _stop(proc)


def _wait_for_workers(env: dict[str, str], procs: list[subprocess.Popen], logs: dict[str, Path]) -> None:
    """Block until both workers answer a broker ping (their first import of Dagster takes a few seconds)."""
    probe = "from pipelines.distributed import ping_workers; print(' '.join(ping_workers(timeout=2)))"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dead = [name for name, p in zip(WORKERS, procs, strict=True) if p.poll() is not None]
        if dead:
            pytest.fail(f"worker {dead[0]} exited: {logs[dead[0]].read_text()[-3000:]}")
        answer = subprocess.run(
            [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
        names = {n.split("@")[0] for n in answer.stdout.split()}
        if names >= set(WORKERS):
            return
        time.sleep(1)
    pytest.fail("the Celery workers did not answer within 120 s")


@pytest.fixture(scope="module")
def data(workdir: Path) -> tuple[Path, Path]:
    """Small generated data (4 arrival days, 20k events a day), and an identical copy for the in-process run."""
    celery_dir, local_dir = workdir / "data-celery", workdir / "data-inprocess"
    gen = [sys.executable, "-m", "pipelines.cli", "generate", "--data-dir", str(celery_dir)]
    gen += ["--start", START, "--days", "4", "--events-per-day", "20000", "--seed", "3"]
    result = subprocess.run(gen, cwd=REPO, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:  # the generator is someone else's work in progress: fall back to hand-made data
        shutil.rmtree(celery_dir, ignore_errors=True)
        _hand_made(celery_dir)
    shutil.copytree(celery_dir, local_dir)
    return celery_dir, local_dir


def _hand_made(root: Path) -> None:
    import datetime as dt

    from tests.builders import coin_purchase, fund_payout, gift, impression, order, write_raw, write_reference

    write_reference(root, dt.date(2025, 2, 20), dt.date(2025, 3, 20))
    for i, day in enumerate(("2025-03-01", "2025-03-02", "2025-03-03")):
        at = f"{day}T12:00:00Z"
        write_raw(root, "impressions", day, [impression(f"i{i}-{k}", at, price=1 + k) for k in range(50)] + ["{bad"])
        write_raw(root, "coin_purchases", day, [coin_purchase(f"c{i}", at), coin_purchase(f"u{i}", at, user_age=12)])
        write_raw(root, "gifts", day, [gift(f"g{i}", at, coins=10)])
        write_raw(root, "orders", day, [order(f"o{i}", at, amount=20 + i)])
        write_raw(root, "fund_payouts", day, [fund_payout(f"f{i}", at)])


def _revwh_run(data_dir: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "--data-dir", str(data_dir), "--start", START, "--end", END]
    return subprocess.run([*cmd, "--quiet", *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)


def _marts(data_dir: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return {name: con.execute(sql).fetchall() for name, sql in QUERIES.items()}
    finally:
        con.close()


def test_celery_run_matches_in_process_and_uses_both_workers(
    data: tuple[Path, Path], env: dict[str, str], workers: dict[str, Path]
) -> None:
    celery_dir, local_dir = data

    began = time.perf_counter()
    run = _revwh_run(celery_dir, env, "--executor", "celery")
    celery_seconds = time.perf_counter() - began
    assert run.returncode == 0, run.stdout + run.stderr[-5000:]
    run_id = re.search(r"\(run ([0-9a-f-]{36})\)", run.stdout).group(1)

    local_env = {k: v for k, v in env.items() if k != "DAGSTER_HOME"}  # in-process: ephemeral instance
    began = time.perf_counter()
    local = _revwh_run(local_dir, local_env)
    local_seconds = time.perf_counter() - began
    assert local.returncode == 0, local.stdout + local.stderr[-5000:]

    got, expected = _marts(celery_dir), _marts(local_dir)
    assert expected["revenue_by_stream"], "the in-process run published no revenue"
    assert {row[0].isoformat() for row in expected["revenue_by_stream"]} == {START, "2025-03-02", END}
    assert expected["quarantine_counts"], "the data should have some dirt"
    for name in QUERIES:
        assert got[name] == expected[name], name

    # Who ran what, from the instance's own record (dagster-celery's engine event names the worker) ...
    from pipelines.distributed import step_workers

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        by_step = step_workers(instance, run_id)
        started = {r.dagster_event.step_key for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)}
    per_worker = {w: sorted(k for k, v in by_step.items() if v.split("@")[0] == w) for w in WORKERS}
    print(f"\ncelery run {celery_seconds:.1f}s, in-process run {local_seconds:.1f}s, {len(started)} steps")
    for w, keys in per_worker.items():
        print(f"{w}: {len(keys)} steps, e.g. {keys[:4]}")
    assert started and set(by_step) == started, "every step must have run in a Celery worker"
    assert all(per_worker.values()), f"both workers must have executed steps: {per_worker}"

    # ... and from the workers' own logs: each one received and finished execute_plan tasks for its steps.
    for w, log in workers.items():
        text = log.read_text()
        assert re.search(r"Task execute_plan\[[0-9a-f-]+\] succeeded", text), f"{w} log shows no finished task"
        for key in per_worker[w]:  # Celery logs each task's result, which starts with "Executing steps <key>"
            assert key in text, f"{w} log lacks step {key}"
