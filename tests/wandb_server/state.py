"""In-memory W&B data (sweeps, runs, agents) and the sweep controller behind heartbeats."""

from __future__ import annotations

import json
import random
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from sweeper.sweep.engine import sweeps  # W&B's own engine, as the server runs it

from .filters import matches

if TYPE_CHECKING:
    from .views import ViewRecord

HyperParameterSet = sweeps.params.HyperParameterSet

LIVE_RUN_STATES = ("pending", "running")
# The sweep states upsertSweep takes: `wandb sweep --stop` sends FINISHED, `--cancel`
# CANCELED, `--pause` PAUSED, `--resume` RUNNING (wandb/cli/cli.py `sweep`,
# wandb/apis/public/sweeps.py `_set_sweep_state`); PENDING is a launch scheduler's sweep
# before its first agent.
SWEEP_STATES = ("PENDING", "RUNNING", "PAUSED", "FINISHED", "CANCELED")
# W&B docs, "Pause, resume, and cancel sweeps": a stopped (FINISHED) or cancelled sweep
# hands out no new runs, and its agents exit once their runs are done.
CLOSED_SWEEP_STATES = ("FINISHED", "CANCELED")
NEWER_KEYS = ("run_cap", "metrics", "scheduler")
"""Top-level sweep keys W&B's server takes that the `sweeps` 0.2.0 schema does not list."""


def new_id(length: int = 8) -> str:
    """A random lowercase id like the ones W&B gives runs and sweeps."""
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=length))


def now_iso() -> str:
    """A timestamp in the form W&B's GraphQL API returns (UTC, no offset)."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def unwrap_config(config: dict[str, Any]) -> dict[str, Any]:
    """`{key: {"value": v, "desc": ...}}` -> `{key: v}`, dropping wandb's internal keys."""
    plain: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("_wandb", "wandb_version"):
            continue
        plain[key] = value["value"] if isinstance(value, dict) and "value" in value else value
    return plain


def flatten_for_engine(config: dict[str, Any]) -> dict[str, Any]:
    """Add flattened `{outer<DELIM>inner: {"value": v}}` keys for nested values.

    sweeps 0.2.0 suggests nested parameters as `{"outer": {"value": {"inner": v}}}` but
    looks up earlier runs under flattened keys, so without these a grid never advances.
    """
    flat = dict(config)

    def walk(prefix: str, value: Any) -> None:
        if not isinstance(value, dict):
            flat[prefix] = {"value": value}
            return
        for key, inner in value.items():
            walk(f"{prefix}{HyperParameterSet.NESTING_DELIMITER}{key}", inner)

    for key, value in config.items():
        inner = value.get("value") if isinstance(value, dict) else None
        if isinstance(inner, dict):
            for sub_key, sub_value in inner.items():
                walk(f"{key}{HyperParameterSet.NESTING_DELIMITER}{sub_key}", sub_value)
    return flat


def grid_size(config: dict[str, Any]) -> int | None:
    """How many runs a grid sweep makes (W&B's `runCountExpected`, the Sweeps UI's "Est.
    Runs": known only for a grid over a discrete space); None for any other method.

    Counted as W&B's `sweeps` engine walks a grid (grid_search.py): `values` and `value`
    as they are, int_uniform as every integer from min to max, q_uniform as its steps; a
    parameter a grid cannot walk makes the size unknown (None).
    """
    if config.get("method") != "grid":
        return None
    try:
        params = HyperParameterSet.from_config(config.get("parameters") or {})
    except (TypeError, ValueError, KeyError):
        return None
    size = 1
    for param in params:
        spec = param.config
        if param.type == param.CATEGORICAL:
            size *= len(spec["values"])
        elif param.type == param.INT_UNIFORM:
            size *= spec["max"] - spec["min"] + 1
        elif param.type == param.Q_UNIFORM:
            size *= len(np.arange(spec["min"], spec["max"], spec["q"]))
        elif param.type != param.CONSTANT:
            return None
    return size


