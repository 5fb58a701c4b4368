"""The W&B backend: a W&B server (cloud, or self-hosted through WANDB_BASE_URL) coordinates.

The server keeps the sweep, runs the search and decides early stops; this module speaks to it
through the wandb package's own client code: `_upsert_sweep` to create a sweep, the agent
protocol (`_register_agent`, then `_agent_heartbeat` answering run/stop/exit commands) to get
trials, and the public API to read sweeps and runs back. Each GPU slot of a `sweeper agent`
registers as one W&B agent, since W&B hands each agent one run at a time. Trials log online
to the run the server created for them.

Nothing here stores the API key: wandb reads it from the environment or its own login.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sweeper.backends.base import Beat, Claim, LiveTrial, SweepRecord, WandbMode
from sweeper.backends.scheduler import BATCH_SIZE, build_optimizer, check_engine
from sweeper.backends.storesink import FLUSH
from sweeper.backends.wandbrun import StepLog, run_config, start_wandb
from sweeper.errors import NotFoundError, SweeperError, SweepGone, Unreachable
from sweeper.sweep import (
    KeyPath,
    RunState,
    RunView,
    SweepState,
    check_transition,
    key_paths,
    values_of,
)
from sweeper.sweep.runtable import RunRow, run_table
from sweeper.sweep.seeds import draw_seed

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

SWEEP_PATH = re.compile(r"^(?P<entity>[\w.-]+)/(?P<project>[\w.-]+)/(sweeps/)?(?P<id>[\w-]+)$")
"""entity/project/sweep_id, also as the tail of a W&B sweep URL."""

MARK = re.compile(r"^sweeper: (\{.*\})$", re.MULTILINE)
"""The line in a sweep's description that says which study and stage it is."""

STATES = {"killed": RunState.STOPPED, "preempting": RunState.RUNNING}
"""W&B run states that differ from ours: a killed sweep run was stopped early; a preempting
one runs until it ends preempted (wandb/apis/public/runs.py lists W&B's run states)."""

RETRIES = 3
"""Tries of one W&B call (1 and 2 s apart) before it is reported; wandb itself keeps trying
each one for API_TIMEOUT seconds."""
API_TIMEOUT = 20
"""Seconds wandb's own client keeps trying one request."""
REPORT_WAIT = 60.0
"""Seconds the agent gives the report of a trial whose process died (see _report_death)."""
RELEASE_WAIT = 10.0
"""Seconds an exit waits for wandb's service process to shut down."""
KEY_REFUSED = (401, 403)
"""HTTP statuses of a W&B server that refuses the API key: another try fails the same way."""
SCHEDULER_POLL = 10.0
"""Seconds between its polls of the sweep's runs: `wandb sweep-scheduler --poll-interval`'s
default."""
HISTORY_SAMPLES = 10_000
"""Steps the public API samples of a run's history: every epoch of any sweep we run."""


def release_service(exit_code: int) -> bool:
    """Shut wandb's service process down if it runs, waiting at most RELEASE_WAIT seconds.

    After a request the client gave up on, the service can go on retrying it, and wandb's own
    exit hook waits for the service without a limit: a refusal must not wait with it. False
    when the service has not shut down (it exits by itself once its parent process is gone).
    """
    wandb = sys.modules.get("wandb")
    if wandb is None:
        return True
    closing = threading.Thread(target=wandb.teardown, args=(exit_code,), daemon=True)
    closing.start()
    closing.join(RELEASE_WAIT)
    return not closing.is_alive()


def parse_sweep_path(path: str) -> tuple[str, str, str]:
    match = SWEEP_PATH.match(path)
    if match is None:
        raise NotFoundError(f"not a W&B sweep path: {path!r} (expected entity/project/sweep_id)")
    return match["entity"], match["project"], match["id"]


def with_mark(config: Mapping[str, Any], mark: Mapping[str, Any]) -> dict[str, Any]:
    """The config whose description carries the study mark (how a re-launch finds it)."""
    text = config.get("description") or ""
    line = f"sweeper: {json.dumps(dict(mark), sort_keys=True)}"
    return {**config, "description": f"{text}\n{line}" if text else line}


def read_mark(description: str | None) -> dict[str, Any]:
    match = MARK.search(description or "")
    return json.loads(match.group(1)) if match else {}


def trainer_of(config: Mapping[str, Any]) -> str | None:
    """Compiled sweeps run `-m ${program} --trainer NAME`; None for a sweep made elsewhere."""
    command = list(config.get("command") or [])
    if "--trainer" in command and command.index("--trainer") + 1 < len(command):
        return str(command[command.index("--trainer") + 1])
    return None


