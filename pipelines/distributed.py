"""Run the pipeline's steps on Celery workers (dagster-celery) with a Redis broker.

Why Celery: it is the distributed engine Dagster already ships an executor for,
so a run on several machines is the *same* job with a different executor, not
a home-made scheduler. The orchestrating process (``revwh run --executor
celery``) walks the step graph and puts each ready step on the broker; any
worker on any machine that runs this repository's code with the same venv
takes it, executes it with ``execute_plan_iterator`` and writes its events to
the shared Dagster instance.

What workers and the orchestrator must share:

- the broker/backend: ``REVWH_CELERY_BROKER`` (default
  ``redis://127.0.0.1:6379/0``) and ``REVWH_CELERY_BACKEND`` (default: the broker);
- the Dagster instance: the run's ``instance_ref`` travels with each task, so
  the instance's storage must be reachable from every worker (a shared
  ``DAGSTER_HOME`` directory here; Postgres in a real deployment);
- the data directory: steps exchange data through the lake's files, not
  through Dagster outputs, so the data dir must be the same path on every
  machine (NFS or similar). For object storage, ``pipelines.storage`` mirrors
  the URL into a local cache first; with Celery that cache must then also be on
  the shared file system (``REVWH_CACHE_DIR``).

The data directory reaches the workers inside the run's config
(``resources.revwh.config.data_dir``): workers rebuild the job from
``pipelines.definitions`` and read the run config from the instance, so they
need no per-run environment.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import dagster as dg

from pipelines.errors import CliError
from pipelines.lake import DataDir

CELERY_JOB = "revenue_pipeline_celery"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
BROKER_ENV = "REVWH_CELERY_BROKER"
BACKEND_ENV = "REVWH_CELERY_BACKEND"


# dagster-celery re-creates its task on the same app for every step it submits; Celery warns each time.
warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")


class DistributedError(CliError):
    """Celery cannot run this range (no instance, broker or worker): one readable line, exit 2."""


def broker_url() -> str:
    """The broker every orchestrator and worker of one deployment must agree on."""
    return os.environ.get(BROKER_ENV) or DEFAULT_BROKER


def backend_url() -> str:
    """Where step results (the serialized Dagster events) come back; Redis too unless told otherwise."""
    return os.environ.get(BACKEND_ENV) or broker_url()


def celery_config_source() -> dict[str, Any]:
    """Celery settings shared by the orchestrator's app and the workers' app.

    prefetch 1: a step is minutes of work, so a worker must not hoard queued
    steps that an idle worker could take. A day of results is plenty for the
    orchestrator to collect them; Redis then frees the memory.
    """
    return {
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "result_expires": 24 * 3600,
        "task_track_started": True,
    }


def celery_executor_config() -> dict[str, Any]:
    """Config for ``dagster_celery.celery_executor`` read from the environment at import time."""
    return {"broker": broker_url(), "backend": backend_url(), "config_source": celery_config_source()}


def worker_app():  # -> celery.Celery (untyped library)
    """The Celery app workers run (``celery -A pipelines.celery_worker worker``).

    Built with dagster-celery's own ``make_app`` from the same settings as the
    executor, so queue names, routing and serialisation match by construction.
    """
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app

    cfg = celery_executor_config()
    return make_app(CeleryExecutor.for_cli(**cfg).app_args())


def ping_workers(timeout: float = 3.0) -> list[str]:
    """Names of the workers that answer on the broker; raises when the broker is unreachable.

    Without this check a run with no worker would wait forever for its first
    step, which looks exactly like a slow step.
    """
    app = worker_app()
    try:
        replies = app.control.ping(timeout=timeout) or []
    finally:
        app.close()
    return sorted(name for reply in replies for name in reply)


def run_config(data: DataDir, log_level: str) -> dict[str, Any]:
    """Run config that carries the data directory to every worker (they have no other way to know it)."""
    return {
        "resources": {"revwh": {"config": {"data_dir": str(data.root)}}},
        "loggers": {"console": {"config": {"log_level": log_level}}},
    }


def reconstructable_job():
    """A pointer workers can import: module ``pipelines.definitions``, attribute ``defs``, job CELERY_JOB."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    return ReconstructableRepository.for_module("pipelines.definitions", "defs").get_reconstructable_job(CELERY_JOB)


def execute_range_celery(
    data: DataDir,
    tags: Mapping[str, str],
    *,
    log_level: str = "INFO",
    instance: dg.DagsterInstance,
    require_workers: bool = True,
):  # -> dagster JobExecutionResult (has .success, .run_id, .all_events like ExecuteInProcessResult)
    """Execute ``revenue_pipeline_celery`` for the range in ``tags``; steps run on the Celery workers."""
    if instance.is_ephemeral:
        raise DistributedError(
            "--executor celery needs a persistent Dagster instance shared with the workers: set DAGSTER_HOME"
        )
    if require_workers:
        try:
            workers = ping_workers()
        except Exception as exc:  # kombu raises several types for an unreachable broker
            raise DistributedError(f"Celery broker {broker_url()} is not reachable: {exc}") from exc
        if not workers:
            raise DistributedError(
                f"no Celery worker answered on {broker_url()}: start one with "
                "`celery -A pipelines.celery_worker worker --concurrency 1` (see docs/distributed.md)"
            )
    return dg.execute_job(
        reconstructable_job(),
        instance=instance,
        run_config=run_config(data, log_level),
        tags=dict(tags),
        raise_on_error=False,
    )


def step_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """{step key: Celery worker name} from the engine events the workers wrote for one run.

    dagster-celery's task reports "Executing steps … in celery worker" with the
    worker's hostname, so this is the instance's own record of who ran what.
    """
    out: dict[str, str] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        metadata = getattr(event.event_specific_data, "metadata", None) or {}
        worker = metadata.get("Celery worker")
        if worker is not None:
            out[event.step_key] = str(getattr(worker, "value", worker))
    return out
