"""The gateway's OpenAPI document: served, checked in, and a bounded schemathesis run against a live
deployment that must find no 500 (and no status code or content type the document does not declare)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance

import harness
from emulators.gateway.openapi import openapi_document

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ECHO = f"{ROOT / 'fixtures' / 'agents' / 'echo.py'}:agent"


@pytest.fixture
def live() -> Iterator[harness.Deployment]:
    """A running echo deployment behind its gateway."""
    with harness.deploy(ECHO, time_scale=0.01, llm="off") as d:
        yield d


def test_served_document_matches_the_checked_in_copy(live: harness.Deployment) -> None:
    """/openapi.json, docs/gateway-openapi.json and openapi_document() are the same document."""
    served = httpx.get(f"{live.url}/openapi.json").json()
    checked_in = json.loads((ROOT / "docs" / "gateway-openapi.json").read_text())
    assert served == openapi_document()
    assert checked_in == served, "regenerate docs/gateway-openapi.json from emulators.gateway.openapi"


@pytest.fixture
def api_schema(live: harness.Deployment) -> Any:
    """The schema loaded from the live gateway, for schemathesis."""
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_route_answers_500(case: Any) -> None:
    """Generated requests to every documented route get a documented status, never a 5xx server error."""
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance],
                           timeout=20)