def sweep_config_violations(config_yaml: str) -> list[str]:
    """Why W&B would refuse this sweep config, as its `sweeps` engine's schema says.

    `run_cap`, hyperband's `strict`, and the sweep scheduler's `metrics` and `scheduler`
    (wandb 0.31, W&B docs "Sweep configuration options") are W&B keys newer than the schema
    in `sweeps` 0.2.0 (NEWER_KEYS), so they are left out of the check, as sweeper's own
    check does.
    """
    try:
        config = yaml.safe_load(config_yaml)
    except yaml.YAMLError as err:
        return [f"not YAML: {err}"]
    if not isinstance(config, dict):
        return [f"a sweep config is a mapping, not {type(config).__name__}"]
    candidate = {k: v for k, v in config.items() if k not in NEWER_KEYS}
    early = candidate.get("early_terminate")
    if isinstance(early, dict):
        candidate["early_terminate"] = {k: v for k, v in early.items() if k != "strict"}
    return list(sweeps.schema_violations_from_proposed_config(candidate))


@dataclass
class RunRecord:
    """One run (W&B "bucket"), as the stand-in stores it.

    `raw_config` is the config as the client sent it (`{key: {"value": v, "desc": ...}}`);
    `uploads` counts finished write sessions (file_stream `complete`), so a run that a
    live process or `wandb sync` wrote once has 1 however many requests that took.
    """

    id: str
    entity: str
    project: str
    storage_id: str = field(default_factory=lambda: new_id(12))
    sweep_id: str | None = None
    agent_id: str | None = None
    state: str = "running"
    raw_config: dict[str, Any] = field(default_factory=dict)
    assigned: dict[str, Any] | None = None
    """The parameters the controller handed out for this run. The engine reads these, not
    the run's own config: wandb-core re-encodes numbers (0.0 arrives as 0), and the grid
    engine tells 0 and 0.0 apart."""
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    group: str | None = None
    job_type: str | None = None
    display_name: str | None = None
    description: str | None = None
    notes: str | None = None
    host: str | None = None
    program: str | None = None
    tags: list[str] = field(default_factory=list)
    exitcode: int | None = None
    stop_requested: bool = False
    seen_at: float = field(default_factory=time.monotonic)
    """`time.monotonic()` of the run's last sign of life: a file_stream POST, an upsertBucket,
    or an agent heartbeat listing it as running. A running run silent for the server's
    `crash_after_s` is crashed."""
    uploads: int = 0
    created_at: str = field(default_factory=now_iso)
    heartbeat_at: str = field(default_factory=now_iso)

    @property
    def config(self) -> dict[str, Any]:
        """The run's config as the user sees it (values unwrapped, no `_wandb`)."""
        return unwrap_config(self.raw_config)

    @property
    def name(self) -> str:
        """W&B calls the run id the run's "name"."""
        return self.id


@dataclass
class SweepRecord:
    """One sweep; `config` is parsed from the YAML the client sent.

    New sweeps are RUNNING, as on W&B; only launch-scheduler sweeps ask for PENDING.
    """

    id: str
    entity: str
    project: str
    config: dict[str, Any]
    config_yaml: str
    storage_id: str = field(default_factory=lambda: new_id(12))
    state: str = "RUNNING"
    run_ids: list[str] = field(default_factory=list)
    display_name: str | None = None
    description: str | None = None
    controller: str | None = None
    scheduler: str | None = None
    controller_run_name: str = field(default_factory=lambda: new_id(8))
    """The run a local sweep scheduler (`wandb sweep-scheduler`) logs to; made on first use."""
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class AgentRecord:
    """A registered sweep agent and the runs handed to it."""

    id: str
    sweep_id: str
    entity: str
    project: str
    host: str
    state: str = "RUNNING"
    run_ids: list[str] = field(default_factory=list)
    heartbeat_at: float = field(default_factory=time.time)
    created_at: str = field(default_factory=now_iso)


