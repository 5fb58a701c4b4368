"""The agent: keep every slot busy with a trial in its own forked child until the sweep ends.

The parent imports torch and the trainer once (warm) and never touches CUDA, so each fork
starts training in milliseconds instead of paying a fresh interpreter and torch import; the
next trial's child is forked while the current one runs and waits for its claim (a standby).
The parent is single-threaded (fork and threads do not mix): it polls children, heartbeats,
and reacts to signals between polls.

The signals a trial child gets, and what each means. The child runs in a process group of its
own (`_standby_main`), so a terminal's Ctrl-C reaches the agent only, never the trial.
- PREEMPT_SIGNAL (SIGTERM): the agent, or its node, is going away. The trial is preempted:
  marked preempting on W&B (wandb's Run.mark_preempting), it ends at the next epoch boundary,
  checkpointed, and is requeued. The agent sends it on SIGTERM and on SIGINT (Ctrl-C) alike, and
  the trial records which one the agent got.
- SIGINT: W&B stopped the trial's run (the UI's "Stop run", hyperband on the server, a cancelled
  sweep). wandb's stop checker in the run's own process asks wandb-core every 15 s whether the
  server said `stopped` (wandb/sdk/lib/run_stopping.py) and then interrupts the main thread with
  SIGINT (wandb/sdk/lib/interrupt.py, interrupt_main). The trial is stopped: it ends at the next
  epoch boundary, checkpointed, with its summary, `stopped` (W&B: `killed`), never requeued.
- STOP_SIGNAL (SIGUSR1): the same stop, seen by the agent first: W&B's `stop` command on its
  heartbeat (a store's early termination reaches the trial through its sink instead).
A command's program is signalled by its trial (agent/program.py), and under the stock `wandb
agent` W&B's agent stops a run with SIGTERM (agent/wandb_agent_trial.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.sharedctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from sweeper.agent.output import exit_reason, output_tail
from sweeper.agent.proctree import become_subreaper, end_descendants, kill_tree
from sweeper.agent.provenance import static_provenance
from sweeper.agent.slots import gpus_of, make_slots, threads_per_trial
from sweeper.agent.tracking import StopFlag
from sweeper.agent.trial import run_trial, workload_of
from sweeper.backends import BackendKind, open_backend
from sweeper.backends.base import (
    PREEMPTED_EXIT,
    STOPPED_EXIT,
    Backend,
    Claim,
    SweepRecord,
    TrialSink,
    WandbMode,
)
from sweeper.backends.local import LocalBackend
from sweeper.backends.scheduler import BATCH_SIZE, SweepScheduler, is_scheduled
from sweeper.backends.sqlite import StoreIdentity
from sweeper.backends.store import new_id
from sweeper.errors import NoSpace, StoreLost, SweeperError, SweepGone, Unreachable, no_space
from sweeper.sweep import RunState, SweepState
from sweeper.trainers.registry import get_trainer

WANDB_WARM_MODULES = ("wandb", "wandb.sdk.launch")
"""wandb.init imports its launch package lazily: about 2 s a trial unless the parent has it."""

FLAPPING_LIMIT = 5
"""Consecutive failed trials, with no success, after which the agent gives up."""

OUTAGE_BACKOFF = 30.0
"""Seconds between an agent's tries at the most, while its server does not answer."""

NO_SPACE_EXIT = 74
"""A trial child's exit code when a full disk stopped it (EX_IOERR): requeued, not failed, and
the agent stops, since every trial after it would meet the same disk."""

LAUNCHER_ENV = "SWEEPER_LAUNCHER_PID"
"""Set by `launch` for the agents it starts: they end with it (see `_follow_launcher`)."""

STORE_IDENTITY_ENV = "SWEEPER_STORE_IDENTITY"
"""Set by `launch`: the store file it opened, which its agents must find at the path."""


