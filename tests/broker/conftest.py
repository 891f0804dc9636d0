"""The broker's tests: a real ``redis-server`` on a loopback port, a real API node (uvicorn in this process) and
real ``sdrest worker`` processes with the synthetic models. Skipped where redis-server or redis-py is missing
(``.ci/run`` installs both)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))  # server_live, the live-server helpers
sys.path.insert(0, str(Path(__file__).parent))  # broker_live

pytest.importorskip("redis")
if shutil.which("redis-server") is None:
    pytest.skip("no redis-server: apt-get install redis-server", allow_module_level=True)

from broker_live import Cluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path) -> Iterator[Cluster]:
    """One cluster for the module: Redis, the API node, three worker hosts."""
    found = Cluster(tmp_path_factory.mktemp("cluster"), synthetic_models, max_attempts=3)
    try:
        found.start(3)
        yield found
    finally:
        found.stop()
