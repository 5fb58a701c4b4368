"""One trial of a plain W&B sweep: the user's own program, run the way `wandb agent` runs it.

Runs in the agent's forked child. The program is started from the sweep's `command` (an argv,
never a shell) in the sweep file's folder, with the variables (the sink's) that make its own
`wandb.init()` take this trial's run id and parameters: offline beside a store, online to the
run a W&B server created. What it logs is read back from its run file: history while it runs
(so hyperband can stop it), the summary at the end. A stop (the sweep's or the agent's)
reaches its whole process group as SIGTERM, then SIGKILL after a grace period; if this child
dies, the kernel kills the program with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sweeper.agent.output import CappedLog, exit_reason, output_tail, pump
from sweeper.agent.proctree import descendants, end_descendants
from sweeper.agent.tracking import StopFlag
from sweeper.backends.base import TrialSink
from sweeper.backends.runfile import RunFileError, RunFileReader, RunLog
from sweeper.spec.command import CommandError, expand, uses_program
from sweeper.spec.paths import flatten
from sweeper.sweep import RunState
from sweeper.text import REASON_LIMIT, cap, strip_controls

if TYPE_CHECKING:
    from sweeper.agent.trial import CommandRun, TrialEnd

POLL = 0.2
"""Seconds between looks at the program and its run file."""
GRACE = 10.0
"""Seconds a stopped program gets to exit after SIGTERM before SIGKILL."""
INTERRUPTED_EXIT = 255
"""The exit code wandb gives a run whose program a KeyboardInterrupt ended
(wandb/sdk/lib/exit_hooks.py, ExitHooks.exc_handler)."""


def _die_with_us() -> None:
    """In the program, before exec (Linux): killed if the trial's child process dies."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def param_file(path: Path, args: dict[str, Any]) -> None:
    """The trial's parameters as `wandb agent` writes them for WANDB_SWEEP_PARAM_PATH:
    wandb's config-file YAML, `{name: {value: v}}`, which wandb.init puts in wandb.config."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump({k: {"value": v} for k, v in args.items()}, sort_keys=False)
    path.write_text(f"wandb_version: 1\n\n{body}")


def program_env(sink: TrialSink, attempt_dir: Path) -> dict[str, str]:
    """This process's environment (less its wandb service: the program starts its own), with
    the W&B variables of the trial's sink."""
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env.update(sink.program_env(attempt_dir))
    return env


def run_file(attempt_dir: Path, run_id: str, offline: bool = True) -> Path | None:
    """The program's run file: under WANDB_DIR as we set it, or wherever the program put it
    (`wandb.init(dir=...)`, its own WANDB_DIR), found open in its wandb service. wandb names a
    run's folder `offline-run-<time>-<id>` offline and `run-<time>-<id>` online
    (wandb/sdk/wandb_settings.py, Settings.sync_dir); both hold the same transaction log."""
    prefix = "offline-run-" if offline else "run-"
    found = sorted((attempt_dir / "wandb").glob(f"{prefix}*-{run_id}*/run-{run_id}.wandb"))
    if found:
        return found[-1]
    name = f"run-{run_id}.wandb"
    for pid in descendants(os.getpid()):  # the program and the wandb-core it started
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to look into
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = Path(os.readlink(fd))
                if target.name == name and target.parent.name.startswith(prefix):
                    return target
    return None


def _metrics(row: dict[str, Any]) -> dict[str, float]:
    """A history row's numbers, as the store keeps them (wandb's own `_` keys left out)."""
    return {
        k: float(v)
        for k, v in row.items()
        if not k.startswith("_") and isinstance(v, int | float) and not isinstance(v, bool)
    }


def summary_of(log: RunLog) -> dict[str, Any]:
    """The run's summary as the store keeps it: plain values (NaN and inf included: the store
    holds every float), nested keys dotted."""
    return {
        k: v
        for k, v in flatten(log.summary).items()
        if not k.startswith("_") and isinstance(v, str | int | float | bool)
    }


