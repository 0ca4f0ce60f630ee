"""The Celery app that revwh workers run: ``celery -A pipelines.celery_worker worker --concurrency 1``.

It is dagster-celery's own app and ``execute_plan`` task, built from the same
settings as the executor (REVWH_CELERY_BROKER / REVWH_CELERY_BACKEND), so a
worker needs no YAML file: the environment, this repository and its venv.
"""

from dagster_celery.tasks import create_task

from pipelines.distributed import worker_app

app = worker_app()
execute_plan = create_task(app)