@dataclass
class AgentOptions:
    sweep_id: str
    """A local sweep or study id, or entity/project/sweep_id with the wandb backend."""
    store: str | os.PathLike[str] | None = None
    """A SQLite file or a postgresql:// URL (see LocalBackend)."""
    backend: BackendKind = "local"
    gpus: list[str] = field(default_factory=list)
    """GPU ids to fill, gpus_per_trial (from the spec) at a time; empty: one CPU slot."""
    count: int | None = None
    wandb_mode: WandbMode = "offline"
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 60.0
    grace: float = 10.0
    """Seconds a stopped trial gets to reach an epoch boundary before it is killed."""
    poll: float = 0.2
    threads: int | None = None
    """CPU threads per trial; None: the spec's agents.cpus_per_trial, else the cores shared
    among the agent's slots."""
    trial_timeout: float | None = None
    """Seconds a trial may run; None: the spec's agents.trial_timeout (none by default)."""
    outage_limit: float = 300.0
    """Seconds without an answer from the server (5xx, timeouts, no connection) that the agent
    waits out, its trials running, before it preempts them and gives up (`Agent._wait_out`).
    The default is about how long W&B waits for a silent run before it marks it crashed ("Run
    stopped sending heartbeats", https://docs.wandb.ai/models/runs/run-states): past that the
    server has given up on the agent's runs too."""
    batch_size: int = BATCH_SIZE
    """A `scheduler:` sweep's runs kept in flight while this agent holds its scheduler (W&B's
    `wandb sweep-scheduler --batch-size`)."""


@dataclass
class Running:
    claim: Claim
    slot: str | None
    process: BaseProcess
    started: float = field(default_factory=time.monotonic)
    verdict: tuple[RunState, str] | None = None
    """(state, reason) when the agent killed the trial itself: preempted, or timed out."""


def _die_with_parent() -> None:
    """Linux: the kernel kills this child if the agent dies, so no orphan trains on."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _kill(running: Running) -> None:
    """Kill a trial the agent gives up on, with every process below it (see proctree)."""
    if running.process.pid is not None:
        kill_tree(running.process.pid)


def _follow_launcher(pid: int) -> None:
    """An agent started by `launch` gets SIGTERM when launch dies, even by SIGKILL, and so
    preempts its trials instead of running on beside the agents of the next launch.

    Raises:
        SweeperError: launch had already exited when this agent started.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != pid:  # it died before the line above: no signal will come
        raise SweeperError(f"the launch that started this agent (pid {pid}) has exited")


STOP_SIGNAL = signal.SIGUSR1
"""What the agent sends a trial that the sweep stopped (W&B's stop command): finish at the
next epoch boundary, stopped (the rule: this module's docstring)."""

PREEMPT_SIGNAL = signal.SIGTERM
"""What the agent sends its trials when it is going away, whichever signal it got: preempt.
SIGINT is not passed on: in a trial it means W&B stopped the run (this module's docstring)."""


@dataclass
class Standby:
    """A child forked before its trial exists, waiting for the claim on a pipe: forking a
    torch-sized parent costs ~10 ms, paid while the previous trial runs, not between trials."""

    process: BaseProcess
    sender: Connection


def _standby_main(
    receiver: Connection,
    sender: Connection,
    backend: Backend,
    sweep: SweepRecord,
    options: AgentOptions,
    threads: int,
    agent_signal: ctypes.c_int,
) -> None:
    _die_with_parent()
    os.setpgid(0, 0)  # a terminal's Ctrl-C goes to the agent, which stops trials itself
    sender.close()  # else the agent closing its end would never reach us as end-of-file
    try:
        claim, slot = receiver.recv()
    except EOFError:  # the agent is done: no trial for this one
        return
    _child_main(backend, claim, sweep, slot, options, threads, agent_signal)