class ServerState:
    """Everything the stand-in knows, guarded by one lock.

    `crash_after_s`: how long a running run may go without a sign of life before it is
    crashed (W&B docs, "Signal handling and sweep runs": about 5 minutes).
    """

    def __init__(self, crash_after_s: float = 300.0) -> None:
        self.lock = threading.RLock()
        self.crash_after_s = crash_after_s
        self.sweeps: dict[str, SweepRecord] = {}
        self.runs: dict[tuple[str, str, str], RunRecord] = {}
        self.agents: dict[str, AgentRecord] = {}
        self.projects: dict[tuple[str, str], int] = {}
        self.views: dict[str, ViewRecord] = {}  # saved reports, by view id (views.py)

    def touch_project(self, entity: str, project: str) -> int:
        """Projects spring into existence on first use, as on W&B; returns the project id."""
        return self.projects.setdefault((entity, project), len(self.projects) + 1)

    def find_sweep(self, entity: str | None, project: str | None, name: str) -> SweepRecord | None:
        sweep = self.sweeps.get(name) or next(
            (s for s in self.sweeps.values() if s.storage_id == name), None
        )
        if sweep is None:
            return None
        if (entity and sweep.entity != entity) or (project and sweep.project != project):
            return None
        return sweep

    def find_run(self, entity: str | None, project: str | None, name: str) -> RunRecord | None:
        for run in self.runs.values():
            if run.id != name and run.storage_id != name:
                continue
            if (entity and run.entity != entity) or (project and run.project != project):
                continue
            return run
        return None

    def add_run(self, run: RunRecord) -> RunRecord:
        self.touch_project(run.entity, run.project)
        self.runs[(run.entity, run.project, run.id)] = run
        return run

    def attach_to_sweep(self, run: RunRecord, sweep: SweepRecord) -> None:
        run.sweep_id = sweep.id
        if run.id not in sweep.run_ids:
            sweep.run_ids.append(run.id)

    def upsert_sweep(self, entity: str, project: str, fields: dict[str, Any]) -> SweepRecord:
        """Create a sweep, or update the one whose id (or storage id) is given."""
        sweep = self.find_sweep(None, None, fields["id"]) if fields.get("id") else None
        if sweep is None:
            config_yaml = fields.get("config") or "{}"
            sweep = SweepRecord(
                id=new_id(8),
                entity=entity,
                project=project,
                config=yaml.safe_load(config_yaml) or {},
                config_yaml=config_yaml,
            )
            self.touch_project(entity, project)
            self.sweeps[sweep.id] = sweep
        elif fields.get("config"):
            sweep.config_yaml = fields["config"]
            sweep.config = yaml.safe_load(sweep.config_yaml) or {}
        for attr, key in (
            ("state", "state"),
            ("display_name", "displayName"),
            ("description", "description"),
            ("controller", "controller"),
            ("scheduler", "scheduler"),
        ):
            if fields.get(key) is not None:
                setattr(sweep, attr, fields[key])
        if fields.get("state") in CLOSED_SWEEP_STATES:
            self.drop_queue(sweep)
        if fields.get("state") == "CANCELED":
            # W&B docs, "Run states" (sweeps): only cancelling a sweep kills its running
            # runs (state Killed); pausing or stopping one lets them finish.
            for run in self.sweep_runs(sweep):
                if run.state in (*LIVE_RUN_STATES, "preempting"):
                    run.stop_requested = True
        sweep.updated_at = now_iso()
        if fields.get("priorRunsFilters"):
            prior = json.loads(fields["priorRunsFilters"])
            for run in list(self.runs.values()):
                same_project = (run.entity, run.project) == (sweep.entity, sweep.project)
                if same_project and matches(run, prior):
                    self.attach_to_sweep(run, sweep)
        return sweep

    def register_agent(self, sweep: SweepRecord, host: str) -> AgentRecord:
        agent = AgentRecord(
            id=new_id(12), sweep_id=sweep.id, entity=sweep.entity, project=sweep.project, host=host
        )
        self.agents[agent.id] = agent
        if sweep.state == "PENDING":
            sweep.state = "RUNNING"
        return agent

    def sweep_runs(self, sweep: SweepRecord) -> list[RunRecord]:
        found = (self.find_run(sweep.entity, sweep.project, rid) for rid in sweep.run_ids)
        return [run for run in found if run is not None]

    def expire_silent_runs(self) -> None:
        """Crash every running run silent for `crash_after_s`, as W&B's server does (W&B
        docs, "Signal handling and sweep runs": a run that neither exits nor posts for about
        5 minutes is marked crashed). A run marked preempting is preempted instead, so the
        sweep requeues it (W&B docs, "Resume preemptible sweeps runs"); one asked to stop is
        killed, however its process ended (W&B docs, "Stop a run": a stopped run goes from
        running to Killed), as is one whose agent's SIGTERM ended it without a word."""
        now = time.monotonic()
        for run in self.runs.values():
            if run.state in ("running", "preempting") and now - run.seen_at > self.crash_after_s:
                if run.state == "preempting":
                    run.state = "preempted"
                else:
                    run.state = "killed" if run.stop_requested else "crashed"

    def heartbeat(self, agent: AgentRecord, run_state: dict[str, bool]) -> list[dict[str, Any]]:
        """Decide the agent's commands the way W&B's sweep controller does.

        One run per agent: stop runs that were asked to stop, hand out the engine's next
        suggestion when the agent is idle, and send `exit` when nothing is left.
        """
        agent.heartbeat_at = time.time()
        sweep = self.sweeps[agent.sweep_id]
        self.expire_silent_runs()
        commands: list[dict[str, Any]] = []
        live: list[RunRecord] = []
        for run_id in agent.run_ids:
            run = self.find_run(agent.entity, agent.project, run_id)
            if run is None or run.agent_id != agent.id:  # gone, or resumed by another agent
                continue
            # The agent's runState lists only the runs whose process is alive
            # (wandb/wandb_agent.py `_run_loop`: `run_status[run_id] = True`); it never says
            # how one ended. That is the run's own word (file_stream `complete` and its exit
            # code); a run that never says is crashed once silent (`expire_silent_runs`).
            if run_state.get(run_id):
                run.seen_at = time.monotonic()
                live.append(run)
                if run.stop_requested:  # by a user, hyperband, or a cancelled sweep
                    commands.append({"type": "stop", "run_id": run.id})
        if live:
            return commands
        if sweep.state == "PAUSED":  # the agent waits, heartbeating, until a resume
            return []
        if sweep.state in CLOSED_SWEEP_STATES:
            return [{"type": "exit"}]
        requeued = next((r for r in self.sweep_runs(sweep) if r.state == "preempted"), None)
        if requeued is not None:  # preempted runs go out again before anything new
            requeued.state, requeued.agent_id = "pending", agent.id
            agent.run_ids.append(requeued.id)
            return [{"type": "resume", "run_id": requeued.id, "args": requeued.assigned}]
        if sweep.config.get("scheduler"):  # a local scheduler suggests: hand out its runs
            return self._hand_out_queued(sweep, agent)
        suggestion = self._suggest(sweep)
        if suggestion is None:
            # The engine has nothing left: the sweep is FINISHED once no run is active.
            unfinished = (*LIVE_RUN_STATES, "preempting")
            if not any(run.state in unfinished for run in self.sweep_runs(sweep)):
                sweep.state = "FINISHED"
            return [{"type": "exit"}]
        run = self.add_run(
            RunRecord(
                id=new_id(8),
                entity=sweep.entity,
                project=sweep.project,
                state="pending",
                raw_config=suggestion,
                assigned=suggestion,
                agent_id=agent.id,
            )
        )
        self.attach_to_sweep(run, sweep)
        agent.run_ids.append(run.id)
        return [
            {
                "type": "run",
                "run_id": run.id,
                "args": suggestion,
                "program": sweep.config.get("program"),
            }
        ]

    def enqueue_run(
        self, sweep: SweepRecord, config: dict[str, Any], display_name: str | None
    ) -> RunRecord:
        """A local scheduler's suggestion (`enqueueSweepRun`): a pending run of the sweep that
        no agent holds yet, its parameters `{name: {"value": v}}` as a run command gives them.
        W&B docs, "Start sweep agents": the scheduler suggests runs, agents execute them.
        wandb-core checks the sweep's state once before it queues a batch, so a batch can
        reach a sweep that closed meanwhile: such a run is dropped at once (`drop_queue`)."""
        run = self.add_run(
            RunRecord(
                id=new_id(8),
                entity=sweep.entity,
                project=sweep.project,
                state="pending",
                raw_config=config,
                assigned=config,
                display_name=display_name,
            )
        )
        self.attach_to_sweep(run, sweep)
        if sweep.state in CLOSED_SWEEP_STATES:  # queued after the sweep closed: never run
            self.drop_queue(sweep)
        return run

    def _hand_out_queued(self, sweep: SweepRecord, agent: AgentRecord) -> list[dict[str, Any]]:
        """An idle agent's commands on a sweep whose runs a local scheduler suggests (a
        `scheduler:` config): the oldest queued run, as a `run` command; none queued, nothing
        (the agent waits for the scheduler). `run_cap` counts the runs handed to agents:
        wandb-core's scheduler queues a whole batch whatever the cap and ends the sweep once
        `run_cap` runs are done ("the run cap was hit"), so the queue past the cap is never
        run. At the cap: `exit`, the sweep FINISHED once none is active (as `_suggest` ends
        a sweep) and its queue dropped."""
        runs = self.sweep_runs(sweep)
        handed = [run for run in runs if run.agent_id is not None]
        run_cap = sweep.config.get("run_cap")
        capped = run_cap is not None and len(handed) >= run_cap
        queued = next((r for r in runs if r.agent_id is None and r.state == "pending"), None)
        if queued is not None and not capped:
            queued.agent_id = agent.id
            agent.run_ids.append(queued.id)
            return [
                {
                    "type": "run",
                    "run_id": queued.id,
                    "args": queued.assigned,
                    "program": sweep.config.get("program"),
                }
            ]
        if not capped:
            return []
        if not any(run.state in (*LIVE_RUN_STATES, "preempting") for run in handed):
            sweep.state = "FINISHED"
            self.drop_queue(sweep)
        return [{"type": "exit"}]

    def drop_queue(self, sweep: SweepRecord) -> None:
        """Forget a closed sweep's queued runs (a local scheduler's suggestions no agent took):
        a stopped or cancelled sweep hands out no new runs (W&B docs, "Pause, resume, and
        cancel sweeps"), and W&B makes a queued run a run only when an agent takes it."""
        for run in self.sweep_runs(sweep):
            if run.agent_id is None and run.state == "pending":
                sweep.run_ids.remove(run.id)
                del self.runs[(run.entity, run.project, run.id)]

    def run_updated(self, run: RunRecord) -> None:
        """Apply the sweep rules W&B's server applies as a run's metrics arrive.

        - `early_terminate` (W&B docs, "Sweep configuration options"): hyperband, computed
          by W&B's own `sweeps` engine (`stop_runs`) over the history every run of the
          sweep streamed, asks each running run it picks to stop. W&B runs its check every
          few minutes; the stand-in runs it on every history update, so tests need not wait.
        - `metric.target` (same page): once a run's summary reaches the target (at or below
          it to minimize, at or above it to maximize), the sweep is FINISHED: no new runs,
          running ones finish.
        """
        sweep = self.sweeps.get(run.sweep_id or "")
        if sweep is None:
            return
        if sweep.config.get("early_terminate"):
            for stopped in sweeps.stop_runs(sweep.config, self._engine_runs(sweep)):
                target = self.find_run(sweep.entity, sweep.project, stopped.name or "")
                if target is not None and target.state == "running":
                    target.stop_requested = True
        metric = sweep.config.get("metric") or {}
        value = run.summary.get(metric.get("name"))
        if metric.get("target") is None or not isinstance(value, int | float):
            return
        reached = (
            value >= metric["target"]
            if metric.get("goal") == "maximize"
            else (value <= metric["target"])
        )
        if reached and sweep.state not in CLOSED_SWEEP_STATES:
            sweep.state = "FINISHED"

    def _engine_runs(self, sweep: SweepRecord) -> list[Any]:
        """The sweep's runs as W&B's `sweeps` engine reads them."""
        return [
            sweeps.SweepRun(
                name=run.id,
                state=run.state,
                config=flatten_for_engine(run.assigned or run.raw_config),
                summaryMetrics=run.summary,
                sampledHistory=run.history,
                exitcode=run.exitcode,
            )
            for run in self.sweep_runs(sweep)
        ]

    def _suggest(self, sweep: SweepRecord) -> dict[str, Any] | None:
        """Ask W&B's own `sweeps` engine for the next parameters, or None when done.

        W&B's server stops a sweep at `run_cap` runs (https://docs.wandb.ai/guides/sweeps/
        sweep-config-keys/ `run_cap`); the `sweeps` 0.2.0 engine predates the key, so the
        stand-in counts the sweep's runs itself.
        """
        run_cap = sweep.config.get("run_cap")
        if run_cap is not None and len(self.sweep_runs(sweep)) >= run_cap:
            return None
        suggestion = sweeps.next_run(sweep.config, self._engine_runs(sweep))
        if suggestion is None:
            return None
        # The engine suggests numpy scalars; the client gets (and stores) plain JSON.
        return json.loads(json.dumps(suggestion.config, default=lambda value: value.item()))
