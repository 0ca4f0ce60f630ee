"""The report in a real browser: headless Chromium decodes every chart and paints the page.

Two Chromium runs on the report the pipeline run wrote:

1. ``--dump-dom`` on a probe copy of the page with a tiny inline script that,
   after the load event, writes every <img>'s naturalWidth × naturalHeight into
   the DOM: non-zero sizes equal to the PNGs' prove the browser decoded the
   embedded charts (a broken data URI gives 0 × 0). The report itself has no
   script; only the probe copy does.
2. ``--screenshot`` of the report as it is, checked to be a 1400 × 2000 image
   that is not blank and shows the colour of a chart's bars. The screenshot is
   kept beside the report (and copied to $REVWH_TEST_ARTIFACTS when set).

Skipped only when no Chromium is installed; on Debian/Ubuntu CI:
``apt-get update && apt-get install -y chromium``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from pipelines.reports.charts import CHARTS, STREAM_COLORS
from tests.kpi_data import PipelineRun, kpi_pipeline_run

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
TIMEOUT = 120

PROBE = """<script>
window.addEventListener("load", function () {
  var out = [];
  document.querySelectorAll("img").forEach(function (img) {
    out.push({chart: img.dataset.chart, complete: img.complete, w: img.naturalWidth, h: img.naturalHeight});
  });
  var pre = document.createElement("pre");
  pre.id = "img-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str | None:
    override = os.environ.get("REVWH_CHROMIUM")
    if override:
        return override
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


BROWSER = chromium()
if BROWSER is None:
    pytest.skip(
        "chromium is not installed (Debian/Ubuntu: apt-get update && apt-get install -y chromium)",
        allow_module_level=True,
    )


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium with a throw-away profile; fails the test with Chromium's stderr on error."""
    cmd = [str(BROWSER), *FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run: PipelineRun = kpi_pipeline_run(tmp_path_factory)
    assert run.result.success
    html = run.root / "reports" / "revenue_report.html"  # written by the reports/revenue_report asset
    assert html.exists()
    return html


def png_sizes(html: Path) -> dict[str, tuple[int, int]]:
    found = re.findall(r'data-chart="(\w+)"[^>]*src="data:image/png;base64,([^"]+)"', html.read_text())
    return {name: Image.open(io.BytesIO(base64.b64decode(data))).size for name, data in found}


def test_browser_decodes_every_chart(report_html: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(report_html.read_text().replace("</body>", PROBE + "</body>"))
    done = run_chromium(tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    match = re.search(r'<pre id="img-probe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"the probe did not run; DOM starts with {done.stdout[:500]!r}"
    images = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    expected = png_sizes(report_html)
    assert [i["chart"] for i in images] == list(expected)
    assert {name for name, *_ in CHARTS} == set(expected)
    for image in images:
        assert image["complete"], image
        assert (image["w"], image["h"]) == expected[image["chart"]], image


def test_screenshot_shows_the_charts(report_html: Path, tmp_path: Path) -> None:
    shot = report_html.parent / "revenue_report_screenshot.png"
    shot.unlink(missing_ok=True)
    run_chromium(
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1400,2000",
        "--virtual-time-budget=10000",
        report_html.as_uri(),
    )
    artifacts = os.environ.get("REVWH_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / shot.name)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 2000)
    colors = image.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 100, "the screenshot looks blank"
    # the virtual-gifts bars of the first chart are painted, in the chart's own colour
    pink = tuple(int(STREAM_COLORS["virtual_gifts"][i : i + 2], 16) for i in (1, 3, 5))
    assert any(color == pink for _, color in colors), "no chart bar visible in the screenshot"