def _child_main(
    backend: Backend,
    claim: Claim,
    sweep: SweepRecord,
    slot: str | None,
    options: AgentOptions,
    threads: int,
    agent_signal: ctypes.c_int,
) -> None:
    """Run one trial in this forked child; its exit code tells the agent how it ended.

    `agent_signal`: shared with the agent, the signal it got when it preempts its trials (0
    until then), so a trial preempted for the agent's Ctrl-C records SIGINT, not SIGTERM.
    """
    become_subreaper()  # orphans below the trial (setsid daemons too) stay ours to end
    if slot is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slot
    if options.wandb_mode != "disabled":
        # wandb's process-wide settings come from here: offline, it builds no telemetry
        # exporter (0.1 s of imports a trial) and contacts nothing.
        os.environ["WANDB_MODE"] = options.wandb_mode
    # Trials sharing cores must not spin-wait on each other. A program, or a trainer that
    # imports torch only now, gets the count by environment (torch reads it at import).
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if not sweep.is_command and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    run_dir = backend.run_dir(claim.run_id)
    try:
        if isinstance(backend, LocalBackend):  # the store's folder deleted: make none there
            backend.check_store()
        run_dir.mkdir(parents=True, exist_ok=True)
        log = os.open(run_dir / "output.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        flag = StopFlag()

        def preempt(signum: int, _frame: object) -> None:
            flag.set(signal.Signals(agent_signal.value or signum).name)

        signal.signal(PREEMPT_SIGNAL, preempt)
        for sig in (signal.SIGINT, STOP_SIGNAL):  # W&B's stop, or the sweep's (docstring)
            signal.signal(sig, lambda _signum, _frame: flag.stop_by_sweep())
        # A command's program opens its own wandb run: the sink opens none beside it.
        mode: WandbMode = "disabled" if sweep.is_command else options.wandb_mode
        sink = backend.open_sink(claim, sweep, wandb_mode=mode)
        try:
            state = run_trial(workload_of(sweep, claim), sink, flag)
        finally:
            sink.close()
    except (StoreLost, NoSpace, OSError) as exc:  # the agent's next write finds it too
        full = no_space(exc, run_dir)
        if full is None and not isinstance(exc, StoreLost):
            end_descendants()
            raise
        with contextlib.suppress(OSError):  # output.log may be on that full disk
            print(full or exc, file=sys.stderr, flush=True)
        end_descendants()
        os._exit(NO_SPACE_EXIT if full else 1)  # not sys.exit: its flush at exit could fail
    except BaseException:
        end_descendants()  # a trial that raised leaves nothing behind either
        raise
    if "wandb" in sys.modules:  # a forked child skips atexit: flush wandb's run files now
        # This process's own wandb state: a child that opened no run (a command's) would else
        # tear down the agent's, which wandb refuses in a fork (ForkedError). wandb_setup's
        # singleton() gives a fork a fresh one and starts no service.
        from wandb.sdk.wandb_setup import singleton

        singleton()
        sys.modules["wandb"].teardown()
    end_descendants()  # DataLoader workers, a program's `sleep 300 &`: none outlives its trial
    sys.stdout.flush()
    sys.stderr.flush()
    # The exit code is what the agent sees of a trial W&B keeps.
    if state in (RunState.FAILED, RunState.CRASHED):
        sys.exit(1)
    if state == RunState.PREEMPTED:
        sys.exit(PREEMPTED_EXIT)
    if state == RunState.STOPPED:
        sys.exit(STOPPED_EXIT)


def exit_record(
    sink: TrialSink, exit_code: int | None, verdict: tuple[RunState, str] | None
) -> tuple[RunState, str | None]:
    """After a trial's child exited: its end (state, reason), recording through `sink` what
    the child could not record itself (fenced: nothing when it recorded its end).

    The record's own end wins. Else the agent's `verdict` when it killed the trial
    (preempted at shutdown, timed out); else, where the record is out of the agent's sight
    (`sink.by_exit_code`, a W&B server), the exit code says it: 0 finished, STOPPED_EXIT
    stopped, PREEMPTED_EXIT preempted (the run was marked preempting: W&B requeues such a run,
    wandb's Run.mark_preempting), any other a failure; else the child died unrecorded: a crash,
    with the tail of its output.
    """
    recorded = sink.ended()
    if recorded is not None:
        return recorded
    tail = output_tail(sink.run_dir / "output.log")
    if verdict is not None:
        state, reason = verdict
    elif sink.by_exit_code and exit_code == 0:
        return RunState.FINISHED, None
    elif sink.by_exit_code and exit_code == STOPPED_EXIT:
        return RunState.STOPPED, None
    elif sink.by_exit_code and exit_code == PREEMPTED_EXIT:
        reason = "marked preempting: W&B hands it to the next agent, which resumes it"
        return RunState.PREEMPTED, reason
    elif sink.by_exit_code and exit_code is not None and exit_code > 0:
        state = RunState.FAILED
        reason = f"trial process ended ({exit_reason(exit_code)})" + (f"\n{tail}" if tail else "")
    else:
        state, reason = RunState.CRASHED, f"trial process died ({exit_reason(exit_code)})"
        if tail:
            reason = f"{reason}\n{tail}"
    sink.finish(state, exit_code=exit_code, error=reason)
    return sink.ended() or (state, reason)


class Agent:
    def __init__(self, options: AgentOptions, say: Callable[[str], None] = print) -> None:
        self.options = options
        self.say = say
        launcher = os.environ.pop(LAUNCHER_ENV, None)  # not for the trials' programs
        if launcher:
            _follow_launcher(int(launcher))
        self.host = socket.gethostname()
        self.id = f"{self.host}-{os.getpid()}-{new_id(4)}"
        expected = os.environ.pop(STORE_IDENTITY_ENV, None)
        if expected and options.backend == "local":
            identity = StoreIdentity.parse(expected)
            self.backend: Backend = LocalBackend(options.store, create=False, expect=identity)
        else:
            self.backend = open_backend(
                options.backend, options.store, create=False, wait=options.outage_limit
            )
        self.sweep = self.backend.sweep(options.sweep_id)
        self.scope = self.sweep.study or self.sweep.id
        self.leases: dict[str | None, list[str]] = {}
        """Slot -> the slot leases held for it (local store only; see sweeper.agent.slots)."""
        self._waiting: set[str | None] = set()
        """Slots held by another agent, said once."""
        self.slots = make_slots(options.gpus, self.sweep.agents["gpus_per_trial"])
        self.threads = options.threads or threads_per_trial(
            self.sweep.agents["cpus_per_trial"], len(self.slots)
        )
        self.trial_timeout = options.trial_timeout or self.sweep.agents["trial_timeout"]
        self.running: dict[str | None, Running] = {}
        self.started = 0
        self.failures_in_a_row = 0
        self.stop_reason: str | None = None
        self.stop_signal: str | None = None
        self.stop_deadline: float | None = None
        self._next_claim = 0.0
        self.fault: SweeperError | None = None
        """The server fault the agent ends on, once its trials have ended (`_end_on`)."""
        self._last_answer = time.monotonic()
        self._outage = False
        self._retry_at = 0.0
        """No call to the server before this time: an outage's backoff (`_wait_out`)."""
        self._backoff = options.heartbeat_interval
        self._context = multiprocessing.get_context("fork")
        self._standby: Standby | None = None
        self._paused = False
        """The sweep was paused at the last empty claim (said once per pause)."""
        self._signal = multiprocessing.sharedctypes.RawValue(ctypes.c_int, 0)
        """The signal this agent got, shared with the trials it forks (see _child_main)."""
        self.scheduler: SweepScheduler | None = None
        """A `scheduler:` sweep's scheduler on a local store: stepped in this loop, between
        claims, while this agent holds the sweep's lease (sweeper.backends.scheduler). Inline,
        not a thread: the parent forks its trials, and its steps hold no lock claims wait on."""
        if isinstance(self.backend, LocalBackend) and is_scheduled(self.sweep.config):
            self.scheduler = SweepScheduler(
                self.backend.store,
                self.sweep.id,
                self.id,
                batch_size=options.batch_size,
                lease=options.heartbeat_timeout,
                say=lambda line: self.say(f"[{self.id}] {line}"),
            )
        self.scheduler_fault: SweeperError | None = None
        """Why the sweep's scheduler stopped in this agent (its optimizer failed): the agent
        ends on it once its trials have (`_step_scheduler`)."""

    def warm_up(self) -> None:
        """Import the trainer (and torch) once here, so no child pays for it."""
        if self.sweep.is_command:  # each trial is a program of its own: nothing to share
            return
        info = get_trainer(self.sweep.trainer)
        importlib.import_module(info.train_ref.partition(":")[0])
        if info.torch:  # what the first optimizer imports lazily (~6 s)
            importlib.import_module("torch._dynamo")
        static_provenance()  # git and versions once per agent; the children inherit them
        if self.options.wandb_mode != "disabled":
            for module in WANDB_WARM_MODULES:
                importlib.import_module(module)
            # One wandb service for the agent: each child connects to it (WANDB_SERVICE is
            # inherited) instead of starting its own, about 0.3 s a trial.
            sys.modules["wandb"].setup()

    def run(self) -> int:
        """Work until the sweep is complete, --count is reached, or a signal. Exit code."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.warm_up()
            last_beat = time.monotonic()
            while True:
                self._reap()
                if time.monotonic() >= self._retry_at:
                    try:
                        if self.scheduler is not None and self.stop_reason is None:
                            self._step_scheduler(self.scheduler)
                        if self.stop_reason is None:
                            self._fill_slots()
                        if not self.running and self._finished():
                            break
                        beat = time.monotonic() - last_beat >= self.options.heartbeat_interval
                        if beat and self.fault is None:  # a deleted sweep is asked no more
                            self._heartbeat()
                            last_beat = time.monotonic()
                        if beat or not self.running:  # the server answered (is_complete too)
                            self._answered()
                    except Unreachable as exc:  # running trials go on; ask again in a while
                        self._wait_out(exc)
                    except (StoreLost, NoSpace):
                        raise
                    except SweeperError as exc:  # a refusal: another try fails the same way
                        self._end_on(exc)
                self._enforce_grace()
                self._enforce_timeout()
                # Wake as soon as a trial ends (its slot refills at once), else after `poll`.
                sentinels = [r.process.sentinel for r in self.running.values()]
                multiprocessing.connection.wait(sentinels, timeout=self.options.poll)
        except (StoreLost, NoSpace) as exc:  # no trial can record anything: end them, say why
            self._abandon(exc)
            raise
        finally:
            self._dismiss_standby()
            self._release_leases()
            if self.scheduler is not None:  # the next agent need not wait for it to lapse
                with contextlib.suppress(SweeperError):
                    self.scheduler.release()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.fault is not None:
            raise self.fault
        if self.scheduler_fault is not None:
            raise self.scheduler_fault
        if self.stop_reason:
            self.say(f"agent {self.id} stopped: {self.stop_reason}")
        return 1 if self.failures_in_a_row >= FLAPPING_LIMIT else 0

    def _answered(self) -> None:
        if self._outage:
            self.say(f"[{self.id}] the server answers again")
        self._last_answer, self._outage = time.monotonic(), False

    def _wait_out(self, fault: Unreachable) -> None:
        """The server did not answer: running trials go on (they train, and wandb-core keeps
        retrying their uploads), and the agent asks again after a backoff that doubles from
        the heartbeat interval to OUTAGE_BACKOFF s. Past `outage_limit` s since its last
        answer, the agent gives up (`_end_on`)."""
        now = time.monotonic()
        silent = now - self._last_answer
        if silent >= self.options.outage_limit:
            limit = self.options.outage_limit
            why = f"{fault}; no answer for {silent:.0f} s (--outage-limit {limit:g})"
            self._end_on(Unreachable(why))
            return
        if not self._outage:
            self.say(f"[{self.id}] {fault}; trials keep running, retrying")
            self._outage, self._backoff = True, self.options.heartbeat_interval
        else:
            self._backoff = min(2 * self._backoff, OUTAGE_BACKOFF)
        left = self.options.outage_limit - silent
        self._retry_at = now + min(self._backoff, left)

    def _end_on(self, fault: SweeperError) -> None:
        """A server fault the agent cannot wait out: it claims nothing more, its running trials
        end as W&B's rule for the fault says, and then `run` raises `fault` (one line, exit 2).

        - A deleted sweep (SweepGone): running trials finish and record their end; the agent
          asks the server nothing more. W&B's own agents do that (wandb/wandb_agent.py and
          wandb/agents/pyagent.py, `_heartbeat_commands` on SweepNotFoundError).
        - Any other (a refused API key; no answer past `outage_limit`): nothing the trials
          log reaches the server, nor would a stop, so they are preempted now: each ends at
          its next epoch boundary with a checkpoint (killed past `grace`), to be resumed.
        """
        if self.fault is not None:
            return
        self.fault, self._retry_at = fault, 0.0
        self.stop_reason = self.stop_reason or str(fault)
        if isinstance(fault, SweepGone):
            if self.running:
                self.say(f"[{self.id}] {fault}; its running trials finish first")
            return
        if self.stop_deadline is not None:  # already preempting them (a signal)
            return
        self.stop_signal = "the agent lost its server"
        self.stop_deadline = time.monotonic() + self.options.grace
        for running in self.running.values():
            if running.process.pid is not None:
                os.kill(running.process.pid, PREEMPT_SIGNAL)

    def _step_scheduler(self, scheduler: SweepScheduler) -> None:
        """Step the sweep's scheduler if this agent holds (or takes) its lease. Its optimizer
        failing (the user's `source`, an engine error) ends the scheduler, as it ends `wandb
        sweep-scheduler`, not the trials: the agent claims nothing more, lets its running
        trials finish, gives the lease up and ends on the error (one line); the sweep stays
        resumable. A store fault is the loop's (`run`)."""
        try:
            scheduler.poll()
        except (Unreachable, StoreLost, NoSpace):
            raise
        except SweeperError as exc:
            self.scheduler = None
            with contextlib.suppress(SweeperError):
                scheduler.release()
            self.scheduler_fault, self.stop_reason = exc, str(exc)
            if self.running:
                self.say(f"[{self.id}] {exc}; its running trials finish first")

    def _abandon(self, fault: StoreLost | NoSpace) -> None:
        """Kill the running trials; on a full disk, requeue them if the store still takes a
        write (else their heartbeat lapses and the next agent requeues them): a full disk
        fails no trial for good."""
        for running in self.running.values():
            _kill(running)
            running.process.join()
            if isinstance(fault, NoSpace):
                with contextlib.suppress(StoreLost, NoSpace):
                    self._settle(running, (RunState.PREEMPTED, f"requeued: {fault}"))
        self.running.clear()

    def _release_leases(self) -> None:
        if self.leases and isinstance(self.backend, LocalBackend):
            with contextlib.suppress(StoreLost, NoSpace):  # then they expire
                self.backend.release_leases(self.id)
            self.leases.clear()

    def _hold(self, slot: str | None) -> bool:
        """Lease `slot` if it is not ours yet; False while another live agent holds it."""
        if slot in self.leases or not isinstance(self.backend, LocalBackend):
            return True
        names, holders = self.backend.lease_slot(
            self.scope,
            self.host,
            gpus_of(slot),
            holder=self.id,
            pid=os.getpid(),
            timeout=self.options.heartbeat_timeout,
            cpu_slots=self.sweep.agents.get("max_parallel"),
        )
        if not names:
            if slot not in self._waiting:
                where = f"GPU {slot}" if slot is not None else "a CPU slot"
                self.say(f"[{self.id}] waiting for {where}: held by {', '.join(sorted(holders))}")
                self._waiting.add(slot)
            return False
        self.leases[slot] = names
        self._waiting.discard(slot)
        return True

    def _finished(self) -> bool:
        if self.stop_reason is not None:
            return True
        if self.options.count is not None and self.started >= self.options.count:
            return True
        # Asked only when idle. W&B's server answers an idle agent of a finished or canceled
        # sweep with `exit` at once, while other agents' runs still finish (or stop) under
        # theirs ("Pause, resume, stop and cancel sweeps"); `is_complete` waits for those.
        if self.backend.sweep(self.sweep.id).state.over:
            return True
        return self.backend.is_complete(self.sweep.id)

    def _on_signal(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.stop_reason is not None:  # a second signal: stop waiting
            self.stop_deadline = 0.0
            return
        self.stop_reason = f"{name}: running trials preempted and requeued"
        self.stop_signal = name
        self.stop_deadline = time.monotonic() + self.options.grace
        self._signal.value = signum  # the trial records what the agent got
        for running in self.running.values():
            if running.process.pid is not None:
                os.kill(running.process.pid, PREEMPT_SIGNAL)

    def _fill_slots(self) -> None:
        if time.monotonic() < self._next_claim:
            return
        for slot in self.slots:
            if slot in self.running:
                continue
            if self.options.count is not None and self.started >= self.options.count:
                return
            if not self._hold(slot):  # another agent's slot: ask again in a second
                self._next_claim = time.monotonic() + 1.0
                continue
            name = self.id if slot is None else f"{self.id}/{slot}"  # a GPU slot is named
            claim = self.backend.claim(self.sweep.id, name, self.options.heartbeat_timeout)
            if claim is None:  # nothing to hand out now: ask again in a second, not every poll
                self._next_claim = time.monotonic() + 1.0
                self._say_paused()
                return
            standby = self._take_standby()
            standby.sender.send((claim, slot))
            standby.sender.close()
            self.running[slot] = Running(claim, slot, standby.process)
            self.started += 1
            where = f"GPU {slot}" if slot is not None else "CPU"
            how = "resumed" if claim.resumed else f"attempt {claim.attempt}"
            self.say(f"[{self.id}] trial {claim.run_id} ({how}) on {where}")
        if self.options.count is None or self.started < self.options.count:
            self._standby = self._standby or self._fork_standby()

    def _say_paused(self) -> None:
        """Say once per pause that the sweep is paused: the agent waits for a resume, as W&B's
        agents wait (https://docs.wandb.ai/guides/sweeps/pause-resume-and-cancel-sweeps/)."""
        paused = self.backend.sweep(self.sweep.id).state == SweepState.PAUSED
        if paused and not self._paused:
            self.say(f"[{self.id}] sweep {self.sweep.id} is paused: waiting for a resume")
        self._paused = paused

    def _take_standby(self) -> Standby:
        standby, self._standby = self._standby, None
        if standby is not None and standby.process.is_alive():
            return standby
        if standby is not None:  # killed while it waited (from outside): replace it
            self._dismiss(standby)
        return self._fork_standby()

    def _fork_standby(self) -> Standby:
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_standby_main,
            args=(
                receiver,
                sender,
                self.backend,
                self.sweep,
                self.options,
                self.threads,
                self._signal,
            ),
            name="trial-standby",
        )
        process.start()
        receiver.close()
        return Standby(process, sender)

    def _dismiss_standby(self) -> None:
        if self._standby is not None:
            self._dismiss(self._standby)
            self._standby = None

    @staticmethod
    def _dismiss(standby: Standby) -> None:
        standby.sender.close()  # it reads end-of-file and exits
        standby.process.join()

    def _reap(self) -> None:
        for slot, running in list(self.running.items()):
            if running.process.is_alive():
                continue
            running.process.join()
            del self.running[slot]
            self._record_exit(running)

    def _settle(
        self, running: Running, verdict: tuple[RunState, str] | None
    ) -> tuple[RunState, str | None]:
        """The trial's end, recorded through a sink on this process's own connection."""
        sink = self.backend.open_sink(running.claim, self.sweep, fork=False)
        try:
            return exit_record(sink, running.process.exitcode, verdict)
        finally:
            sink.close()

    def _record_exit(self, running: Running) -> None:
        claim = running.claim
        verdict = running.verdict
        full = running.process.exitcode == NO_SPACE_EXIT and verdict is None
        if full:  # what the child could not record itself
            verdict = (RunState.PREEMPTED, "requeued: no space left on device")
        state, error = self._settle(running, verdict)
        if state != RunState.PREEMPTED and self._superseded(claim):
            self.say(
                f"[{self.id}] trial {claim.run_id} (attempt {claim.attempt}) lost: its heartbeat"
                " lapsed and it was requeued; this attempt's late writes were refused"
            )
            return
        if full:
            self.say(f"[{self.id}] trial {claim.run_id} {state}: {error or 'requeued'}")
            raise NoSpace((error or "").removeprefix("requeued: ") or "no space left on device")
        if state in (RunState.FAILED, RunState.CRASHED):
            self.failures_in_a_row += 1
            first_line = error.splitlines()[0] if error else "no reason"
            self.say(f"[{self.id}] trial {claim.run_id} {state}: {first_line}")
            if self.failures_in_a_row >= FLAPPING_LIMIT and self.stop_reason is None:
                self.stop_reason = (
                    f"{FLAPPING_LIMIT} trials failed in a row with no success; last: {first_line}"
                )
        elif state.done:
            self.failures_in_a_row = 0
            self.say(f"[{self.id}] trial {claim.run_id} {state}")
        elif state == RunState.PREEMPTED:
            self.say(f"[{self.id}] trial {claim.run_id} preempted: {error or 'requeued'}")

    def _superseded(self, claim: Claim) -> bool:
        """A later attempt of the run holds the record (this one lapsed, say behind a cut link,
        and was requeued): what this attempt wrote late was fenced off, and its end, whatever
        the record says, is not its own. Local stores only (W&B's server keeps one attempt)."""
        if not isinstance(self.backend, LocalBackend):
            return False
        return int(self.backend.run(claim.run_id)["attempt"]) != claim.attempt

    def _heartbeat(self) -> None:
        if self.leases and isinstance(self.backend, LocalBackend):
            held = self.backend.renew_leases(self.id, self.options.heartbeat_timeout)
            for slot, names in list(self.leases.items()):
                if set(names) <= held:
                    continue
                # It lapsed (this agent stalled) and another agent took it: give it up whole.
                self.backend.release_leases(self.id, names)
                del self.leases[slot]
                running = self.running.get(slot)
                if running is not None and running.verdict is None:
                    running.verdict = (
                        RunState.PREEMPTED,
                        "requeued: the agent's slot lease lapsed",
                    )
                    _kill(running)
        for running in self.running.values():
            beat = self.backend.heartbeat(running.claim.run_id, running.claim.attempt)
            if beat == "lost":  # requeued elsewhere (we lapsed): this copy must not go on
                _kill(running)
            elif beat == "stop" and running.process.pid is not None:
                os.kill(running.process.pid, STOP_SIGNAL)

    def _enforce_grace(self) -> None:
        if self.stop_deadline is None or time.monotonic() < self.stop_deadline:
            return
        for running in self.running.values():
            if running.process.is_alive():
                running.verdict = (RunState.PREEMPTED, f"requeued: {self.stop_signal}")
                _kill(running)

    def _enforce_timeout(self) -> None:
        """A trial past agents.trial_timeout is hung or far too slow: kill it and fail it
        (a gentler signal would only requeue it, to hang again)."""
        limit = self.trial_timeout
        if limit is None:
            return
        for running in self.running.values():
            overdue = time.monotonic() - running.started > limit
            if overdue and running.verdict is None and running.process.is_alive():
                why = f"timed out after {limit:g} s (agents.trial_timeout)"
                running.verdict = (RunState.FAILED, why)
                _kill(running)
