"""A real ``dagster-webserver`` for end-to-end tests: loopback only, a throwaway DAGSTER_HOME.

The tests start the same workspace ``make ui`` serves, so what they see is what
an engineer sees. The instance uses the DefaultRunCoordinator so that a run
launched through GraphQL starts at once: without the daemon (which ``make ui``
also runs) a queued run would never start, and with the daemon the RUNNING
sensor and schedule would launch runs of their own in the middle of a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOCATION = "revwh"
REPOSITORY = "__repository__"
JOB = "revenue_pipeline"
STARTUP_TIMEOUT_S = 180.0  # importing the code location takes 10-20 s on a busy 2-CPU machine

# No telemetry from tests, and no "join the community" dialog over the browser test's screenshot.
INSTANCE_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""


def free_port() -> int:
    """A TCP port nobody listens on right now (on the loopback interface)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GraphQLError(AssertionError):
    """The server answered with GraphQL errors; the message carries them."""


class Webserver:
    """A started webserver process and a small GraphQL client for it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path, home: Path) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.home = home
        self.url = f"http://127.0.0.1:{port}"

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise GraphQLError(str(body["errors"])[:2000])
        return body["data"]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM the server's process group (webserver, code server, launched runs), then SIGKILL."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Children (the code server) may outlive the leader for a moment; the group id is ours.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def wait_until_loaded(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Until /server_info answers and the revwh code location has loaded (or fail with the log)."""
        deadline = time.monotonic() + timeout
        query = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                     locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"dagster-webserver exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5):
                    pass
                entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
            except (OSError, GraphQLError) as exc:  # URLError and refused connections are OSErrors
                last = repr(exc)
            else:
                entry = next((e for e in entries if e["name"] == LOCATION), None)
                if entry and entry["loadStatus"] == "LOADED":
                    loaded = entry["locationOrLoadError"]
                    if loaded["__typename"] == "PythonError":
                        raise AssertionError(f"code location failed to load: {loaded['message']}")
                    return
                last = str(entries)
            time.sleep(0.5)
        raise AssertionError(f"webserver not ready after {timeout:.0f}s ({last}):\n{self.log_tail()}")


@contextlib.contextmanager
def running_webserver(workdir: Path, data_dir: Path) -> Iterator[Webserver]:
    """Start ``dagster-webserver -w workspace.yaml`` on 127.0.0.1 for ``data_dir``; stop it afterwards."""
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    port = free_port()
    env = os.environ | {
        "DAGSTER_HOME": str(home),
        "REVWH_DATA_DIR": str(data_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    log = workdir / "webserver.log"
    webserver_bin = Path(sys.executable).parent / "dagster-webserver"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(webserver_bin), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches the code server too
        )
    server = Webserver(process, port, log, home)
    try:
        server.wait_until_loaded()
        yield server
    finally:
        server.stop()