def nan_metric(
    metric: str, history: list[tuple[int, float]], summary: dict[str, Any]
) -> str | None:
    """Why a run whose metric went NaN fails: the metric, the value and the first step.

    NaN cannot be ranked (every comparison with it is false), so such a run never counts;
    inf is a number and ranks last for its goal, so it does not fail a run.
    """
    for step, value in history:
        if math.isnan(value):
            return f"the metric {metric!r} is nan at step {step}"
    final = summary.get(metric)
    if isinstance(final, float) and math.isnan(final):
        return f"the metric {metric!r} is nan in the summary"
    return None


def stopped_by_wandb(code: int, log: RunLog) -> bool:
    """Whether W&B stopped the program's own online run (a user's "Stop run", hyperband on the
    server, a cancelled sweep) before the agent heard of it.

    wandb's stop checker in the program interrupts its main thread with SIGINT
    (wandb/sdk/lib/run_stopping.py, interrupt.py); unless the program handles it, the
    KeyboardInterrupt ends the run with exit code 255 (wandb/sdk/lib/exit_hooks.py) and the
    process by SIGINT. Nothing else sends it SIGINT: it runs in a process group of its own, away
    from any terminal, and the trial stops it with SIGTERM.
    """
    return code == -signal.SIGINT or log.exit_code == INTERRUPTED_EXIT


def went_online(attempt_dir: Path, run_id: str, tail: str) -> str | None:
    """Why a program that made wandb go online, over the WANDB_MODE=offline it runs under
    (`wandb.init(mode="online")`), left no offline run; None if it did not.

    Read from what wandb leaves: it names a run's folder `run-<time>-<id>` online and
    `offline-run-<time>-<id>` offline (wandb/sdk/wandb_settings.py, Settings.sync_dir), and with
    no API key it refuses before writing anything, with UsageError "No API key configured"
    (wandb/sdk/lib/wbauth/authenticate.py).
    """
    forced = "the program called wandb.init(mode='online'), but trials run offline with no W&B"
    advice = "call wandb.init without mode= (each trial sets WANDB_MODE=offline)"
    if "No API key configured" in tail:
        return f"{forced} server and no API key (wandb refused to start the run); {advice}"
    if any((attempt_dir / "wandb").glob(f"run-*-{run_id}")):
        return f"{forced} server (its run {run_id} was started online); {advice}"
    return None


