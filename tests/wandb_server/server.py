"""A loopback HTTP server that stands in for W&B, for the real, unpatched wandb client.

It serves `/graphql`, the run `file_stream` endpoint and run file uploads, keeping all
data in memory so tests can inspect what the client sent.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
import secrets
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from graphql import GraphQLError

from .graphql import Rejected, Resolvers
from .state import AgentRecord, RunRecord, ServerState, SweepRecord

log = logging.getLogger(__name__)

_OPERATION = re.compile(r"\b(?:query|mutation)\s+([_A-Za-z]\w*)")
_FILE_STREAM = re.compile(r"^/files/([^/]+)/([^/]+)/([^/]+)/file_stream$")
_STORAGE = re.compile(r"^/storage/([^/]+)/([^/]+)/([^/]+)/(.+)$")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients dropping keep-alive connections is normal; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class WandbServer:
    """The stand-in server: `start()`/`stop()` or use it as a context manager."""

    def __init__(self, entity: str = "standin", crash_after_s: float = 300.0) -> None:
        """`crash_after_s`: how long a running run may stay silent (no file_stream, no
        upsertBucket, no agent heartbeat listing it) before it is crashed; W&B's is about 5
        minutes (W&B docs, "Signal handling and sweep runs"). Tests pass a shorter one."""
        self.entity = entity
        # wandb 0.31 accepts "<prefix>-<40+ word characters>" keys for on-prem hosts.
        self.api_key = "local-" + secrets.token_hex(20)
        self.state = ServerState(crash_after_s)
        self.requests: list[tuple[str, str, str | None, str]] = []
        self.errors: list[str] = []
        # Each distinct (operationName, document) received, in arrival order.
        self.documents: dict[tuple[str | None, str], None] = {}
        self.unreachable = False
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._resolvers: Resolvers | None = None
        self.url = ""

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> WandbServer:
        handler = type("Handler", (_Handler,), {"server_ref": self})
        self._httpd = _HTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._resolvers = Resolvers(self.state, self.entity, self.url)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="wandb-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> WandbServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- inspection ------------------------------------------------------------------

    @property
    def sweeps(self) -> dict[str, SweepRecord]:
        with self.state.lock:
            return dict(self.state.sweeps)

    @property
    def runs(self) -> dict[str | tuple[str, str, str], RunRecord]:
        """Runs keyed both by (entity, project, run_id) and by bare run_id."""
        with self.state.lock:
            self.state.expire_silent_runs()
            keyed: dict[str | tuple[str, str, str], RunRecord] = dict(self.state.runs)
            keyed.update({run.id: run for run in self.state.runs.values()})
            return keyed

    @property
    def agents(self) -> dict[str, AgentRecord]:
        with self.state.lock:
            return dict(self.state.agents)

    def payload_text(self) -> str:
        """Every request body and stored value as one string (no Authorization headers)."""
        with self.state.lock:
            parts = [body for _, _, _, body in self.requests]
            for sweep in self.state.sweeps.values():
                parts += [repr(vars(sweep))]
            for run in self.state.runs.values():
                parts += [repr(vars(run))]
                parts += [data.decode(errors="replace") for data in run.files.values()]
        return "\n".join(parts)

    def operations(self) -> list[str]:
        """Names of the GraphQL operations received so far, in order."""
        with self.state.lock:
            return [op for _, _, op, _ in self.requests if op]

    # -- control ---------------------------------------------------------------------

    def stop_run(self, run_id: str) -> None:
        """Stand in for the W&B App's "Stop run" button (W&B docs, "Stop a run").

        The next heartbeat of the run's agent sends `stop` for it, its file_stream answers
        `"stopped": true`, and it ends `killed` however its process exits.

        Raises:
            KeyError: no run has this id.
        """
        with self.state.lock:
            run = self.state.find_run(None, None, run_id)
            if run is None:
                raise KeyError(run_id)
            run.stop_requested = True

    def delete_sweep(self, sweep_id: str) -> None:
        """Stand in for deleting a sweep in the W&B App: it is gone from every query, and its
        agents' heartbeats (and new agents) get HTTP 404, which wandb raises as
        SweepNotFoundError. Its runs stay in the project, as W&B keeps them.

        Raises:
            KeyError: no sweep has this id.
        """
        with self.state.lock:
            del self.state.sweeps[sweep_id]

    def set_unreachable(self, unreachable: bool = True) -> None:
        """While set, answer every request with 503, as an overloaded or down server would."""
        self.unreachable = unreachable

    def revoke_key(self) -> None:
        """Refuse the key from now on (401), as W&B does once a user deletes their API key."""
        self.api_key = "revoked-" + secrets.token_hex(20)

    # -- request handling (called from handler threads) ------------------------------

    def graphql(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert self._resolvers is not None
        query = body.get("query") or ""
        operation = body.get("operationName") or None
        with self.state.lock:
            self.documents.setdefault((operation, query), None)
        with self.state.lock:
            self.state.expire_silent_runs()
            result = self._resolvers.execute(query, body.get("variables") or {}, operation)
        if not result.errors:
            return HTTPStatus.OK, {"data": result.data}
        refused = [err for err in result.errors if err.path is None]
        if refused:
            # W&B's GraphQL server (gqlgen: graphql/handler/transport/http_post.go) answers a
            # document it cannot parse, validate or bind variables to with 422, no data, and
            # gqlparser's messages, which quote names in double quotes (wandb matches that
            # text: sdk/artifacts/_gqlutils.py, `Cannot query field "features" ...`).
            errors = [_gqlgen_error(err, refused=True) for err in refused]
            for error in errors:
                self._complain(f"refused ({error['message']})", query)
            return HTTPStatus.UNPROCESSABLE_ENTITY, {"errors": errors, "data": None}
        for err in result.errors:
            if isinstance(err.original_error, Rejected):
                # As W&B answers a request it refuses: the status, the message, the
                # mutation's path.
                error = {"message": err.message, "path": [err.original_error.field]}
                return err.original_error.status, {
                    "errors": [error],
                    "data": {err.original_error.field: None},
                }
        errors = [_gqlgen_error(err) for err in result.errors]
        for error in errors:
            self._complain(error["message"], query)
        return HTTPStatus.OK, {"data": result.data, "errors": errors}

    def file_stream(
        self, entity: str, project: str, run_id: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Apply one file_stream POST: history/summary/events/output chunks and completion.

        Returns the HTTP status and the JSON answer. The answer says `"stopped": true` once
        the run was asked to stop (`stop_run`, hyperband, a cancelled sweep): wandb-core
        keeps the last answer (core/internal/filestream, `IsStopped`), and the run process's
        stop checker (wandb/sdk/lib/run_stopping.py, every 15 s) then interrupts its main
        thread with SIGINT (`interrupt_main`).
        """
        with self.state.lock:
            run = self.state.find_run(entity, project, run_id)
            if run is None:
                self._complain(f"file_stream for unknown run {entity}/{project}/{run_id}", "")
                return HTTPStatus.NOT_FOUND, {"error": f"run {run_id} not found"}
            run.seen_at = time.monotonic()
            self.state.expire_silent_runs()
            for name, chunk in (body.get("files") or {}).items():
                offset = int(chunk.get("offset") or 0)
                lines: list[str] = chunk.get("content") or []
                if name == "wandb-history.jsonl":
                    _place(run.history, offset, [json.loads(line) for line in lines])
                elif name == "wandb-events.jsonl":
                    _place(run.events, offset, [json.loads(line) for line in lines])
                elif name == "wandb-summary.json":
                    for line in lines:
                        run.summary = json.loads(line)
                elif name == "output.log":
                    _place(run.output, offset, lines)
            if run.state == "pending":
                run.state = "running"
            self.state.run_updated(run)  # hyperband and metric.target, as W&B's server
            if body.get("preempting"):  # the client's mark_preempting()
                run.state = "preempting"
            if body.get("complete"):
                run.exitcode = body.get("exitcode")
                run.uploads += 1
                if run.stop_requested:
                    # W&B docs, "Stop a run": the state goes from running to Killed,
                    # however the process then ended.
                    run.state = "killed"
                elif run.state == "preempting" and run.exitcode != 0:
                    run.state = "preempted"  # requeued: the next idle agent resumes it
                else:
                    run.state = "finished" if run.exitcode == 0 else "failed"
            return HTTPStatus.OK, {"exitcode": None, "limits": {}, "stopped": run.stop_requested}

    def store_file(self, entity: str, project: str, run_id: str, path: str, data: bytes) -> int:
        with self.state.lock:
            run = self.state.find_run(entity, project, run_id)
            if run is None:
                return HTTPStatus.NOT_FOUND
            run.files[path] = data
        return HTTPStatus.OK

    def read_file(self, entity: str, project: str, run_id: str, path: str) -> bytes | None:
        with self.state.lock:
            run = self.state.find_run(entity, project, run_id)
            return None if run is None else run.files.get(path)

    def record(self, method: str, path: str, body: str) -> None:
        operation = None
        if path.startswith("/graphql"):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {}
            match = _OPERATION.search(parsed.get("query") or "")
            operation = parsed.get("operationName") or (match.group(1) if match else None)
        with self.state.lock:
            self.requests.append((method, path, operation, body))

    def check_auth(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user_key = base64.b64decode(header[6:]).decode()
        except ValueError:
            return False
        return user_key.partition(":")[2] == self.api_key

    def _complain(self, message: str, query: str) -> None:
        """Unknown operations are reported loudly so missing protocol parts are obvious."""
        self.errors.append(message)
        print(f"[wandb stand-in] {message}\n{query}", file=sys.stderr)


def _gqlgen_error(err: GraphQLError, refused: bool = False) -> dict[str, Any]:
    """graphql-core's error as gqlgen writes it: names in double quotes and, for a refused
    request, gqlgen's `extensions.code` (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED)."""
    error = dict(err.formatted)
    error["message"] = re.sub(r"'([^'\s]+)'", r'"\1"', err.message)
    if refused:
        parse = err.message.startswith("Syntax Error")
        error["extensions"] = {
            "code": "GRAPHQL_PARSE_FAILED" if parse else "GRAPHQL_VALIDATION_FAILED"
        }
    return error


def _place(target: list[Any], offset: int, items: list[Any]) -> None:
    """Write `items` at line `offset`, so a retried chunk replaces rather than duplicates."""
    del target[offset:]
    target.extend(items)


class _Handler(BaseHTTPRequestHandler):
    server_ref: WandbServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().strip() or b"0", 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            data = gzip.decompress(data)
        return data

    def _reply(self, status: int, payload: Any = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        srv = self.server_ref
        body = self._body()
        path = self.path.split("?", 1)[0]
        srv.record(self.command, path, body.decode(errors="replace"))
        try:
            self._route(srv, path, body)
        except Exception as err:
            # A bug in the stand-in must fail the client fast, not leave it waiting.
            srv._complain(f"stand-in crashed on {self.command} {path}: {err!r}", "")
            log.exception("stand-in crashed")
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"errors": [{"message": repr(err)}]})

    def _route(self, srv: WandbServer, path: str, body: bytes) -> None:
        if srv.unreachable:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "stand-in set unreachable"})
            return
        if storage := _STORAGE.match(path):
            if self.command == "PUT":
                self._reply(srv.store_file(*storage.groups(), body), {})
            else:
                data = srv.read_file(*storage.groups())
                self._reply(HTTPStatus.NOT_FOUND if data is None else HTTPStatus.OK, raw=data)
            return
        if not srv.check_auth(self.headers.get("Authorization")):
            self._reply(HTTPStatus.UNAUTHORIZED, {"errors": [{"message": "invalid api key"}]})
            return
        if path.startswith("/graphql") and self.command == "POST":
            self._reply(*srv.graphql(json.loads(body or b"{}")))
        elif (stream := _FILE_STREAM.match(path)) and self.command == "POST":
            self._reply(*srv.file_stream(*stream.groups(), json.loads(body or b"{}")))
        else:
            srv._complain(f"unsupported endpoint {self.command} {path}", "")
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint {path}"})

    do_GET = do_POST = do_PUT = _handle
