"""Schemathesis over ``/api/openapi.json`` against one live server on a loopback port (issue 7, defect 12).

Every operation gets generated requests, valid and invalid by the document, over real HTTP; every answer must
be below 500, carry a status code the document lists for the operation, in the media type it states, with a body
its schema accepts. The generation routes run with tiny limits and the stand-in runner, so the jobs they create
cost next to nothing; what the native code does with parameters is the business of the worker tests.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from conftest import write_model
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from server_live import FakeRunner, LiveServer, make_config

from sdrest.server.app import create_app
from sdrest.testing.signatures import SIGNATURES

#: generated cases per operation (Hypothesis stops sooner where the document leaves few distinct inputs)
MAX_EXAMPLES = 40
#: small enough that every generation the document allows is a cheap job: 64x64 to 64x128, 1-2 steps
TINY_LIMITS = {"max_pixels": 64 * 128, "max_steps": 2, "max_batch": 2, "queue_limit": 4, "max_body_mb": 1}
#: left out: a restart (it stops the server; without ``sdrest serve`` it is a 503)
EXCLUDED = ("/api/system/restart",)
#: the all-jobs event stream never ends by itself: read its first frames only
MAX_STREAM_EVENTS = 1
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

cases: Counter[str] = Counter()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The one server of the module: a single header-only SD1 checkpoint as the default model."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    models = tmp / "models"
    write_model(models, "checkpoints/schemathesis-sd1.safetensors", SIGNATURES["SD 1.x"])
    config = make_config(tmp, models, default_model="checkpoints/schemathesis-sd1", **TINY_LIMITS)
    started = time.monotonic()
    with LiveServer(create_app(config, runner=FakeRunner(step_seconds=0.001))) as server:
        yield server
    total = sum(cases.values())
    print(f"\nschemathesis: {total} cases over {len(cases)} operations in {time.monotonic() - started:.1f} s")
    for label, count in sorted(cases.items()):
        print(f"  {count:5d}  {label}")


@pytest.fixture(scope="module")
def api_schema(live: LiveServer) -> schemathesis.BaseSchema:
    """The served document, minus :data:`EXCLUDED`, every request aimed at the live server."""
    config = schemathesis.Config.from_dict({"max-stream-events": MAX_STREAM_EVENTS})
    return schemathesis.openapi.from_url(f"{live.url}/api/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=list(EXCLUDED))


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_below_500(case: schemathesis.Case) -> None:
    cases[case.operation.label] += 1
    case.call_and_validate(checks=CHECKS, timeout=30)


def test_the_document_served_is_the_one_tested(live: LiveServer) -> None:
    """The exclusions name real paths (a renamed route would otherwise drop out of the test unseen)."""
    paths = live.client.get("/api/openapi.json").json()["paths"]
    assert all(path in paths for path in EXCLUDED)
    assert Path(__file__).name == "test_schemathesis.py"
