"""The UI's view of the warehouse, through the webserver's GraphQL API (what `make ui` serves).

One ``dagster-webserver`` (the session's, shared with test_ui_browser), on
127.0.0.1 with a throwaway DAGSTER_HOME and a tiny data dir: the lineage an engineer browses (groups,
edges, kinds, descriptions, column schemas, checks, freshness), the schedule
and the sensor as the daemon would see them, and a run launched over HTTP the
way the UI's Materialize button or the sensor would launch it.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.definitions import build_definitions
from tests.dagster_server import JOB, LOCATION, REPOSITORY, Webserver
from tests.tiny_data import EXPECTED_BY_STREAM

pytestmark = pytest.mark.slow

LAYERS = ("landing", "staged", "facts", "marts", "quality", "warehouse")
RUN_TIMEOUT_S = 300.0
REPO_SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}

ASSET_GRAPH = """
{ assetNodes {
    assetKey { path } groupName kinds description isPartitioned
    dependencyKeys { path }
    backfillPolicy { policyType }
    internalFreshnessPolicy { __typename }
    metadataEntries { label ... on TableSchemaMetadataEntry { schema { columns { name type } } } }
    assetChecksOrError { ... on AssetChecks { checks { name blocking description } } }
} }
"""


@pytest.fixture(scope="module")
def data_dir(tiny_webserver: tuple[Webserver, Path]) -> Path:
    """The tiny data set (tests/tiny_data.py) the server reads: event dates 2025-03-01 and 2025-03-02."""
    return tiny_webserver[1]


@pytest.fixture(scope="module")
def server(tiny_webserver: tuple[Webserver, Path]) -> Webserver:
    """The session's webserver (tests/conftest.py), shared with test_ui_browser."""
    return tiny_webserver[0]


@pytest.fixture(scope="module")
def nodes(server: Webserver) -> dict[str, dict]:
    return {"/".join(n["assetKey"]["path"]): n for n in server.graphql(ASSET_GRAPH)["assetNodes"]}


def _reachable(nodes: dict[str, dict], start: str) -> set[str]:
    """Every asset downstream of ``start`` along the dependency edges the UI draws."""
    children: dict[str, set[str]] = {}
    for key, node in nodes.items():
        for dep in node["dependencyKeys"]:
            children.setdefault("/".join(dep["path"]), set()).add(key)
    seen, todo = set(), [start]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def test_every_asset_of_the_code_is_in_the_ui(nodes: dict[str, dict], data_dir: Path) -> None:
    expected = {key.to_user_string() for key in build_definitions(data_dir).resolve_asset_graph().get_all_asset_keys()}
    assert expected <= set(nodes), sorted(expected - set(nodes))
    for layer in LAYERS:
        assert any(k.split("/")[0] == layer for k in nodes), f"no {layer} asset"


def test_groups_kinds_and_descriptions(nodes: dict[str, dict]) -> None:
    for key, node in nodes.items():
        layer = key.split("/")[0]
        if layer in LAYERS:
            assert node["groupName"] == layer, key
        assert node["kinds"], f"{key} has no kinds"
        assert (node["description"] or "").strip(), f"{key} has no description"
        if node["isPartitioned"]:
            assert node["backfillPolicy"]["policyType"] == "SINGLE_RUN", key


def test_lineage_runs_from_every_landing_log_to_the_marts_and_the_warehouse(nodes: dict[str, dict]) -> None:
    for log in ("impressions", "coin_purchases", "gifts", "orders", "fund_payouts"):
        downstream = _reachable(nodes, f"landing/{log}")
        for key in (f"staged/{log}", "facts/revenue_events", "quality/quarantine", "warehouse"):
            assert key in downstream, f"no edge path landing/{log} -> {key}"
        assert {k for k in nodes if k.startswith("marts/")} <= downstream
    warehouse_deps = {"/".join(d["path"]) for d in nodes["warehouse"]["dependencyKeys"]}
    assert {"marts/revenue_by_stream", "marts/revenue_by_region", "quality/quarantine"} <= warehouse_deps


def test_column_schemas_checks_and_freshness(nodes: dict[str, dict]) -> None:
    def columns(key: str) -> list[str]:
        entries = [m for m in nodes[key]["metadataEntries"] if m["label"] == "dagster/column_schema"]
        assert entries, f"{key} has no column schema"
        return [c["name"] for c in entries[0]["schema"]["columns"]]

    for key, node in nodes.items():
        if key.split("/")[0] in ("landing", "staged", "facts", "quality", "marts"):
            assert columns(key), key
        if key.startswith("marts/"):
            assert node["internalFreshnessPolicy"], f"{key} has no freshness policy"
    assert "price" in columns("landing/impressions") and "raw" in columns("landing/impressions")
    assert columns("marts/revenue_by_stream")[:2] == ["event_date", "stream"]
    assert {"event_date", "region", "country", "stream", "net_revenue_usd"} <= set(columns("marts/revenue_by_region"))
    assert {"log", "event_id", "arrival_date", "reason", "raw"} <= set(columns("quality/quarantine"))

    def checks(key: str) -> set[str]:
        return {c["name"] for c in nodes[key]["assetChecksOrError"]["checks"]}

    assert "reconciles_with_facts" in checks("marts/revenue_by_stream")
    assert "reconciles_with_facts" in checks("marts/revenue_by_region")
    assert "one_fact_per_staged_event" in checks("facts/revenue_events")
    assert {"copies_balance", "passes_pandera_model"} <= checks("staged/orders")
    assert "landed_equals_accepted_plus_quarantined" in checks("landing/orders")


