"""The live gateway against its own OpenAPI document, fuzzed by schemathesis as a client
from outside would run it: every check (``--checks all``), the phases examples, coverage,
fuzzing and stateful, with the project's ``schemathesis.toml``. It must find nothing, give
no operation only 404s, and reach a cancel through the document's links.

The seed is fixed, so a failure reproduces. Before a release, run it longer with a random
seed, which it prints (README, Tests):

    OEE_FUZZ_EXAMPLES=2000 pytest tests/e2e/test_schemathesis.py -s

``OEE_FUZZ_SEED`` runs a given seed again.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
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

ROOT = Path(__file__).resolve().parents[2]
# Examples per operation and stateful scenarios: the run takes under a minute.
LONG = "OEE_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("OEE_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("OEE_FUZZ_SEED") or (
    random.SystemRandom().randrange(2**64) if LONG else 20261206))
# For the single requests below.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
OPERATIONS = sorted((path, method) for path, item in document(ROUTES)["paths"].items()
                    for method in item)


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


@pytest.mark.timeout(0 if LONG else 300)
def test_the_fuzzer_finds_nothing_with_every_check(
    running: System, key: str, tmp_path: Path
) -> None:
    # Printed, so a failing run can be run again (pytest shows it with the failure).
    print(f"schemathesis: seed {SEED}, {EXAMPLES} examples", file=sys.stderr)
    command = [
        sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
        "--config-file", str(ROOT / "schemathesis.toml"), "--no-color",
        "run", f"{running.url}/openapi.json", "-H", f"x-api-key: {key}",
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--seed", str(SEED), "--max-examples", str(EXAMPLES),
        "--report", "ndjson", "--report-dir", str(tmp_path),
    ]
    # Run from the temporary folder, where schemathesis keeps its cache; the hooks that
    # schemathesis.toml names are imported from the project (PYTHONPATH).
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=None if LONG else 240)
    summary = done.stdout[done.stdout.find("FAILURES"):][-8000:]
    assert done.returncode == 0, f"seed {SEED}:\n{summary}\n{done.stderr[-2000:]}"
    assert "No issues found" in done.stdout, done.stdout[-3000:]

    answers = statuses(next(tmp_path.glob("*.ndjson")))
    # Loaded from its URL, the document's own operation is left out of the run.
    operations = {f"{method.upper()} {path}" for path, method in OPERATIONS} - {
        "GET /openapi.json"}
    assert operations <= set(answers), operations - set(answers)
    only_404 = sorted(op for op in operations if set(answers[op]) <= {404})
    assert not only_404, only_404
    # The stateful phase follows the submit's links to a cancel that succeeds: a limit the
    # market does not meet stays open until then.
    assert answers["DELETE /orders/{order_id}"][202] > 0, answers["DELETE /orders/{order_id}"]


def statuses(report: Path) -> dict[str, Counter[int]]:
    """Every status each operation answered in a run, from its NDJSON report."""
    found: defaultdict[str, Counter[int]] = defaultdict(Counter)
    with report.open() as lines:
        for line in lines:
            event = json.loads(line)
            recorder = event.get("ScenarioFinished", {}).get("recorder", {})
            interactions = recorder.get("interactions") or {}
            for case_id, case in (recorder.get("cases") or {}).items():
                response = (interactions.get(case_id) or {}).get("response")
                if response:
                    value = case["value"]
                    found[f"{value['method']} {value['path']}"][response["status_code"]] += 1
    return found


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
