"""The GraphQL documents the product's W&B paths send, kept as a corpus under `documents/`.

Regenerate it by running the W&B tests with `WANDB_STANDIN_DOCUMENTS` naming the folder
(every stand-in then writes the distinct documents it received there, one file each):

    rm -rf tests/wandb_server/documents
    WANDB_STANDIN_DOCUMENTS=tests/wandb_server/documents uv run pytest tests/test_*wandb*.py ...

`tests/test_wandb_documents.py` validates every file against `schema.graphql`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

DOCUMENTS = Path(__file__).parent / "documents"
RECORD_ENV = "WANDB_STANDIN_DOCUMENTS"

_OPERATION = re.compile(r"\b(?:query|mutation|subscription)\s+([_A-Za-z]\w*)")


def operation_name(name: str | None, document: str) -> str:
    """The request's operationName, else the document's first named operation, else `anonymous`."""
    if name:
        return name
    match = _OPERATION.search(document)
    return match.group(1) if match else "anonymous"


def save(documents: Iterable[tuple[str | None, str]], directory: Path) -> list[Path]:
    """Write each (operationName, document) as `<operation>.<hash>.graphql`; returns the paths.

    The file name carries a hash of the document, so recording is idempotent and two
    documents under one operation name (two wandb code paths) are both kept.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in documents:
        if not document.strip():
            continue
        digest = hashlib.sha256(document.encode()).hexdigest()[:10]
        path = directory / f"{operation_name(name, document)}.{digest}.graphql"
        if not path.exists():
            path.write_text(document if document.endswith("\n") else document + "\n")
        written.append(path)
    return written