class WandbBackend:
    kind = "wandb"
    progress_every = 3.0

    def __init__(
        self,
        store: Path,
        *,
        entity: str | None = None,
        project: str | None = None,
        wait: float | None = None,
    ) -> None:
        """`wait`: the most seconds one call waits on a server that does not answer, its
        retries included (`launch --outage-limit`); None: RETRIES tries of API_TIMEOUT s."""
        self.path = store
        self.root = store.parent
        self.entity, self.project = entity, project
        self.wait = wait
        self._api: Any = None
        self._agents: dict[str, str] = {}
        """Our slot name -> W&B agent id."""
        self._agent_of_run: dict[str, str] = {}
        self._sweep_of_agent: dict[str, str] = {}
        """W&B agent id -> its sweep's path, to name a deleted sweep."""
        self._beat_wait = 60.0
        """Seconds one heartbeat waits for the server: the agent's heartbeat timeout."""
        self._down = False
        """The last exchange with the server went unanswered or was refused."""
        self._exhausted: set[str] = set()
        self._paths: dict[str, dict[str, KeyPath]] = {}
        self._read: dict[str, Any] = {}
        """Run id -> the public-API run last read (a run table's rows), for `history`."""

    # plumbing ---------------------------------------------------------------------------------

    @property
    def api(self) -> Any:
        if self._api is None:
            import wandb

            # wandb retries inside for `timeout` seconds; a missing key it reports at once
            # (it never prompts without a terminal). Both end here as one line.
            try:
                wait = API_TIMEOUT if self.wait is None else max(1, math.ceil(self.wait))
                timeout = min(API_TIMEOUT, wait)
                self._api = wandb.Api(timeout=timeout)
            except Exception as exc:
                raise SweeperError(f"W&B: connect: {_first_line(exc)}") from None
        return self._api

    @property
    def where(self) -> str:
        return f"W&B {self.api.settings['base_url']}"

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Retry with backoff (within `wait`); then one line naming what failed."""
        delay, started = 1.0, time.monotonic()
        for attempt in range(RETRIES):
            try:
                answer = fn()
                self._down = False
                return answer
            except (SweeperError, KeyboardInterrupt):
                raise
            except Exception as exc:
                message = _first_line(exc)
                if _http_status(exc) in KEY_REFUSED:
                    self._down = True
                    raise KeyRefused.of(what, exc) from None
                if not _transient(message):  # a refusal: the same request fails the same way
                    raise SweeperError(f"W&B: {what}: {message}") from None
                spent = time.monotonic() - started + delay
                if attempt == RETRIES - 1 or (self.wait is not None and spent >= self.wait):
                    self._down = True
                    raise Unreachable(f"W&B: {what}: {message}") from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("the loop returns or raises")

    def _listing(self, what: str, fn: Callable[[], list[Any]]) -> list[Any]:
        """A listing of a project, empty when the project does not exist yet."""
        try:
            return self._call(what, fn)
        except SweeperError as exc:
            if "could not find project" in str(exc).lower():
                return []
            raise

    def _path(self, sweep_id: str) -> tuple[str, str, str]:
        if "/" not in sweep_id and self.entity and self.project:
            return self.entity, self.project, sweep_id
        return parse_sweep_path(sweep_id)

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def url(self, sweep_id: str) -> str:
        """The sweep's page: W&B cloud's app lives at wandb.ai, a W&B Server's at its host."""
        entity, project, sid = self._path(sweep_id)
        base = str(self.api.settings["base_url"]).rstrip("/")
        app = "https://wandb.ai" if base.endswith("api.wandb.ai") else base
        return f"{app}/{entity}/{project}/sweeps/{sid}"

    def docker_line(self, sweep_id: str) -> str:
        """One agent container on GPU 0 (agents/run-node.sh starts one per GPU); the key is
        passed by name, never by value."""
        base = os.environ.get("WANDB_BASE_URL")
        server = f" -e WANDB_BASE_URL={base}" if base else ""
        return (
            f"docker run -d --init --restart on-failure:3 --gpus device=0 -e WANDB_API_KEY{server}"
            f" sweeper-agent {sweep_id} --backend wandb --gpus 0"
        )

    def close(self) -> None:
        self._api = None

    # sweeps -----------------------------------------------------------------------------------

    def create_sweep(
        self,
        config: Mapping[str, Any],
        *,
        trainer: str,
        spec: Mapping[str, Any],
        spec_hash: str,
        spec_path: str | None = None,
        study: str | None = None,
        stage: int = 0,
        stage_name: str | None = None,
        carried: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> str:
        from wandb.apis.public.sweeps import _upsert_sweep

        entity, project = self.entity_and_project(config.get("entity"), config.get("project"))
        mark = {
            "spec": spec_hash[:12],
            "name": spec.get("name"),
            "study": study,
            "stage": stage,
            "stage_name": stage_name,
            "carried": dict(carried or {}),
            "agents": spec.get("agents", {}),
        }
        if spec.get("folder"):  # a plain sweep's: its program runs there
            mark["folder"] = spec["folder"]
        if seed is None and config.get("scheduler"):  # its engine runs here (base.create_sweep)
            seed = draw_seed()
        if seed is not None:
            mark["seed"] = seed
        created, _warnings = self._call(  # W&B's schema warnings: ours already passed
            "create sweep",
            lambda: _upsert_sweep(
                self.api, with_mark(config, mark), entity=entity, project=project
            ),
        )
        return f"{entity}/{project}/{created['name']}"

    def _sweep(self, sweep_id: str) -> Any:
        """The sweep as the server has it now (wandb.Api caches a sweep and its runs)."""
        entity, project, sid = self._path(sweep_id)
        api = self.api  # connect first: a login or network failure is not "no such sweep"

        def fresh() -> Any:
            sweep = api.sweep(f"{entity}/{project}/{sid}")
            sweep.load(force=True)
            return sweep

        try:
            return self._call("read sweep", fresh)
        except (Unreachable, KeyRefused):
            raise
        except SweeperError as exc:
            message = str(exc).removeprefix("W&B: read sweep: ")
            raise NotFoundError(
                f"no sweep {sweep_id!r}: cannot read W&B sweep {entity}/{project}/{sid}: {message}"
            ) from None

    def sweep(self, sweep_id: str) -> SweepRecord:
        return self._record(self._sweep(sweep_id))

    def _record(self, sweep: Any) -> SweepRecord:
        config = dict(sweep.config)
        mark = read_mark(config.get("description"))
        state = SweepState.read(sweep.state)
        path = f"{sweep.entity}/{sweep.project}/{sweep.id}"
        # No `--trainer` in its command: a plain W&B sweep, whose trials run its command.
        trainer = trainer_of(config) or ""
        spec = {"agents": mark.get("agents", {})}
        if mark.get("name"):  # the spec's name, as launch gave it (made_from matches it)
            spec["name"] = mark["name"]
        if mark.get("folder"):  # where a plain sweep's program is, as launch found it
            spec["folder"] = mark["folder"]
        return SweepRecord(
            id=path,
            name=config.get("name") or sweep.id,
            project=sweep.project,
            trainer=trainer,
            config=config,
            spec=spec,
            spec_hash=mark.get("spec", ""),
            spec_path=None,
            state=state,
            exhausted=state.over or path in self._exhausted,
            study=mark.get("study"),
            stage=mark.get("stage", 0),
            stage_name=mark.get("stage_name"),
            carried=mark.get("carried", {}),
            created_at=_timestamp(getattr(sweep, "_attrs", {}).get("createdAt")),
            entity=sweep.entity,
            seed=mark.get("seed"),
        )

    def entity_and_project(self, entity: str | None, project: str | None) -> tuple[str, str]:
        """This backend's --entity/--project, else the given ones, else wandb's defaults."""
        return (
            self.entity or entity or self.api.default_entity,
            self.project or project or "sweeper",
        )

    def find_sweep(
        self, entity: str, project: str, wanted: Callable[[dict[str, Any]], bool]
    ) -> str | None:
        """The newest sweep of the project whose study mark `wanted` accepts, as its path."""
        project_api = self.api.project(project, entity=entity)
        for sweep in self._listing("list sweeps", lambda: list(project_api.sweeps())):
            if wanted(read_mark(dict(sweep.config).get("description"))):
                return f"{entity}/{project}/{sweep.id}"
        return None

    def find_stage(
        self, spec_hash: str, stage: int, study: str | None = None
    ) -> SweepRecord | None:
        """The newest sweep in the project made for this stage of this exact spec (of `study`,
        if given)."""
        entity, project = self.entity_and_project(None, None)

        def wanted(mark: dict[str, Any]) -> bool:
            same = mark.get("spec") == spec_hash[:12] and mark.get("stage") == stage
            return same and (study is None or mark.get("study") == study)

        path = self.find_sweep(entity, project, wanted)
        return None if path is None else self.sweep(path)

    def sweeps(self, study: str | None = None) -> list[SweepRecord]:
        """The project's sweeps in creation order, or the stages of `study` (the study mark in
        each sweep's description) in stage order."""
        entity, project = self.entity_and_project(None, None)
        project_api = self.api.project(project, entity=entity)
        listed = self._listing("list sweeps", lambda: list(project_api.sweeps()))
        # W&B lists newest first and gives createdAt to the second: reversed, the stable sort
        # keeps sweeps made within one second in creation order.
        records = sorted((self._record(s) for s in reversed(listed)), key=lambda s: s.created_at)
        if study is None:
            return records
        return sorted((s for s in records if s.study == study), key=lambda s: s.stage)

    def made_from(self, spec_path: str | os.PathLike[str], name: str | None) -> list[SweepRecord]:
        """The latest launch of the spec named `name` in the project: W&B keeps no spec path,
        so the name in the study mark is what ties a sweep to its spec."""
        made = [s for s in self.sweeps() if name and s.spec.get("name") == name]
        if not made:
            return []
        latest = made[-1]
        return self.sweeps(latest.study) if latest.study else [latest]

    def existing_runs(self, entity: str, project: str, run_ids: list[str]) -> set[str]:
        """Which of these run ids the project already has."""
        if not run_ids:
            return set()
        path, filters = f"{entity}/{project}", {"name": {"$in": run_ids}}
        found = self._listing("list runs", lambda: list(self.api.runs(path, filters=filters)))
        return {run.id for run in found}

    def attach_runs(
        self,
        entity: str,
        project: str,
        config: Mapping[str, Any],
        run_ids: list[str],
        existing: str | None = None,
    ) -> str:
        """A sweep over runs already on the server (W&B's prior runs): made, or extended."""
        from wandb.apis.public.sweeps import _upsert_sweep

        storage_id = self._sweep(existing)._attrs["id"] if existing else None
        created, _warnings = self._call(
            "create sweep over runs",
            lambda: _upsert_sweep(
                self.api, dict(config), obj_id=storage_id, entity=entity, project=project,
                prior_runs=run_ids or None,
            ),
        )  # fmt: skip
        return existing or f"{entity}/{project}/{created['name']}"

    def run_scheduler(
        self,
        sweep_id: str,
        *,
        batch_size: int = BATCH_SIZE,
        poll_interval: float = SCHEDULER_POLL,
        spec_path: str | None = None,
    ) -> str:
        """Run a `scheduler:` sweep's scheduler until it stops, as `wandb sweep-scheduler` does
        (wandb/cli/cli.py `sweep_scheduler`): wandb's own `run_scheduler`, whose wandb-core
        keeps `batch_size` suggestions queued on the server (`enqueueSweepRun`), tells the
        optimizer how they end and stops pruned runs; the server hands the queued runs to
        the sweep's agents. The optimizer is the one the offline scheduler builds
        (sweeper.backends.scheduler.build_optimizer: wandb's `make_optimizer`, `source`
        found in the working folder, else beside `spec_path`, a seeded sampler), rebuilt
        over the runs the sweep has, as W&B rebuilds and never persists one. One per sweep:
        W&B's docs warn that two duplicate runs ("Start sweep agents").

        Returns:
            Why it stopped, as wandb says it ("the sweep finished or was canceled", ...).

        Raises:
            SweeperError: one line: the optimizer could not be built or failed, the sweep is
                gone, or the server has no local scheduler (wandb's own message).
        """
        import wandb
        from wandb.sdk.sweeps.scheduler.client import run_scheduler
        from wandb.sdk.sweeps.scheduler.ipc import describe_done
        from wandb.sdk.sweeps.sweep_info import SweepInfo

        entity, project, sid = self._path(sweep_id)
        record = dataclasses.replace(self.sweep(sweep_id), spec_path=spec_path)
        check_engine(record.config)
        runs = len(self._runs(sweep_id))

        def make_optimizer(info: SweepInfo) -> Any:
            """wandb's factory contract: a wandb.Error stops the scheduler before it starts."""
            try:
                return build_optimizer(record, runs)
            except SweeperError as exc:
                raise wandb.Error(str(exc)) from None

        try:
            done = run_scheduler(
                entity=entity,
                project=project,
                sweep_id=sid,
                make_optimizer=make_optimizer,
                batch_size=batch_size,
                poll_interval=poll_interval,
            )
        except wandb.Error as exc:
            raise SweeperError(f"sweep {record.id}: {_first_line(exc)}") from None
        return describe_done(done)[0]

    def set_sweep_state(self, sweep_id: str, state: SweepState) -> SweepState:
        """Set the sweep's state on the server as `wandb sweep --pause/--resume/--stop/
        --cancel` does: wandb's own `_set_sweep_state`, which sends it as upsertSweep's state
        (wandb/cli/cli.py `sweep`). The server then answers agents' heartbeats by it (see
        base.Backend.set_sweep_state)."""
        from wandb.apis.public.sweeps import SweepState as ServerState
        from wandb.apis.public.sweeps import _set_sweep_state

        wanted = SweepState(state)
        entity, project, sid = self._path(sweep_id)
        path = f"{entity}/{project}/{sid}"
        current = self._record(self._sweep(sweep_id)).state  # NotFoundError: no such sweep
        check_transition(path, current, wanted)
        if wanted != current:
            server = cast(ServerState, wanted.value.upper())
            try:
                self._call(
                    "set sweep state",
                    lambda: _set_sweep_state(self.api, sid, server, entity=entity, project=project),
                )
            except SweeperError as exc:
                if "already" not in str(exc):
                    raise
                # The server ended it meanwhile (its engine had nothing left): say it as above.
                check_transition(path, self._record(self._sweep(sweep_id)).state, wanted)
        return self._record(self._sweep(sweep_id)).state

    def _runs(self, sweep_id: str) -> list[Any]:
        sweep = self._sweep(sweep_id)
        runs: list[Any] = self._call("read runs", lambda: list(sweep.runs))
        self._read.update((run.id, run) for run in runs)
        return runs

    def counts(self, sweep_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self._runs(sweep_id):
            state = STATES.get(run.state, run.state)
            counts[state] = counts.get(state, 0) + 1
        return counts

    def is_complete(self, sweep_id: str) -> bool:
        sweep, counts = self.sweep(sweep_id), self.counts(sweep_id)
        if counts.get(RunState.RUNNING, 0) or counts.get(RunState.PENDING, 0):
            return False  # a run handed to an agent is pending until its trial starts it
        if sweep.state == SweepState.PAUSED:  # its agents wait for a resume
            return False
        if sweep.state.over:  # finished or canceled on the server
            return True
        # Still running there: done once it said `exit` and no preempted run waits to resume.
        return sweep.exhausted and not counts.get(RunState.PREEMPTED, 0)

    def run_views(self, sweep_id: str) -> list[RunView]:
        paths = key_paths(self.sweep(sweep_id).config)
        return [
            RunView(
                name=run.id,
                state=STATES.get(run.state, run.state),
                params={k: {"value": v} for k, v in run_values(run.config, paths).items()},
                summary=scalars(dict(run.summary)),
            )
            for run in self._runs(sweep_id)
        ]

    def live_trials(self, sweep_id: str) -> list[LiveTrial]:
        """Running runs as the server last heard of them: W&B's `_step` and `_runtime`."""
        live = []
        for run in self._runs(sweep_id):
            if STATES.get(run.state, run.state) != RunState.RUNNING:
                continue
            raw = dict(run.summary)
            step, runtime = raw.get("_step"), raw.get("_runtime")
            live.append(
                LiveTrial(
                    run_id=run.id,
                    agent=None,
                    step=int(step) if isinstance(step, int | float) else None,
                    summary=scalars(raw),
                    elapsed=float(runtime) if isinstance(runtime, int | float) else 0.0,
                )
            )
        return live

    def runs(self, sweep_ids: str | list[str]) -> pd.DataFrame:
        import pandas as pd

        frames = []
        for sweep_id in [sweep_ids] if isinstance(sweep_ids, str) else sweep_ids:
            record = self.sweep(sweep_id)
            frames.append(
                runs_frame(
                    self._runs(sweep_id),
                    record.id,
                    record.stage,
                    record.stage_name,
                    key_paths(record.config),
                )
            )
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def history(self, run_ids: list[str], metrics: list[str] | None = None) -> pd.DataFrame:
        """Per-step metrics of these runs (see base.Backend.history), as the public API's
        sampled history gives them (`Run.history(samples=HISTORY_SAMPLES)`: every step of a
        run with at most that many). A run the backend has not read in a run table is read
        from its project by id."""
        import pandas as pd

        frames = []
        for run_id in run_ids:
            run = self._public_run(run_id)

            def sampled(run: Any = run) -> pd.DataFrame:
                frame: pd.DataFrame = run.history(
                    samples=HISTORY_SAMPLES, keys=metrics, pandas=True
                )
                return frame

            rows = self._call("read history", sampled)
            if len(rows):
                frames.append(rows.assign(run_id=run_id))
        columns = ["run_id", "_step", *(metrics or [])]
        if not frames:
            return pd.DataFrame(columns=columns)
        frame = pd.concat(frames, ignore_index=True)
        if metrics is not None:
            frame = frame.reindex(columns=columns)
        else:  # every logged metric; W&B's own bookkeeping (_runtime, _timestamp) dropped
            logged = [c for c in frame.columns if c not in ("run_id", "_step") and c[0] != "_"]
            frame = frame[["run_id", "_step", *logged]]
        ordered: pd.DataFrame = frame.sort_values(["run_id", "_step"], ignore_index=True)
        return ordered

    def run(self, run_id: str) -> dict[str, Any]:
        """One run of the backend's project (see base.Backend.run): its config is the trainer's
        shape with sweeper's provenance under `_sweeper` (wandbrun.run_config)."""
        run = self._public_run(run_id, fresh=True)
        config, summary = dict(run.config), dict(run.summary)
        provenance = config.get("_sweeper") or {}
        return {
            "id": run.id,
            "sweep_id": provenance.get("sweep"),
            "state": STATES.get(run.state, run.state),
            "attempt": 1,
            "params": {name: {"value": value} for name, value in plain_config(config).items()},
            "summary": scalars(summary),
            "meta": {**provenance, "config": {k: v for k, v in config.items() if k[0] != "_"}},
            "error": summary.get("error"),
        }

    def logged_rows(self, run_id: str) -> list[tuple[int, dict[str, Any]]]:
        """One run's rows as the server keeps them (the public API's `Run.scan_history`, every
        row unsampled); W&B's own keys (`_step`, `_runtime`, `_timestamp`) left out."""
        run = self._public_run(run_id)
        rows = self._call("read history", lambda: list(run.scan_history()))
        return sorted(
            ((int(row["_step"]), {k: v for k, v in row.items() if k[0] != "_"}) for row in rows),
            key=lambda step_row: step_row[0],
        )

    def _public_run(self, run_id: str, fresh: bool = False) -> Any:
        """The public API's run: as a run table last read it, unless `fresh` or unread (then
        from the backend's project).

        Raises:
            NotFoundError: the project has no such run.
        """
        if not fresh and run_id in self._read:
            return self._read[run_id]
        entity, project = self.entity_and_project(None, None)
        try:
            return self._call("read run", lambda: self.api.run(f"{entity}/{project}/{run_id}"))
        except (Unreachable, KeyRefused):
            raise
        except SweeperError as exc:
            raise NotFoundError(f"no run {run_id!r} in W&B {entity}/{project} ({exc})") from None

    # the agent protocol -----------------------------------------------------------------------

    def _agent(self, sweep_id: str, slot: str) -> str:
        from wandb.apis.public.sweeps import _register_agent

        if slot not in self._agents:
            entity, project, sid = self._path(sweep_id)
            agent = self._call(
                "register agent",
                lambda: _register_agent(
                    self.api, f"{socket.gethostname()}:{slot}", sweep_id=sid,
                    entity=entity, project=project,
                ),
            )  # fmt: skip
            self._agents[slot] = agent["id"]
            self._sweep_of_agent[agent["id"]] = f"{entity}/{project}/{sid}"
        return self._agents[slot]

    def _commands(self, agent_id: str, running: dict[str, bool]) -> list[dict[str, Any]]:
        """One heartbeat of a W&B agent: the server's commands for it (none is a quiet server).

        wandb's own call (`_agent_heartbeat`, wandb/apis/public/sweeps.py) raises
        SweepNotFoundError on a 404 and logs every other fault as "no commands"; a witness on
        its one request tells those faults apart from a quiet server, and bounds its wait to
        the agent's heartbeat timeout (wandb's own waits 60 s while wandb-core retries a 5xx).

        Raises:
            SweepGone: 404, the sweep was deleted (W&B's stock agent stops asking then:
                wandb/wandb_agent.py `_heartbeat_commands`).
            Unreachable: no answer in time (a 5xx or 429 retried, a timeout, no connection).
            KeyRefused: the API key was refused (revoked, expired).
            SweeperError: any other refusal.
        """
        from wandb.apis.public.sweeps import _agent_heartbeat
        from wandb.sdk.sweeps import SweepNotFoundError

        witness = _Witness(self.api, self._beat_wait)
        api = cast(Any, witness)  # the Api as wandb's call uses it (see _Witness)
        self._down = True  # until it answers
        try:
            commands: list[dict[str, Any]] = _agent_heartbeat(api, agent_id, {}, running)
        except SweepNotFoundError:
            self._down = False
            sweep = self._sweep_of_agent.get(agent_id, "?")
            raise SweepGone(
                f"W&B sweep {sweep} was deleted: the server answers its agent with 404"
            ) from None
        if witness.fault is not None:
            status, message = _http_status(witness.fault), _first_line(witness.fault)
            if status in KEY_REFUSED:
                raise KeyRefused.of("heartbeat", witness.fault)
            if status is None or status == 429 or status >= 500 or _transient(message):
                raise Unreachable(f"W&B: heartbeat: {message}")
            raise SweeperError(f"W&B: heartbeat: {message} (HTTP {status})")
        self._down = False
        return commands or []

    def claim(self, sweep_id: str, agent: str, heartbeat_timeout: float = 60.0) -> Claim | None:
        """Heartbeat as this slot's W&B agent with nothing running: the server answers with a
        run to start, or `exit` when the sweep has nothing left. `heartbeat_timeout` also
        bounds one heartbeat's wait for the server (see `_commands`)."""
        self._beat_wait = heartbeat_timeout
        if sweep_id not in self._paths:  # a sweep's parameters never change; none: NotFoundError
            self._paths[sweep_id] = key_paths(self.sweep(sweep_id).config)
        agent_id = self._agent(sweep_id, agent)
        for command in self._commands(agent_id, {}):
            if command.get("type") in ("run", "resume"):
                run_id = command["run_id"]
                self._agent_of_run[run_id] = agent_id
                params = values_of(command.get("args") or {}, self._paths[sweep_id])
                return Claim(run_id, sweep_id, 1, params, resumed=command["type"] == "resume")
            if command.get("type") == "exit":
                self._exhausted.add(sweep_id)
        return None

    def heartbeat(self, run_id: str, attempt: int) -> Beat:
        agent_id = self._agent_of_run.get(run_id)
        if agent_id is None:
            return "lost"
        for command in self._commands(agent_id, {run_id: True}):
            if command.get("type") == "exit" or (
                command.get("type") == "stop" and command.get("run_id") == run_id
            ):
                return "stop"
        return "alive"

    def open_sink(
        self,
        claim: Claim,
        sweep: SweepRecord | None,
        *,
        wandb_mode: WandbMode = "disabled",
        fork: bool = True,
    ) -> WandbRunSink:
        """The run the server created for this claim, as a sink (see base.Backend.open_sink).
        In the forked child, the process takes the variables `wandb agent` gives its runs, for
        wandb code that reads the environment; the run itself opens at `record_meta`."""
        if sweep is None:
            raise SweeperError("a trial on W&B belongs to a sweep")
        entity, project, sid = self._path(sweep.id)
        where = (self.root, claim.run_id, entity, project, sid)
        if not fork:  # the agent's parent: the server keeps the record, the agent only forgets
            return WandbRunSink(
                claim, self.run_dir(claim.run_id), None,
                on_close=lambda: self._agent_of_run.pop(claim.run_id, None),
                on_death=lambda state, error: self._report_death(where, state, error),
            )  # fmt: skip
        os.environ.update(
            WANDB_ENTITY=entity,
            WANDB_PROJECT=project,
            WANDB_SWEEP_ID=sid,
            WANDB_RUN_ID=claim.run_id,
        )
        os.environ.pop("WANDB_SWEEP_PARAM_PATH", None)

        def opener(meta: Mapping[str, Any]) -> Any:
            return start_wandb(
                wandb_mode,
                run_id=claim.run_id,
                project=project,
                entity=entity,
                group=sweep.study,
                job_type=sweep.stage_name,
                directory=self.root,
                config=run_config(meta, claim, sweep),
                sweep_id=sid,
            )

        def requeue() -> None:
            """A program's run that the agent preempted: ended preempted once the program is
            gone (`end_unseen`)."""
            end_unseen(*where, RunState.PREEMPTED, None)

        return WandbRunSink(claim, self.run_dir(claim.run_id), opener, requeue=requeue)

    def _report_death(self, where: RunPlace, state: RunState, error: str | None) -> None:
        """Tell the server at once how a trial whose process the agent saw die ended
        (`end_unseen`), rather than leave its run running until the server's crash timeout
        (W&B: a run that stopped sending heartbeats is crashed, docs "Run states"). Done in a
        process forked for it, so the agent stays single-threaded, and given REPORT_WAIT
        seconds. Nothing while the server does not answer the agent: it would not hear it."""
        if self._down:
            return
        process = multiprocessing.get_context("fork").Process(
            target=_report_main, args=(*where, state, error), name="trial-report"
        )
        process.start()
        process.join(REPORT_WAIT)
        if process.is_alive():
            process.kill()
            process.join()


RunPlace = tuple[Path, str, str, str, str]
"""Where a trial's run is: the backend's folder, run id, entity, project, sweep id."""


def end_unseen(
    root: Path,
    run_id: str,
    entity: str,
    project: str,
    sweep_id: str,
    state: RunState,
    error: str | None,
) -> None:
    """End a run whose own process is gone (killed, or a program's), by resuming it: a
    preempted one is marked preempting and ends non-zero, which is how W&B requeues a run
    (wandb's Run.mark_preempting; the server then hands it to the next agent as `resume`);
    any other ends non-zero with `error`'s first line in its summary: W&B marks it failed
    ("Run ended with a non-zero exit status", https://docs.wandb.ai/models/runs/run-states)."""
    run = start_wandb(
        "online",
        run_id=run_id,
        project=project,
        entity=entity,
        group=None,
        job_type=None,
        directory=root,
        config={},
        sweep_id=sweep_id,
    )
    if run is not None:
        _end(run, state, error)


def _end(run: Any, state: RunState, error: str | None) -> None:
    """End a wandb run that the agent's trial could not end itself (see `end_unseen`)."""
    if state == RunState.PREEMPTED:
        run.mark_preempting()
    else:
        run.summary["error"] = (error or state).splitlines()[0]
    run.finish(exit_code=1)


def _report_main(
    root: Path,
    run_id: str,
    entity: str,
    project: str,
    sweep_id: str,
    state: RunState,
    error: str | None,
) -> None:
    """The forked process of WandbBackend._report_death: the run is ended unless the server
    already has it ended (its process ended it before it died). A trainer's run lives on in
    the agent's wandb service, which its children share (Agent.warm_up), and is ended there
    (`wandb.attach`: wandb-core holds a run id once); a program's run, gone with the
    program's own service, is resumed (`end_unseen`)."""
    import wandb
    from wandb.sdk import wandb_init

    for sig in (signal.SIGINT, signal.SIGTERM):  # not the agent's handlers: they end trials
        signal.signal(sig, signal.SIG_DFL)
    try:
        live = wandb.Api(timeout=API_TIMEOUT).run(f"{entity}/{project}/{run_id}").state
        if live not in ("running", "preempting"):
            return
        try:
            run = wandb_init._attach(run_id=run_id)  # wandb.attach
        except wandb.errors.UsageError:  # not a run of this service
            end_unseen(root, run_id, entity, project, sweep_id, state, error)
        else:
            _end(run, state, error)
        wandb.teardown()
    except Exception as exc:  # the server crashes it after its timeout instead: say so, once
        print(f"run {run_id} not ended on W&B: {_first_line(exc)}", flush=True)


class KeyRefused(SweeperError):
    """The server refused the API key (HTTP 401 or 403): revoked, expired, or another
    server's. Not retried: the same key is refused again."""

    @classmethod
    def of(cls, what: str, exc: BaseException) -> KeyRefused:
        status = _http_status(exc)
        return cls(
            f"W&B: {what}: the server refused the API key (HTTP {status}: {_first_line(exc)});"
            " `wandb login` with a valid key"
        )


class _Witness:
    """The public Api as wandb's `_agent_heartbeat` uses it (`api._service_api`), its request
    watched: the fault wandb swallows is kept in `fault`, and the wait is at most `wait` s."""

    def __init__(self, api: Any, wait: float) -> None:
        self._api, self._wait = api, wait
        self._service_api = self
        self.fault: Exception | None = None

    def execute_graphql(
        self, query: str, variables: Any = None, timeout: float | None = None, **options: Any
    ) -> Any:
        wait = self._wait if timeout is None else min(timeout, self._wait)
        try:
            return self._api._service_api.execute_graphql(query, variables, timeout=wait, **options)
        except Exception as exc:
            self.fault = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


class WandbRunSink:
    """One claim's record on a W&B server: the run the server created (see base.TrialSink).

    The run is the record: its summary carries the outcome, `error` the reason of a failure,
    and its exit code tells W&B whether it finished or failed. A preempted run is marked
    preempting and ends non-zero, which is how W&B knows to hand it to an agent again. A
    command's program opens and writes the run itself, as under `wandb agent`; the sink then
    only gives it the variables to find it (`opener` is None: no run of the sink's own).
    """

    by_exit_code = True

    def __init__(
        self,
        claim: Claim,
        run_dir: Path,
        opener: Callable[[Mapping[str, Any]], Any] | None,
        on_close: Callable[[], object] | None = None,
        requeue: Callable[[], None] | None = None,
        on_death: Callable[[RunState, str | None], None] | None = None,
    ) -> None:
        """`opener`: opens the trial's wandb run given its meta (None if not the sink's);
        `requeue`: marks a run the sink did not open (a program's) preempted on the server;
        `on_death`: in the agent, ends on the server the run of a trial whose process died
        (killed by a signal) as the agent recorded it."""
        self.claim, self.run_dir = claim, run_dir
        self._opener, self._on_close, self._requeue = opener, on_close, requeue
        self._on_death = on_death
        self._run: StepLog | None = None

    def record_meta(self, meta: Mapping[str, Any]) -> None:
        run = self._opener(meta) if self._opener is not None else None
        self._run = StepLog(run) if run is not None else None

    def log(self, step: int, metrics: Mapping[str, float]) -> bool:
        """Always True: the server fences nothing a client sees; a run handed to another agent
        is told by the heartbeat (`lost`), and the agent kills the trial."""
        if self._run is not None:
            self._run.log(metrics, step)
        return True

    def log_batch(self, batch: int, metrics: Mapping[str, float]) -> None:
        if self._run is not None:
            self._run.log_batch(metrics, batch)

    def log_images(self, name: str, paths: list[Path], step: int) -> None:
        if self._run is not None:
            self._run.log_images(name, paths, step)

    def should_stop(self) -> bool:
        """False: W&B's stop reaches the agent's heartbeat, which signals the trial."""
        return False

    def program_env(self, attempt_dir: Path) -> dict[str, str]:
        """What `wandb agent` sets for a run it starts (wandb/wandb_agent.py, `_run_job`):
        the program's own wandb.init() then logs online to the run the server created."""
        env = {
            key: os.environ[key]
            for key in ("WANDB_ENTITY", "WANDB_PROJECT", "WANDB_SWEEP_ID")
            if key in os.environ
        }
        env.update(
            WANDB_RUN_ID=self.claim.run_id,
            WANDB_SWEEP_PARAM_PATH=str(attempt_dir / "sweep-params.yaml"),
            WANDB_DIR=str(attempt_dir),
            WANDB__TRANSACTION_LOG_FLUSH_INTERVAL=FLUSH,
        )
        return env

    def mark_preempting(self) -> None:
        """Tell W&B at once (wandb's Run.mark_preempting); nothing for a program's own run."""
        if self._run is not None:
            with contextlib.suppress(Exception):  # the run ended meanwhile: nothing to requeue
                self._run.run.mark_preempting()

    def finish(
        self,
        state: RunState,
        *,
        summary: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> bool:
        """End the sink's run; a stopped one says `stopped_early` in its summary (W&B's state
        for it depends on how its agent ended it). A program's own run is the program's to end,
        unless preempted (then it is requeued). In the agent, the run of a trial whose process
        died is ended through `on_death`. False when nothing was recorded."""
        if self._run is None:
            if state == RunState.PREEMPTED and self._requeue is not None:
                self._requeue()
                return True
            died = exit_code is None or exit_code < 0  # it could not end its run itself
            if died and self._on_death is not None and state != RunState.FINISHED:
                self._on_death(state, error)
                return True
            return False
        run, self._run = self._run, None
        if state == RunState.STOPPED:
            run.run.summary["stopped_early"] = True
        run.end(state, summary or {}, error)
        return True

    def ended(self) -> tuple[RunState, str | None] | None:
        """None: the server keeps the record; the agent goes by the exit code."""
        return None

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()


# run tables -------------------------------------------------------------------------------------


def plain_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A W&B run config, nested or dotted, `{value: v}`-wrapped at any depth or not, as
    {dotted path: value}; wandb's and our own bookkeeping (`_wandb`, `_sweeper`) dropped."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key.startswith("_"):
            continue
        if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "desc"}:
            value = value["value"]
        if isinstance(value, Mapping) and value:
            flat.update(plain_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def scalars(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers and strings only: W&B summaries also hold histograms, tables and media."""
    return {
        k: v
        for k, v in summary.items()
        if not k.startswith("_") and isinstance(v, int | float | str | bool) and v is not None
    }


def run_values(config: Mapping[str, Any], paths: Mapping[str, KeyPath]) -> dict[str, Any]:
    """A W&B run config as the run table's columns: each sweep parameter whole, read along its
    key path (a dict value is one value); the rest of the config dotted, as `plain_config`."""
    out = plain_config(config)
    for name, value in values_of(config, paths).items():
        if name in paths:
            out = {k: v for k, v in out.items() if k != name and not k.startswith(f"{name}.")}
            out[name] = value
    return out


def runs_frame(
    runs: Iterable[Any],
    sweep_id: str,
    stage: int = 0,
    stage_name: str | None = None,
    paths: Mapping[str, KeyPath] | None = None,
) -> pd.DataFrame:
    """Public-API runs -> the run table (sweeper.sweep.runtable, as LocalBackend.runs gives)."""
    paths = paths or {}
    return run_table(_run_rows(runs, sweep_id, stage, stage_name, paths), [*paths])


def _run_rows(
    runs: Iterable[Any],
    sweep_id: str,
    stage: int,
    stage_name: str | None,
    paths: Mapping[str, KeyPath],
) -> Iterator[RunRow]:
    """The listed runs' rows, less a run deleted since the listing (the public API reads a
    run's summary on first use): a scheduler's queued run its closed sweep dropped, or a run
    a user deleted, is no longer the sweep's."""
    from wandb.apis.public.runs import RunNotFoundError

    for run in runs:
        try:
            yield _run_row(run, sweep_id, stage, stage_name, paths)
        except RunNotFoundError:
            continue


def _run_row(
    run: Any, sweep_id: str, stage: int, stage_name: str | None, paths: Mapping[str, KeyPath]
) -> RunRow:
    """A public-API run as a run-table row: W&B keeps no agent, attempts or exit code."""
    summary = dict(run.summary)
    return RunRow(
        run_id=run.id,
        sweep_id=sweep_id,
        state=STATES.get(run.state, run.state),
        created_at=_utc_seconds(run.created_at),
        config=run_values(run.config, paths),
        summary=scalars(summary),
        stage=stage,
        stage_name=stage_name,
        runtime=summary.get("_runtime"),
        error=summary.get("error"),
    )


def _utc_seconds(when: Any) -> float | None:
    """W&B gives ISO strings in UTC, with or without a zone; seconds since the epoch."""
    import pandas as pd

    stamp = pd.Timestamp(when)
    if pd.isna(stamp):
        return None
    return (stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")).timestamp()


def _timestamp(when: Any) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(when).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status behind a wandb error, looked for down its chain: wandb-core's
    WandbApiFailedError carries `response.http_status`; the public API's CommError wraps
    one as `exc`."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        status = getattr(getattr(cause, "response", None), "http_status", None)
        if isinstance(status, int) and status:
            return status
        inner = getattr(cause, "exc", None)
        cause = inner if isinstance(inner, BaseException) else cause.__cause__ or cause.__context__
    return None


def _transient(message: str) -> bool:
    """A fault another try may clear: the server or the way to it, not the request."""
    lowered = message.lower()
    return any(
        sign in lowered
        for sign in (
            "did not respond in time", "timed out", "timeout", "connection", "temporarily",
            "unavailable", "429", "502", "503", "504",
        )
    )  # fmt: skip
