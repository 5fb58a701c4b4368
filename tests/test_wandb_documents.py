"""The stand-in's schema (tests/wandb_server/schema.graphql) against what the wandb client sends.

- A request the schema refuses gets the answer W&B's GraphQL server gives, and the wandb
  client raises it at once.
- Every document recorded from sweeper's W&B paths (tests/wandb_server/documents) validates.
- Every document the installed wandb client holds for those operations validates, so a new
  wandb that asks for a field the schema lacks fails here, naming the operation and the field.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import graphql
import pytest
from wandb_server import WandbServer, corpus
from wandb_server.graphql import schema

RECORDED = corpus.recorded()

# (request body, the stand-in's message: graphql-core's validator, names in double quotes as
# gqlparser, W&B's validator, writes them)
REFUSED = {
    "misspelled field": (
        {"query": "query Viewer { viewer { id usernam } }"},
        'Cannot query field "usernam" on type "User". Did you mean "username"?',
    ),
    "unknown argument": (
        {"query": 'query P { project(name: "p", entity: "e") { id } }'},
        'Unknown argument "entity" on field "Query.project".',
    ),
    "wrongly typed variable": (
        {
            "query": "query P($name: Int) { project(name: $name) { id } }",
            "variables": {"name": 3},
        },
        'Variable "$name" of type "Int" used in position expecting type "String".',
    ),
    "unknown input field": (
        {"query": 'mutation U { upsertSweep(input: {configg: "x"}) { sweep { name } } }'},
        'Expected value of type "UpsertSweepInput" not to include unknown field "configg". '
        'Did you mean "config"? Found: { configg: "x" }.',
    ),
    "undeclared variable": (
        {"query": "query P { project(name: $name) { id } }", "variables": {"name": "p"}},
        'Variable "$name" is not defined by operation "P".',
    ),
}


def _post(server: WandbServer, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    token = base64.b64encode(f"api:{server.api_key}".encode()).decode()
    request = urllib.request.Request(
        f"{server.url}/graphql",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def problems(operation: str, document: str) -> list[str]:
    """Why `document` does not validate against the schema, one line each naming the
    operation and the field (empty: it validates)."""
    try:
        parsed = graphql.parse(document)
    except graphql.GraphQLError as err:
        return [f"operation {operation}: {err.message}"]
    return [f"operation {operation}: {err.message}" for err in graphql.validate(schema(), parsed)]


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_a_request_the_schema_refuses_gets_w_and_bs_422(case: str) -> None:
    body, message = REFUSED[case]
    with WandbServer() as server:
        status, answer = _post(server, body)

    # gqlgen (graphql/handler/transport/http_post.go): 422, no data, the validator's errors.
    assert status == 422
    assert answer["data"] is None
    assert [e["message"] for e in answer["errors"]] == [message]
    assert answer["errors"][0]["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert answer["errors"][0]["locations"]
    # ... and the stand-in says so loudly: a refused document is a gap in the schema or a
    # product bug, never silently null.
    assert any(message in error for error in server.errors)


def test_a_valid_request_is_answered() -> None:
    with WandbServer() as server:
        status, answer = _post(server, {"query": "query Viewer { viewer { id username } }"})

    assert (status, answer) == (
        200,
        {"data": {"viewer": {"id": "VXNlcjox", "username": "standin"}}},
    )
    assert server.errors == []


def test_the_wandb_client_raises_a_refusal_at_once(wandb_server: WandbServer) -> None:
    import wandb
    from wandb.sdk.lib.service.service_connection import WandbApiFailedError

    api = wandb.Api()
    started = time.monotonic()
    with pytest.raises(WandbApiFailedError, match='Cannot query field "usernam" on type "User"'):
        api._service_api.execute_graphql("query Viewer { viewer { id usernam } }")

    # wandb-core never retries a 422 (core/internal/clients: RetryableStatus), so the error
    # surfaces at once instead of after minutes of retries.
    assert time.monotonic() - started < 5
    assert sum("id usernam }" in body for _, _, _, body in wandb_server.requests) == 1


def test_the_corpus_holds_the_product_paths_operations() -> None:
    # The agent protocol, a run's own upserts and the public API's sweep and run reads.
    for operation in ("UpsertSweep", "CreateAgent", "Heartbeat", "UpsertBucket", "Runs"):
        assert operation in RECORDED, f"re-record the corpus: {operation} is missing"


@pytest.mark.parametrize(
    "path",
    [path for paths in RECORDED.values() for path in paths],
    ids=lambda path: path.name,
)
def test_each_recorded_document_validates(path: Path) -> None:
    assert problems(path.name.split(".", 1)[0], path.read_text()) == []


def test_a_document_asking_for_a_field_the_schema_lacks_is_named() -> None:
    document = RECORDED["UpsertBucket"][0].read_text().replace("inserted", "inserted\nrenamed")

    assert problems("UpsertBucket", document) == [
        "operation UpsertBucket: Cannot query field 'renamed' on type 'UpsertBucketPayload'."
    ]


@pytest.mark.parametrize("operation", sorted(RECORDED))
def test_the_installed_clients_documents_validate(operation: str) -> None:
    documents = corpus.installed_documents(operation)

    assert documents, f"the installed wandb client holds no {operation}: re-record the corpus"
    found = [
        f"{document.source}: {problem}"
        for document in documents
        if not document.template
        for problem in problems(operation, document.text)
    ]
    assert found == []
