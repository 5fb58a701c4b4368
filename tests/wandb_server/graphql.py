"""Resolvers for the part of W&B's GraphQL schema that the wandb client uses.

graphql-core parses, validates and executes every request against `schema.graphql` (the
types, fields and arguments the wandb 0.31 client sends), so a document W&B would refuse
is refused here too. Resolved objects are dicts whose values are data or callables taking
the field's arguments (a dict), evaluated only when selected. The schema has no interface
or union (none of the documents asks for one), so no value needs to name its type.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import graphql as graphql_core

from . import views
from .filters import matches, sort_runs
from .state import (
    LIVE_RUN_STATES,
    SWEEP_STATES,
    AgentRecord,
    RunRecord,
    ServerState,
    SweepRecord,
    grid_size,
    new_id,
    sweep_config_violations,
)

Node = dict[str, Any]

SERVER_FEATURES = (
    "LARGE_FILENAMES",
    "STRUCTURED_CONSOLE_LOGS",
    "MARK_RUN_FILES_UPLOADED",
    "SWEEPS_QUERY_FILTERING",
    "FILESTREAM_GZIP",
    "SWEEPS_LOCAL_SCHEDULER",
)
"""What `serverInfo.features` reports enabled: the features of wandb 0.31's ServerFeature enum
(wandb/proto/wandb_internal.proto) that current W&B servers enable (the client checks each
because the server gained it) and whose client paths the stand-in serves: run file names
as metadata, JSON console lines in file_stream (wandb-core runconsolelogs),
`markRunFilesUploaded` (wandb/apis/public/runs.py), sweep `filters` (server 0.81.4 and
later, wandb/apis/public/sweeps.py), gzip file_stream bodies, the local sweep scheduler's
`enqueueSweepRun` (wandb-core refuses to start `wandb sweep-scheduler` without it; the
public API's Sweep.enqueue_run checks it too).
Features of parts the stand-in does not serve (artifacts, registries, automations, Weave
eval tables) are left out, so wandb takes them as unsupported instead of calling an API
that is not there."""


SCHEMA = Path(__file__).with_name("schema.graphql")


@cache
def schema() -> graphql_core.GraphQLSchema:
    """`schema.graphql`, built once per process.

    Raises:
        graphql.GraphQLError: the file is not a valid schema.
    """
    return graphql_core.build_schema(SCHEMA.read_text())


class GraphQLError(Exception):
    """Reported to the client in the response's `errors` list."""


class StandInGap(GraphQLError):
    """The schema declares a field the stand-in's resolvers do not produce."""


class Rejected(GraphQLError):
    """A request the real server refuses with an HTTP error status (`status`: 400 for input
    it will not take, 404 for a sweep or agent that is gone), unlike a gap in the stand-in:
    not logged as a stand-in error. `field` is the mutation that refused it, as W&B reports
    in `path`."""

    def __init__(self, message: str, field: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def connection(items: list[Any], args: dict[str, Any], to_node: Callable[[Any], Node]) -> Node:
    """A Relay connection page (`edges`, `pageInfo`) over `items`, cursors being offsets."""
    start = int(args.get("after") or 0)
    first = args.get("first")
    end = len(items) if first is None else min(len(items), start + int(first))
    edges = [{"node": to_node(item), "cursor": str(i + 1)} for i, item in enumerate(items)]
    page = edges[start:end]
    return {
        "edges": page,
        "pageInfo": {
            "endCursor": page[-1]["cursor"] if page else None,
            "hasNextPage": end < len(items),
        },
    }


def _json_arg(value: Any) -> Any:
    """JSONString arguments arrive as JSON text (sometimes already decoded)."""
    if isinstance(value, str):
        return json.loads(value) if value else None
    return value


class Resolvers:
    """Builds the root objects for queries and mutations over one `ServerState`."""

    def __init__(self, state: ServerState, entity: str, base_url: str) -> None:
        self.state = state
        self.entity = entity
        self.base_url = base_url

    def execute(
        self, query: str, variables: dict[str, Any], operation: str | None
    ) -> graphql_core.ExecutionResult:
        """Parse, validate and run one GraphQL request; the caller holds the state lock.

        Returns graphql-core's result: errors without a `path` refused the request before it
        ran (syntax, validation, variable coercion); errors with one come from resolvers
        (their `original_error` is a `GraphQLError` of ours, `Rejected` among them).
        """
        return graphql_core.graphql_sync(
            schema(),
            query,
            root_value=self,
            variable_values=variables,
            operation_name=operation,
            field_resolver=self._resolve_field,
        )

    def _resolve_field(
        self, source: Any, info: graphql_core.GraphQLResolveInfo, **args: Any
    ) -> Any:
        """The dict convention: the field's value, called with its arguments if callable.

        Raises:
            StandInGap: the object has no entry for a field the schema declares.
        """
        if source is self:  # a root field: one fresh root object per field, as before
            query = info.parent_type is info.schema.query_type
            source = self.query_root() if query else self.mutation_root()
        if not isinstance(source, Mapping) or info.field_name not in source:
            raise StandInGap(
                f"stand-in W&B server lacks {info.parent_type.name}.{info.field_name} "
                f"(operation {info.operation.name.value if info.operation.name else '<anonymous>'})"
            )
        value = source[info.field_name]
        return value(args) if callable(value) else value

    # -- roots ---------------------------------------------------------------------

    def query_root(self) -> Node:
        return {
            "viewer": self.viewer(),
            "serverInfo": {
                "features": [{"name": name, "isEnabled": True} for name in SERVER_FEATURES],
            },
            "project": self.project_field,
            "model": self.project_field,
            "models": self.models,
            "entity": lambda args: self.entity_node(args.get("name") or self.entity),
            "view": lambda args: views.view_field(self, args),
        }

    def mutation_root(self) -> Node:
        return {
            "upsertSweep": self.upsert_sweep,
            "createAgent": self.create_agent,
            "agentHeartbeat": self.agent_heartbeat,
            "upsertBucket": self.upsert_bucket,
            "createRunFiles": self.create_run_files,
            "enqueueSweepRun": self.enqueue_sweep_run,
            "stopRun": self.stop_run,
            "upsertView": lambda args: views.upsert_view(self, args),
        }

    # -- nodes ---------------------------------------------------------------------

    def viewer(self) -> Node:
        return {
            "id": "VXNlcjox",
            "name": self.entity,
            "username": self.entity,
            "email": f"{self.entity}@example.invalid",
            "entity": self.entity,
            "admin": False,
            "flags": "{}",
            "deletedAt": None,
            "apiKeys": {"edges": []},
            "teams": {"edges": [{"node": {"name": self.entity}}]},
        }

    def entity_node(self, name: str) -> Node:
        # A personal entity belongs to no organization: W&B answers null (wandb-core then
        # skips its CoreWeave organization lookup).
        return {"id": f"entity-{name}", "name": name, "organization": None}

    def project_node(self, entity: str, name: str) -> Node:
        project_id = self.state.touch_project(entity, name)
        in_project = [
            r for r in self.state.runs.values() if r.entity == entity and r.project == name
        ]
        # Newest first, as W&B lists a project's sweeps (the GetSweeps query of
        # wandb/apis/public/sweeps.py sends no order; issue 21 checked W&B's).
        sweeps = [
            s
            for s in reversed(self.state.sweeps.values())
            if (s.entity, s.project) == (entity, name)
        ]

        def sweeps_page(args: dict[str, Any]) -> Node:
            # wandb sends `filters` ("{}" unless the caller filters) once the server has
            # SWEEPS_QUERY_FILTERING (wandb/apis/public/sweeps.py, Sweeps).
            if _json_arg(args.get("filters")):
                raise StandInGap(f"stand-in W&B server does not filter sweeps: {args['filters']}")
            return connection(sweeps, args, self.sweep_node)

        def runs(args: dict[str, Any]) -> Node:
            chosen = [r for r in in_project if matches(r, _json_arg(args.get("filters")))]
            return connection(sort_runs(chosen, args.get("order")), args, self.run_node)

        def sweep(args: dict[str, Any]) -> Node | None:
            found = self.state.find_sweep(entity, name, args["sweepName"])
            return None if found is None else self.sweep_node(found)

        def run(args: dict[str, Any]) -> Node | None:
            found = self.state.find_run(entity, name, args["name"])
            return None if found is None else self.run_node(found)

        return {
            "id": str(project_id),
            "internalId": str(project_id),
            "name": name,
            "entityName": entity,
            "entity": self.entity_node(entity),
            "createdAt": "2024-01-01T00:00:00",
            "isBenchmark": False,
            "readOnly": False,
            "user": self.viewer(),
            "totalSweeps": len(sweeps),
            "sweeps": sweeps_page,
            "sweep": sweep,
            "runCount": lambda args: len(
                [r for r in in_project if matches(r, _json_arg(args.get("filters")))]
            ),
            "runs": runs,
            "run": run,
            "bucket": run,
        }

    def project_field(self, args: dict[str, Any]) -> Node | None:
        """`project(name, entityName)`: null for a project nobody has written to."""
        entity = args.get("entityName") or self.entity
        name = args.get("name")
        if (entity, name) not in self.state.projects:
            return None
        return self.project_node(entity, name)

    def models(self, args: dict[str, Any]) -> Node:
        entity = args.get("entityName") or self.entity
        names = [p for (e, p) in self.state.projects if e == entity]
        return connection(names, args, lambda p: self.project_node(entity, p))

    def sweep_node(self, sweep: SweepRecord) -> Node:
        runs = self.state.sweep_runs(sweep)
        return {
            "id": sweep.storage_id,
            "name": sweep.id,
            "displayName": sweep.display_name,
            "method": sweep.config.get("method", "grid"),
            "state": sweep.state,
            "description": sweep.description,
            "bestLoss": self.best_loss(sweep, runs),
            "config": sweep.config_yaml,
            "createdAt": sweep.created_at,
            "updatedAt": sweep.updated_at,
            "heartbeatAt": sweep.updated_at,
            "runCount": len(runs),
            "runCountExpected": grid_size(sweep.config),
            "earlyStopJobRunning": False,
            "controller": sweep.controller,
            "scheduler": sweep.scheduler,
            "controllerRunName": sweep.controller_run_name,
            "project": lambda args: self.project_node(sweep.entity, sweep.project),
            "runs": lambda args: connection(
                [r for r in runs if matches(r, _json_arg(args.get("filters")))],
                args,
                self.run_node,
            ),
        }

    @staticmethod
    def best_loss(sweep: SweepRecord, runs: list[RunRecord]) -> float | None:
        metric = sweep.config.get("metric") or {}
        values = [
            r.summary[metric["name"]]
            for r in runs
            if metric.get("name") in r.summary
            and isinstance(r.summary[metric["name"]], int | float)
            and math.isfinite(r.summary[metric["name"]])  # a GraphQL Float is finite
        ]
        if not values:
            return None
        return max(values) if metric.get("goal") == "maximize" else min(values)

    def agent_node(self, agent: AgentRecord) -> Node:
        return {"id": agent.id}

    def run_node(self, run: RunRecord) -> Node:
        history = run.history
        last_step = max((row.get("_step", i) for i, row in enumerate(history)), default=-1)
        return {
            "id": run.storage_id,
            "name": run.id,
            "displayName": run.display_name or run.id,
            "description": run.description,
            "notes": run.notes,
            "tags": run.tags,
            "sweepName": run.sweep_id,
            "state": run.state,
            "config": json.dumps(run.raw_config),
            "group": run.group,
            "jobType": run.job_type,
            "commit": None,
            "readOnly": False,
            "createdAt": run.created_at,
            "heartbeatAt": run.heartbeat_at,
            "exitcode": run.exitcode,
            "shouldStop": run.stop_requested,
            # "Asked to stop", as wandb's launch agent reads it (sdk/launch/api.py,
            # `check_stop_requested`), not "ended killed".
            "stopped": run.stop_requested,
            "failed": run.state in ("failed", "crashed"),
            "running": run.state == "running",
            "systemMetrics": "{}",
            "summaryMetrics": json.dumps(run.summary),
            "historyLineCount": len(history),
            "logLineCount": len(run.output),
            "eventsLineCount": len(run.events),
            "historyTail": json.dumps([json.dumps(row) for row in history[-10:]]),
            "eventsTail": json.dumps([json.dumps(row) for row in run.events[-10:]]),
            "wandbConfig": lambda args: json.dumps(
                run.raw_config.get("_wandb", {}).get("value", {})
            ),
            "historyKeys": {
                "lastStep": last_step,
                "keys": {
                    key: {"typeCounts": [{"type": "number", "count": 1}]}
                    for row in history
                    for key in row
                },
            },
            "projectId": self.state.touch_project(run.entity, run.project),
            "project": lambda args: self.project_node(run.entity, run.project),
            "user": {"name": self.entity, "username": self.entity},
            "sampledHistory": lambda args: [
                self.sample(history, _json_arg(spec) or {}) for spec in args["specs"]
            ],
            # Nothing is exported to parquet here: every row is live, as on W&B before its
            # export job runs; wandb-core then reads those steps with `history`
            # (core/internal/runhistoryreader).
            "parquetHistory": lambda args: {
                "parquetUrls": [],
                "liveData": [
                    {key: row[key] for key in args["liveKeys"] if key in row} for row in history
                ],
            },
            "history": lambda args: [
                json.dumps(row)
                for row in history
                if args.get("minStep") is None
                or args["minStep"] <= row.get("_step", 0) < args.get("maxStep", float("inf"))
            ][: args.get("samples") or None],
        }

    @staticmethod
    def sample(history: list[dict[str, Any]], spec: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows holding every requested key, reduced to those keys (W&B's sampledHistory)."""
        keys = spec.get("keys") or []
        rows = [{k: row[k] for k in keys} for row in history if all(k in row for k in keys)]
        return rows[: spec.get("samples") or None]

    # -- mutations -----------------------------------------------------------------

    def upsert_sweep(self, args: dict[str, Any]) -> Node:
        fields = args["input"]
        entity = fields.get("entityName") or self.entity
        project = fields.get("projectName") or "uncategorized"
        if fields.get("id") and self.state.find_sweep(None, None, fields["id"]) is None:
            raise GraphQLError(f"sweep {fields['id']} not found")
        if fields.get("config"):
            violations = sweep_config_violations(fields["config"])
            if violations:
                raise Rejected(f"Invalid sweep config: {violations[0]}", "upsertSweep")
        if fields.get("state") is not None and fields["state"] not in SWEEP_STATES:
            # W&B has no other sweep states; the message is the stand-in's own.
            raise Rejected(f"invalid sweep state {fields['state']!r}", "upsertSweep")
        sweep = self.state.upsert_sweep(entity, project, fields)
        return {
            "sweep": self.sweep_node(sweep),
            "configValidationWarnings": [],
        }

    def create_agent(self, args: dict[str, Any]) -> Node:
        fields = args["input"]
        sweep = self.state.find_sweep(
            fields.get("entityName"), fields.get("projectName"), fields["sweep"]
        )
        if sweep is None:
            # W&B answers 404 for a sweep that does not exist or was deleted.
            raise Rejected(f"sweep {fields['sweep']} not found", "createAgent", status=404)
        agent = self.state.register_agent(sweep, fields.get("host") or "unknown")
        return {"agent": self.agent_node(agent)}

    def agent_heartbeat(self, args: dict[str, Any]) -> Node:
        fields = args["input"]
        agent = self.state.agents.get(fields["id"])
        if agent is None or agent.sweep_id not in self.state.sweeps:
            # W&B answers 404 once the agent's sweep is deleted; wandb turns that (and only
            # that) into SweepNotFoundError (wandb/apis/public/sweeps.py, _agent_heartbeat).
            raise Rejected(f"sweep of agent {fields['id']} not found", "agentHeartbeat", 404)
        run_state = _json_arg(fields.get("runState")) or {}
        commands = self.state.heartbeat(agent, run_state)
        return {"agent": self.agent_node(agent), "commands": json.dumps(commands)}

    def upsert_bucket(self, args: dict[str, Any]) -> Node:
        """Create or update a run; wandb-core sends this when a run starts or changes."""
        fields = args["input"]
        run = None
        if fields.get("id"):
            run = next((r for r in self.state.runs.values() if r.storage_id == fields["id"]), None)
        entity = fields.get("entityName") or (run.entity if run else self.entity)
        project = fields.get("modelName") or (run.project if run else "uncategorized")
        inserted = False
        if run is None:
            name = fields.get("name") or new_id(8)
            run = self.state.find_run(entity, project, name)
            if run is None:
                run = self.state.add_run(RunRecord(id=name, entity=entity, project=project))
                inserted = True
        if run.state == "pending":
            run.state = "running"
        run.seen_at = time.monotonic()
        if fields.get("config") is not None:
            run.raw_config = _json_arg(fields["config"]) or {}
        if fields.get("summaryMetrics") is not None:
            run.summary.update(_json_arg(fields["summaryMetrics"]) or {})
            self.state.run_updated(run)
        for attr, key in (
            ("group", "groupName"),
            ("job_type", "jobType"),
            ("display_name", "displayName"),
            ("description", "description"),
            ("notes", "notes"),
            ("host", "host"),
            ("program", "jobProgram"),
            ("tags", "tags"),
            ("state", "state"),
        ):
            if fields.get(key) is not None:
                setattr(run, attr, fields[key])
        if fields.get("sweep"):
            sweep = self.state.find_sweep(run.entity, run.project, fields["sweep"])
            if sweep is None:
                raise GraphQLError(f"sweep {fields['sweep']} not found")
            self.state.attach_to_sweep(run, sweep)
        node = self.run_node(run)
        node["sweepName"] = run.sweep_id
        return {"bucket": node, "inserted": inserted}

    def enqueue_sweep_run(self, args: dict[str, Any]) -> Node:
        """A local sweep scheduler's suggestion becomes a queued run of the sweep
        (ServerState.enqueue_run). The payload's `id` is the run's name (its id as users see
        it), not the queue item's: wandb's Sweep.enqueue_run returns it as "the id of the
        run", and wandb-core's scheduler then watches its runs by it (SweepWatchedRuns
        filters `{"name": {"$in": [...]}}`).

        Raises:
            Rejected: no such sweep (404), a sweep with no `scheduler:` (400), a config that
                is not a JSON object (400).
        """
        fields = args["input"]
        sweep = self.state.find_sweep(None, None, fields["id"])
        if sweep is None:
            raise Rejected(f"sweep {fields['id']} not found", "enqueueSweepRun", status=404)
        if not sweep.config.get("scheduler"):
            raise Rejected(
                f"sweep {sweep.id} has no scheduler to enqueue runs for", "enqueueSweepRun"
            )
        config = _json_arg(fields["config"])
        if not isinstance(config, dict):
            raise Rejected("enqueueSweepRun: config is not a JSON object", "enqueueSweepRun")
        run = self.state.enqueue_run(sweep, config, fields.get("displayName"))
        return {"id": run.id, "runQueueItemId": new_id(12)}

    def stop_run(self, args: dict[str, Any]) -> Node:
        """`stopRun`: the run is asked to stop, as by the App's "Stop run" button
        (WandbServer.stop_run): its agent's next heartbeat sends `stop`, and it ends killed.
        wandb-core's scheduler sends it for a run its optimizer pruned.

        Raises:
            Rejected: no run has this id (404).
        """
        run = self.state.find_run(None, None, args["input"]["id"])
        if run is None:
            raise Rejected(f"run {args['input']['id']} not found", "stopRun", status=404)
        if run.state in (*LIVE_RUN_STATES, "preempting"):
            run.stop_requested = True
        return {"success": True}

    def create_run_files(self, args: dict[str, Any]) -> Node:
        fields = args["input"]
        entity = fields.get("entityName") or self.entity
        project = fields["projectName"]
        run = self.state.find_run(entity, project, fields["runName"])
        if run is None:
            raise GraphQLError(f"run {fields['runName']} not found")
        base = f"{self.base_url}/storage/{entity}/{project}/{run.id}"
        return {
            "runID": run.storage_id,
            "uploadHeaders": [],
            "files": [{"name": name, "uploadUrl": f"{base}/{name}"} for name in fields["files"]],
        }
