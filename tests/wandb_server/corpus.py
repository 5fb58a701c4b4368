"""The GraphQL documents sweeper's W&B paths send, and those the installed wandb client holds.

`documents/` keeps each distinct (operation, document) the stand-in received while the W&B
tests ran, one `<operation>.<hash>.graphql` file each. Regenerate it after a wandb upgrade:

    cd tests && uv run python -m wandb_server.corpus

which empties the folder and runs the W&B test files (`recording_groups`, a few at a time) with
`WANDB_STANDIN_DOCUMENTS` naming it, so every stand-in writes there what it received.

`installed_documents` finds the documents the installed client holds for an operation: in
the text of wandb-core (`wandb/bin/wandb-core`; genqlient's documents are static strings)
and of the Python packages (`wandb`, `wandb_workspaces`). tests/test_wandb_documents.py
validates both against `schema.graphql`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DOCUMENTS = Path(__file__).parent / "documents"
RECORD_ENV = "WANDB_STANDIN_DOCUMENTS"

TESTS = Path(__file__).parents[1]


def recording_groups() -> list[list[str]]:
    """The W&B test files whose runs make up the corpus, a few per pytest run."""
    files = [TESTS / "test_backend_wandb.py", TESTS / "test_commands_wandb.py"]
    files += [TESTS / "test_report_wandb.py", TESTS / "test_read_as_wandb.py"]
    files += [TESTS / "test_offline_mirror.py", *sorted(TESTS.glob("test_wandb_*.py"))]
    # Its documents are wrong on purpose (a misspelled field): never part of the corpus.
    files.remove(TESTS / "test_wandb_documents.py")
    groups = [[str(path) for path in files[i : i + 3]] for i in range(0, len(files), 3)]
    return [*groups, [str(TESTS / "test_backend_protocol.py"), "-k", "wandb"]]


_OPERATION = re.compile(r"\b(?:query|mutation|subscription)\s+([_A-Za-z]\w*)")
_SPREAD = re.compile(r"\.\.\.\s*(?!on\b)([_A-Za-z]\w*)")


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


def recorded(directory: Path = DOCUMENTS) -> dict[str, list[Path]]:
    """The corpus: operation name -> its recorded document files, sorted."""
    found: dict[str, list[Path]] = {}
    for path in sorted(directory.glob("*.graphql")):
        found.setdefault(path.name.split(".", 1)[0], []).append(path)
    return found


# -- the installed client's documents ---------------------------------------------------------


@dataclass(frozen=True)
class ClientDocument:
    """One document of the installed client: where it was found, and its text.

    `template` is true for a Python f-string or str.format document whose placeholders
    (`{fragment}`) are filled in at run time: only the recorded corpus shows what it sends.
    """

    source: str
    text: str
    template: bool


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


@cache
def _sources() -> tuple[tuple[str, str], ...]:
    """(label, text) of wandb-core and of every Python file of wandb and wandb_workspaces."""
    sources: list[tuple[str, str]] = []
    wandb_dir = _package_dir("wandb")
    if wandb_dir is None:
        raise RuntimeError("wandb is not installed")
    core = wandb_dir / "bin" / "wandb-core"
    sources.append(("wandb-core", core.read_bytes().decode("latin-1")))
    for package in ("wandb", "wandb_workspaces"):
        root = _package_dir(package)
        if root is None:
            continue
        for path in sorted(root.rglob("*.py")):
            text = path.read_text(errors="replace")
            if "query " in text or "mutation " in text or "fragment " in text:
                sources.append((f"{package}/{path.relative_to(root)}", text))
    return tuple(sources)


def _balanced(text: str, start: int) -> str | None:
    """The text from `start` through the `}` closing the first `{` after it, else None."""
    opening = text.find("{", start, start + 4000)
    if opening < 0:
        return None
    depth = 0
    for index in range(opening, min(len(text), opening + 100_000)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return None


_DEFINITION = re.compile(r"\b(query|mutation|fragment)\s+([_A-Za-z]\w*)\b")
# A marker a Python builder replaces at run time (`_PROJECT_QUERY_` in wandb's UpsertSweep).
_MARKER = re.compile(r"\b_[A-Z][A-Z0-9_]*_\b")


@cache
def _index() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(keyword, name) -> [(source label, definition text)], over every source, in one pass."""
    index: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for label, text in _sources():
        for match in _DEFINITION.finditer(text):
            found = _balanced(text, match.start())
            if found is not None:
                index.setdefault((match.group(1), match.group(2)), []).append((label, found))
    return index


def _render(text: str) -> tuple[str, bool]:
    """A definition's text as sent, as far as it can be known: an f-string's or
    str.format's `{{`/`}}` unescaped; whether a run-time placeholder (`{name}`, `{}`,
    `_MARKER_`) remains, which only the run shows."""
    marked = text.replace("{{", "\x00").replace("}}", "\x01") if "{{" in text else text
    template = bool(re.search(r"\{[^{}\x00\x01]*\}", marked)) if "{{" in text else False
    template = template or bool(_MARKER.search(text))
    return marked.replace("\x00", "{").replace("\x01", "}"), template


@cache
def _fragment(name: str) -> str | None:
    """A fragment's definition (wandb-core's first), rendered; None if only templates have it."""
    for _, found in _index().get(("fragment", name), []):
        rendered, template = _render(found)
        if not template:
            return rendered
    return None


def installed_documents(operation: str) -> list[ClientDocument]:
    """Every document for `operation` in the installed wandb-core and Python packages, with the
    fragments it spreads appended (found anywhere in those sources)."""
    documents: dict[tuple[str, str], ClientDocument] = {}
    for keyword in ("query", "mutation"):
        for label, found in _index().get((keyword, operation), []):
            rendered, template = _render(found)
            wanted = _SPREAD.findall(rendered)
            seen: set[str] = set()
            while wanted:
                name = wanted.pop()
                if name in seen:
                    continue
                seen.add(name)
                definition = _fragment(name)
                if definition is None:
                    template = True  # a spread filled in at run time (`...{name}`)
                    continue
                rendered += "\n" + definition
                wanted += _SPREAD.findall(definition)
            documents.setdefault((label, rendered), ClientDocument(label, rendered, template))
    return list(documents.values())


# -- regenerating the corpus ------------------------------------------------------------------


def record(directory: Path = DOCUMENTS) -> int:
    """Empty `directory`, then run the W&B test groups recording into it.

    Returns the worst pytest exit status (0: every group passed).
    """
    for stale in directory.glob("*.graphql"):
        stale.unlink()
    env = {**os.environ, RECORD_ENV: str(directory.resolve()), "NO_ALBUMENTATIONS_UPDATE": "1"}
    worst = 0
    for group in recording_groups():
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *group]
        worst = max(worst, subprocess.call(command, env=env, cwd=TESTS.parent))
    return worst


if __name__ == "__main__":
    sys.exit(record())
