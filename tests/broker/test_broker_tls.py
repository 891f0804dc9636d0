"""Redis over TLS (``rediss://``): the API node and a worker reach it when the URL names the certificate to trust
(``?ssl_ca_certs=``), and a worker that does not trust it refuses to start, in one line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_live import Cluster, bare_environment
from certificates import self_signed
from server_live import wait_job


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate (its own authority) for 127.0.0.1, and its key."""
    return self_signed(tmp_path_factory.mktemp("broker-tls"), "127.0.0.1")


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path,
                certificate: tuple[Path, Path]) -> Iterator[Cluster]:
    """A Redis that answers only TLS, the API node and one worker host, both given the ``rediss://`` URL."""
    found = Cluster(tmp_path_factory.mktemp("tls-cluster"), synthetic_models, redis_tls=certificate)
    try:
        found.start(1)
        yield found
    finally:
        found.stop()


def test_a_job_runs_on_a_worker_reached_over_tls(tls_cluster: Cluster) -> None:
    assert tls_cluster.api is not None and tls_cluster.redis.url.startswith("rediss://")
    job = wait_job(tls_cluster.api.client, tls_cluster.upscale(), 300)
    assert job["status"] == "succeeded" and job["worker"] == "w0.0", job


def test_a_worker_that_does_not_trust_the_certificate_refuses_to_start(tls_cluster: Cluster, tmp_path: Path) -> None:
    untrusting = tls_cluster.redis.url.partition("?")[0]  # no ssl_ca_certs: the system's authorities do not know it
    done = subprocess.run([sys.executable, "-m", "sdrest", "worker", "--broker", untrusting, "--models-dir",
                           str(tls_cluster.models), "--data-dir", str(tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60, env=bare_environment(tmp_path))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the broker at rediss://" in lines[0], done.stderr
    assert "certificate verify failed" in lines[0], done.stderr
