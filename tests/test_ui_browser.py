"""The lineage pages render in a real browser: headless Chromium against `dagster-webserver`.

GraphQL (tests/test_webserver.py) proves the data is served; this proves the
JavaScript app turns it into the pages engineers browse. Chromium's
``--dump-dom`` gives the DOM after the app rendered (``--virtual-time-budget``
lets its timers and fetches settle) and ``--screenshot`` keeps a picture for
whoever debugs a failure. Skipped, with the install command, when Chromium is
not installed (CI: ``apt-get update && apt-get install -y chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.marts.build import mart_names
from tests.dagster_server import LOCATION, REPOSITORY, Webserver

pytestmark = pytest.mark.slow

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
if CHROMIUM is None:
    pytest.skip(
        "headless Chromium is not installed (Debian: apt-get update && apt-get install -y chromium)",
        allow_module_level=True,
    )

MARTS_GROUP = f"/locations/{REPOSITORY}@{LOCATION}/asset-groups/marts/lineage"
STREAM_UPSTREAM = "/assets/marts/revenue_by_stream?view=lineage&lineageScope=upstream&lineageDepth=4"


@pytest.fixture(scope="module")
def server(tiny_webserver: tuple[Webserver, Path]) -> Webserver:
    """The session's webserver on the tiny data set (tests/conftest.py), shared with test_webserver."""
    return tiny_webserver[0]


def chromium(url: str, profile: Path, *args: str, window: str = "1600,2400") -> subprocess.CompletedProcess[str]:
    """Headless Chromium, offline except for the loopback webserver, with a throwaway profile."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",  # root in a container: the sandbox needs user namespaces we may not have
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={window}",  # the graph only renders nodes inside the viewport
        "--virtual-time-budget=15000",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


def test_marts_group_lineage_shows_every_mart(server: Webserver, tmp_path: Path) -> None:
    result = chromium(server.url + MARTS_GROUP, tmp_path / "profile", "--dump-dom")
    text = visible_text(result.stdout)
    missing = [name for name in mart_names() if name not in text]
    assert not missing, f"marts not rendered: {missing}\nrendered: {text[:1500]}\nstderr: {result.stderr[-1500:]}"
    # Its neighbours in the graph: the facts it reads and the warehouse that publishes it.
    assert "revenue_events" in text and "warehouse" in text


def test_upstream_lineage_of_a_mart_reaches_the_landing_logs(server: Webserver, tmp_path: Path) -> None:
    result = chromium(server.url + STREAM_UPSTREAM, tmp_path / "profile", "--dump-dom")
    text = visible_text(result.stdout)
    for word in ("revenue_by_stream", "revenue_events", "landing", "staged", "facts", "impressions", "orders"):
        assert word in text, f"{word!r} not on the lineage page: {text[:1500]}"

    shot = tmp_path / "revenue_by_stream_lineage.png"
    result = chromium(server.url + STREAM_UPSTREAM, tmp_path / "profile", f"--screenshot={shot}", window="1600,1000")
    assert shot.is_file() and shot.stat().st_size > 20_000, f"no screenshot: {result.stderr[-1500:]}"
    print(f"screenshot: {shot}")
