"""Every run of the pipeline holds its data directory's writer lock, however it was launched.

``revwh run`` takes the lock itself (pipelines.runner). Runs launched from the UI, by the
schedule, a sensor or a backfill reach the data directory through their job's executor
instead, so the executor takes it: such a run started beside a ``revwh run`` (or a cron job)
waits for it, saying in its log whom it waits for, instead of interleaving their lake writes;
and a ``revwh run`` started beside it waits in turn. The process that orchestrates the run
holds the lock for the whole run; Celery workers that execute its steps take none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._core.errors import raise_execution_interrupts
from dagster._core.executor.base import Executor

from pipelines.lake import DataDir
from pipelines.writer_lock import writer_lock

if TYPE_CHECKING:
    from dagster._core.events import DagsterEvent
    from dagster._core.execution.context.system import PlanOrchestrationContext
    from dagster._core.execution.plan.plan import ExecutionPlan


def run_data_dir(run_config: Mapping[str, Any], default: str) -> str:
    """The run's data directory: its run config's ``revwh`` resource if it names one, else the default."""
    config = (((run_config.get("resources") or {}).get("revwh") or {}).get("config")) or {}
    return str(config.get("data_dir") or default)


class WriterLockedExecutor(Executor):
    """Runs the inner executor's plan while holding the data directory's writer lock."""

    def __init__(self, inner: Executor, default_data_dir: str) -> None:
        self._inner = inner
        self._default_data_dir = default_data_dir

    def __getattr__(self, name: str) -> Any:
        # dagster-celery's loop reads its executor's broker settings (app_args) from the run context
        if name.startswith("_"):  # not set yet (a copy being built): no recursion through self._inner
            raise AttributeError(name)
        return getattr(self._inner, name)

    @property
    def retries(self) -> Any:
        return self._inner.retries

    @property
    def step_dependency_config(self) -> Any:
        return self._inner.step_dependency_config

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        data = DataDir.at(run_data_dir(plan_context.run_config, self._default_data_dir))
        holder = f"Dagster run {plan_context.run_id} of {plan_context.job_name}"
        log = plan_context.log
        with contextlib.ExitStack() as held:
            # Dagster only records a termination request (SIGINT/SIGTERM) and acts on it between steps; a run
            # waiting here must still stop when the UI terminates it, so the wait raises it at once.
            with raise_execution_interrupts():
                held.enter_context(
                    writer_lock(data, holder, on_wait=log.warning, on_sweep=lambda swept: log.info(swept.note()))
                )
            yield from self._inner.execute(plan_context, execution_plan)


def writer_locked(executor_def: dg.ExecutorDefinition, default_data_dir: str) -> dg.ExecutorDefinition:
    """``executor_def`` with the same name, config and requirements, whose runs hold the writer lock."""
    inner_creation_fn = executor_def.executor_creation_fn
    assert inner_creation_fn is not None

    return dg.ExecutorDefinition(
        name=executor_def.name,
        config_schema=executor_def.config_schema,
        requirements=executor_def.get_requirements,
        executor_creation_fn=lambda init: WriterLockedExecutor(inner_creation_fn(init), default_data_dir),
        description=f"{executor_def.description or executor_def.name}, holding the data directory's writer lock",
    )