class _Program:
    """The running program and how it is being ended."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.term_at: float | None = None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        """SIGTERM once, SIGKILL when the grace period is over."""
        if self.term_at is None:
            self.term_at = time.monotonic()
            self.signal(signal.SIGTERM)
        elif time.monotonic() - self.term_at > GRACE:
            self.signal(signal.SIGKILL)


def follow(work: CommandRun, sink: TrialSink, flag: StopFlag) -> TrialEnd:
    """Run the trial's program, record its history, summary and state through `sink`;
    returns that state ("lost" when the claim was taken from it). Called by
    agent.trial.run_trial."""
    claim = sink.claim
    attempt_dir = (sink.run_dir / f"attempt-{claim.attempt}").resolve()
    env = program_env(sink, attempt_dir)
    offline = env.get("WANDB_MODE") == "offline"
    source, folder = work.program, work.folder
    if source and uses_program(work.command) and not (Path(folder) / source).is_file():
        why = f"program: {source} not found (looked in {folder})"  # moved since the launch?
        return _finish(sink, RunState.FAILED, {}, None, why)
    try:
        json_file = attempt_dir / "args.json"
        argv = expand(
            work.command, work.args, program=source, args_json_file=json_file, environ=env
        )
        # what is recorded: ${envvar:NAME} as written, never the value (a password, a token)
        written = expand(
            work.command, work.args, program=source, args_json_file=json_file, environ=None
        )
    except CommandError as exc:
        return _finish(sink, RunState.FAILED, {}, None, f"command: {exc}")
    param_file(attempt_dir / "sweep-params.yaml", work.args)
    sink.record_meta({"config": work.args, "command": written, "folder": folder})
    output, feed = os.pipe()
    try:
        process = subprocess.Popen(
            argv,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=feed,
            stderr=feed,
            process_group=0,
            preexec_fn=_die_with_us,
        )
    except OSError as exc:
        os.close(output)
        why = f"cannot start {written[0]} in {folder}: {exc.strerror}"
        return _finish(sink, RunState.FAILED, {}, None, why)
    finally:
        os.close(feed)
    copying = pump(output, CappedLog(sink.run_dir / "output.log"))
    try:
        ended = _watch(sink, flag, _Program(process), attempt_dir, offline)
    finally:
        end_descendants()  # what the program left behind (`cmd &`, a setsid daemon)
        copying.join()  # every writer of the pipe is gone: the log is whole
    if isinstance(ended, str):
        return ended
    reader, code = ended
    return _outcome(work, sink, flag, reader, code, attempt_dir, offline)


def _watch(
    sink: TrialSink, flag: StopFlag, program: _Program, attempt_dir: Path, offline: bool
) -> TrialEnd | tuple[RunFileReader | None, int]:
    """Follow the running program and its run file until it exits: (the reader, its exit
    code), or the state it was recorded in already (lost, or a damaged run file)."""
    process = program.process
    reader: RunFileReader | None = None
    run_id = sink.claim.run_id
    try:
        while True:
            code = process.poll()
            if reader is None and (path := run_file(attempt_dir, run_id, offline)):
                reader = RunFileReader(path)
            rows = reader.poll() if reader else []
            for row in rows:
                metrics = _metrics(row)
                step = int(row.get("_step", 0))
                if metrics and not sink.log(step, metrics):
                    program.signal(signal.SIGKILL)  # requeued behind our back: not ours now
                    process.wait()
                    return "lost"
            if rows and not flag.raised and sink.should_stop():
                flag.stop_by_sweep()
            if code is not None:
                break
            if flag.raised:
                program.stop()
            time.sleep(POLL)
    except RunFileError as exc:
        program.signal(signal.SIGKILL)
        process.wait()
        return _finish(sink, RunState.FAILED, {}, process.returncode, str(exc))
    return reader, code


def _outcome(
    work: CommandRun,
    sink: TrialSink,
    flag: StopFlag,
    reader: RunFileReader | None,
    code: int,
    attempt_dir: Path,
    offline: bool,
) -> TrialEnd:
    log = reader.log if reader else RunLog()
    summary = summary_of(log)
    metric, run_id = work.metric, sink.claim.run_id
    tail = output_tail(sink.run_dir / "output.log")
    if flag.reason:
        return _finish(sink, RunState.PREEMPTED, summary, code, f"requeued: {flag.reason}")
    if log.run_id is None and offline and (why := went_online(attempt_dir, run_id, tail)):
        return _finish(sink, RunState.FAILED, {}, code, why)
    if log.run_id is None and code == 0:
        why = (
            "the program never called wandb.init, or gave it its own dir= or mode= (no"
            f" {'offline ' if offline else ''}run {run_id} under {attempt_dir})"
        )
        return _finish(sink, RunState.FAILED, {}, code, why)
    if log.run_id is None:
        why = f"the program failed ({exit_reason(code)}) with no wandb run recorded"
        return _finish(sink, RunState.FAILED, {}, code, f"{why}\n{tail}")
    if flag.by_sweep or (not offline and stopped_by_wandb(code, log)):
        return _finish(sink, RunState.STOPPED, summary, code, None)
    if code != 0:
        why = f"the program failed ({exit_reason(code)})"
        return _finish(sink, RunState.FAILED, summary, code, f"{why}\n{tail}")
    if metric and metric not in summary:
        logged = ", ".join(sorted(summary)) or "nothing"
        why = f"the program never logged the metric {metric!r} (it logged: {logged})"
        return _finish(sink, RunState.FAILED, summary, code, why)
    if metric:
        series = [
            (int(row.get("_step", 0)), float(row[metric]))
            for row in log.history
            if isinstance(row.get(metric), float)
        ]
        if why := nan_metric(metric, series, summary):
            return _finish(sink, RunState.FAILED, summary, code, why)
    return _finish(sink, RunState.FINISHED, summary, code, None)


def _finish(
    sink: TrialSink,
    state: RunState,
    summary: dict[str, Any],
    code: int | None,
    error: str | None,
) -> RunState:
    if error is not None:  # a program's text: no terminal escapes, no megabyte rows
        error = cap(strip_controls(error), REASON_LIMIT)
    sink.finish(state, summary=summary, exit_code=code, error=error)
    if error and sink.by_exit_code:  # the agent reads the end from output.log's tail only
        print(error, file=sys.stderr)
    return state