def test_schedule_and_sensors_are_on_by_default(server: Webserver) -> None:
    data = server.graphql(
        """query($repo: RepositorySelector!) {
             schedulesOrError(repositorySelector: $repo) { ... on Schedules { results {
               name cronSchedule executionTimezone pipelineName scheduleState { status } } } }
             sensorsOrError(repositorySelector: $repo) { ... on Sensors { results {
               name minIntervalSeconds targets { pipelineName } sensorState { status } } } } }""",
        {"repo": REPO_SELECTOR},
    )
    schedules = {s["name"]: s for s in data["schedulesOrError"]["results"]}
    sensors = {s["name"]: s for s in data["sensorsOrError"]["results"]}
    daily = schedules["daily_revenue_pipeline"]
    assert (daily["cronSchedule"], daily["executionTimezone"], daily["pipelineName"]) == ("0 1 * * *", "UTC", JOB)
    assert daily["scheduleState"]["status"] == "RUNNING"
    for name in ("raw_files_sensor", "reference_tables_sensor"):
        sensor = sensors[name]
        assert sensor["targets"][0]["pipelineName"] == JOB and sensor["minIntervalSeconds"] == 60
        assert sensor["sensorState"]["status"] == "RUNNING"


DRY_RUN_RESULT = """
  __typename
  ... on DryRunInstigationTick { evaluationResult {
      runRequests { runKey tags { key value } } skipReason cursor error { message } } }
  ... on PythonError { message }
"""


def _tags(tick: dict) -> dict[str, str]:
    assert tick["__typename"] == "DryRunInstigationTick", tick
    result = tick["evaluationResult"]
    assert result["error"] is None, result["error"]
    assert len(result["runRequests"]) == 1, result
    return {t["key"]: t["value"] for t in result["runRequests"][0]["tags"]}


def test_schedule_dry_run_in_the_code_server(server: Webserver) -> None:
    tick = server.graphql(
        f"""mutation($selector: ScheduleSelector!, $ts: Float) {{
              scheduleDryRun(selectorData: $selector, timestamp: $ts) {{ {DRY_RUN_RESULT} }} }}""",
        {
            "selector": REPO_SELECTOR | {"scheduleName": "daily_revenue_pipeline"},
            "ts": dt.datetime(2025, 3, 3, 1, 0, tzinfo=dt.UTC).timestamp(),
        },
    )["scheduleDryRun"]
    tags = _tags(tick)
    assert tags["dagster/asset_partition_range_start"] == "2025-02-27"
    assert tags["dagster/asset_partition_range_end"] == "2025-03-02"


def test_sensor_request_launched_over_graphql_publishes_the_marts(server: Webserver, data_dir: Path) -> None:
    tick = server.graphql(
        f"""mutation($selector: SensorSelector!) {{
              sensorDryRun(selectorData: $selector, cursor: null) {{ {DRY_RUN_RESULT} }} }}""",
        {"selector": REPO_SELECTOR | {"sensorName": "raw_files_sensor"}},
    )["sensorDryRun"]
    tags = _tags(tick)
    # Arrival days 03-01..03-03 (the last holds a late copy of 03-02): event dates 02-26..03-03, one run.
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        "2025-02-26",
        "2025-03-03",
    )

    launched = server.graphql(
        """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
             __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
             ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }""",
        {
            "params": {
                "selector": REPO_SELECTOR | {"jobName": JOB},
                "runConfigData": {},
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    status, deadline = "", time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = server.graphql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})[
            "runOrError"
        ]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(1.0)
    assert status == "SUCCESS", f"run {run_id} ended {status or 'never'}:\n{_run_errors(server, run_id)}"

    # Materialisations carry row counts and the checks ran on them: what the asset pages show.
    assets = server.graphql(
        """{ assetNodes(assetKeys: [{path: ["marts", "revenue_by_stream"]}, {path: ["landing", "orders"]}]) {
               assetKey { path }
               assetMaterializations(limit: 1) { metadataEntries { label } }
               assetChecksOrError { ... on AssetChecks { checks { name
                   executionForLatestMaterialization { status } } } } } }"""
    )["assetNodes"]
    for node in assets:
        labels = {m["label"] for m in node["assetMaterializations"][0]["metadataEntries"]}
        assert "dagster/row_count" in labels, node["assetKey"]
        for check in node["assetChecksOrError"]["checks"]:
            execution = check["executionForLatestMaterialization"]
            assert execution and execution["status"] == "SUCCEEDED", (node["assetKey"], check)

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT CAST(event_date AS VARCHAR), stream, gross_revenue_usd, platform_fees_usd, "
            "creator_payouts_usd, net_revenue_usd, event_count FROM marts.revenue_by_stream ORDER BY ALL"
        ).fetchall()
    got = {(day, stream): values for day, stream, *values in rows}
    for day in ("2025-03-01", "2025-03-02"):
        for stream, expected in EXPECTED_BY_STREAM.items():
            assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(got[(day, stream)], expected, strict=True))
    assert {day for day, _ in got} == {"2025-03-01", "2025-03-02"}


def _run_errors(server: Webserver, run_id: str) -> str:
    events = server.graphql(
        """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
             __typename ... on MessageEvent { message } } } } }""",
        {"id": run_id},
    )["logsForRun"]["events"]
    failed = [e.get("message", "") for e in events if "Failure" in e["__typename"] or "Error" in e["__typename"]]
    return "\n".join(failed[-10:]) or server.log_tail()
