"""The live gateway against its own OpenAPI document: every operation, fed what the document
allows (positive) and what it forbids (negative), answers no 5xx and nothing the document
does not describe: status, content type, body and headers.

Generation is derandomized: each run sends the same requests, so a failure reproduces.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bench.harness import System, system
from services.gateway.app import ROUTES
from services.gateway.openapi import document
from shared.accounts import create_key

pytestmark = pytest.mark.e2e

# Bounds the run (about 10 operations x 2 modes) to well under a minute.
EXAMPLES = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
DOCUMENT = document(ROUTES)
OPERATIONS = sorted((path, method) for path, item in DOCUMENT["paths"].items()
                    for method in item)


def _has_input(definition: dict[str, Any]) -> bool:
    return bool(definition.get("parameters") or definition.get("requestBody"))


# Negative cases need something to send wrong: a parameter or a body.
RUNS = [(path, method, mode) for path, method in OPERATIONS
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if mode is GenerationMode.POSITIVE or _has_input(DOCUMENT["paths"][path][method])]


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("logs")
    namespace = f"fuzz-{secrets.token_hex(4)}"
    # A rate limit this high is never reached: the fuzzer's submits reach validation.
    with system(redis_url, database_url, namespace, logs, OEE_AUTH="required",
                OEE_RATE_LIMIT_PER_MIN="1000000") as started:
        yield started


@pytest.fixture(scope="module")
async def key(database_url: str) -> str:
    return await create_key(database_url, f"fuzz-{secrets.token_hex(4)}", operator=True)


@pytest.fixture(scope="module")
def schema(running: System) -> Any:
    # Fetched here and loaded as a dict: loaded from its URL, schemathesis would leave out
    # the operation that serves the document.
    served = httpx.get(f"{running.url}/openapi.json", timeout=10)
    served.raise_for_status()
    return schemathesis.openapi.from_dict(served.json())


def test_the_served_document_is_the_one_fuzzed(schema: Any) -> None:
    served = sorted((op.ok().path, op.ok().method) for op in schema.get_all_operations())
    assert served == OPERATIONS


@pytest.mark.parametrize(("path", "method", "mode"), RUNS)
def test_every_operation_keeps_its_contract(
    schema: Any, key: str, running: System, path: str, method: str, mode: GenerationMode
) -> None:
    operation = schema[path][method.upper()]

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        case.call_and_validate(base_url=running.url, headers={"x-api-key": key},
                               checks=CHECKS, timeout=10)

    fuzz()


def test_an_accepted_submit_and_its_replay_keep_the_contract(
    schema: Any, key: str, running: System
) -> None:
    submit = schema["/orders/execute"]["POST"]
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5", "slippage": 0.01}
    headers = {"x-api-key": key, "Idempotency-Key": f"fuzz-{secrets.token_hex(4)}"}
    first = submit.Case(body=body).call_and_validate(
        base_url=running.url, headers=headers, checks=CHECKS, timeout=10)
    again = submit.Case(body=body).call_and_validate(
        base_url=running.url, headers=headers, checks=CHECKS, timeout=10)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    # schemathesis keeps headers with lowercase names and a list of values.
    assert again.headers["idempotent-replayed"] == ["true"]
    assert "idempotent-replayed" not in first.headers


def test_a_body_too_large_is_refused_as_documented(
    schema: Any, key: str, running: System
) -> None:
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5", "slippage": 0.01,
            "type": "x" * 17 * 1024}
    response = schema["/orders/execute"]["POST"].Case(body=body).call_and_validate(
        base_url=running.url, headers={"x-api-key": key}, checks=CHECKS, timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["rule"] == "size"


def test_a_missing_key_is_refused_as_documented(schema: Any, running: System) -> None:
    case = schema["/orders"]["GET"].Case(query={"limit": 1})
    response = case.call_and_validate(base_url=running.url, checks=CHECKS, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["rule"] == "unauthorized"


def test_docs_page_and_its_files_are_served_from_the_package(running: System) -> None:
    with httpx.Client(base_url=running.url, timeout=10) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "/openapi.json" in page.text
        for asset in ("/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js",
                      "/docs/swagger-ui-standalone-preset.js"):
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 1000, asset
        # Nothing on the page comes from another host.
        assert "http://" not in page.text and "https://" not in page.text
