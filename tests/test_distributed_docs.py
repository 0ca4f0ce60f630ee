"""docs/distributed.md's instance configuration is real: the Postgres block loads with the locked packages."""

from __future__ import annotations

import importlib
import re
import textwrap
from pathlib import Path

from dagster._core.instance.ref import InstanceRef

DOC = Path(__file__).resolve().parents[1] / "docs" / "distributed.md"


def _yaml_blocks(text: str) -> list[str]:
    return [textwrap.dedent(b) for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S)]


def test_the_postgres_instance_block_loads(tmp_path: Path) -> None:
    blocks = [b for b in _yaml_blocks(DOC.read_text()) if "postgres_db" in b]
    assert len(blocks) == 1
    (tmp_path / "dagster.yaml").write_text(blocks[0])
    ref = InstanceRef.from_dir(str(tmp_path))  # validates the config against dagster's schema
    storage = ref.storage_data
    assert (storage.module_name, storage.class_name) == ("dagster_postgres", "DagsterPostgresStorage")
    assert storage.config_dict["postgres_db"]["hostname"] == "10.0.0.6"
    cls = getattr(importlib.import_module(storage.module_name), storage.class_name)  # in the lock: importable
    assert cls.__name__ == "DagsterPostgresStorage"
