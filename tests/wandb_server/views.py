"""W&B's views API: the saved reports that `wandb_workspaces.reports.v2.Report.save()` writes
with `upsertView` and `Report.from_url()` reads back with `view(id)`.

The documents are wandb-workspaces' own (`wandb_workspaces/reports/v2/gql.py`); a view's spec
is kept as the JSON text the client sent, as W&B stores it. `runset_filter` reads a saved
runset's filter the way W&B's runs query applies it, so a test can ask which runs a panel shows.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .state import now_iso

if TYPE_CHECKING:
    from .graphql import Node, Resolvers
    from .state import RunRecord, ServerState

# The view types Report.save() sends: a published report, or a draft of one.
REPORT_VIEW_TYPES = ("runs", "runs/draft")


@dataclass
class ViewRecord:
    """One saved view (a W&B Report when `type` is "runs").

    `id` is the view's GraphQL id, base64 of `View:<n>` as W&B's ids are (a report's URL
    ends in it); `spec` is the report's body as JSON text (blocks, panels, runsets).
    """

    id: str
    name: str
    type: str
    entity: str
    project: str
    spec: str
    display_name: str | None = None
    description: str | None = None
    created_using: str | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    @property
    def spec_json(self) -> dict[str, Any]:
        """The spec, parsed."""
        parsed: dict[str, Any] = json.loads(self.spec)
        return parsed


def view_node(resolvers: Resolvers, view: ViewRecord) -> Node:
    """A `View` as the upsertView and SpecificReport documents select it."""
    return {
        "__typename": "View",
        "id": view.id,
        "name": view.name,
        "type": view.type,
        "displayName": view.display_name,
        "description": view.description,
        "spec": view.spec,
        "createdAt": view.created_at,
        "updatedAt": view.updated_at,
        "project": resolvers.project_node(view.entity, view.project),
    }


def upsert_view(resolvers: Resolvers, args: dict[str, Any]) -> Node:
    """`upsertView(input)`: update the view whose `id` is given, else create one.

    The project must exist: `Report.save()` creates it first when `api.projects(entity)`
    does not list it. The spec is JSON text (a new view without one is empty); an update
    without one keeps the view's.

    Raises:
        GraphQLError: an unknown view id or project, a spec that is not a JSON object.
    """
    from .graphql import GraphQLError

    state = resolvers.state
    fields = args["input"]
    entity = fields.get("entityName") or resolvers.entity
    project = fields.get("projectName")
    if fields.get("spec") is not None:
        try:
            spec = json.loads(fields["spec"])
        except ValueError:
            raise GraphQLError("upsertView: spec is not JSON text") from None
        if not isinstance(spec, dict):
            raise GraphQLError("upsertView: spec is not a JSON object")
    view = state.views.get(fields["id"]) if fields.get("id") else None
    if fields.get("id") and view is None:
        raise GraphQLError(f"view {fields['id']} not found")
    inserted = view is None
    if view is None:
        if not project or (entity, project) not in state.projects:
            raise GraphQLError(f"project {entity}/{project} not found")
        number = len(state.views) + 1
        view = ViewRecord(
            id=base64.b64encode(f"View:{number}".encode()).decode(),
            name=fields.get("name") or f"view-{number}",
            type=fields.get("type") or "runs",
            entity=entity,
            project=project,
            spec="{}",
        )
        state.views[view.id] = view
    view.updated_at = now_iso()
    for attr, key in (
        ("spec", "spec"),
        ("name", "name"),
        ("type", "type"),
        ("display_name", "displayName"),
        ("description", "description"),
        ("created_using", "createdUsing"),
    ):
        if fields.get(key) is not None:
            setattr(view, attr, fields[key])
    return {"view": view_node(resolvers, view), "inserted": inserted}


def view_field(resolvers: Resolvers, args: dict[str, Any]) -> Node | None:
    """`view(id)`: the view, or null for an id nobody saved."""
    view = resolvers.state.views.get(args["id"])
    return None if view is None else view_node(resolvers, view)


def reports(state: ServerState) -> list[ViewRecord]:
    """The saved reports (drafts included), oldest first."""
    with state.lock:
        return [v for v in state.views.values() if v.type in REPORT_VIEW_TYPES]


# W&B's run filter ops (the filter tree the app and wandb-workspaces write) as the runs
# query's MongoDB-style operators (`wandb_workspaces.expr`: `_map_op`, `filters_tree_to_v2`).
_MONGO_OPS = {"=": "$eq", "!=": "$ne", "<=": "$lte", ">=": "$gte", "IN": "$in", "NIN": "$nin"}


def runset_filter(filters: dict[str, Any]) -> dict[str, Any]:
    """A runset's `filterV2` filters as the runs query's MongoDB-style filter.

    filterV2 is a flat list whose items after the first carry a `connector` (AND or OR; AND
    binds tighter) and may be one level of parenthesised `filters` group; a `disabled` item
    is not applied. Keys: section `run` names a run field (`sweep`, `state`), `config` a
    config key, `summary` a summary metric.

    Raises:
        ValueError: not filterV2, or an op or key section the stand-in does not read.
    """
    if filters.get("filterFormat") != "filterV2":
        raise ValueError(f"not a filterV2 runset filter: {filters!r}")
    return _items(filters.get("filters") or [])


def _items(items: list[dict[str, Any]]) -> dict[str, Any]:
    alternatives: list[list[dict[str, Any]]] = [[]]
    for item in items:
        if item.get("disabled"):
            continue
        if item.get("connector") == "OR" and alternatives[-1]:
            alternatives.append([])
        alternatives[-1].append(_items(item["filters"]) if "filters" in item else _leaf(item))
    return {"$or": [{"$and": terms} for terms in alternatives]}


def _leaf(item: dict[str, Any]) -> dict[str, Any]:
    key, op = item["key"], item["op"]
    if op not in _MONGO_OPS:
        raise ValueError(f"stand-in reads no runset filter op {op!r}")
    section, name = key.get("section"), key["name"]
    paths = {"run": name, "config": f"config.{name}", "summary": f"summary_metrics.{name}"}
    if section not in paths:
        raise ValueError(f"stand-in reads no runset filter section {section!r}")
    return {paths[section]: {_MONGO_OPS[op]: item["value"]}}


def runset_runs(state: ServerState, runset: dict[str, Any]) -> list[RunRecord]:
    """The runs a saved runset (a panel grid's `runSets` item) shows: its project's runs
    that pass its filters."""
    from .filters import matches

    project = runset["project"]
    where = runset_filter(runset["filters"])
    with state.lock:
        return [
            run
            for run in state.runs.values()
            if (run.entity, run.project) == (project["entityName"], project["name"])
            and matches(run, where)
        ]
