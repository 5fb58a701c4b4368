"""A plain W&B sweep config and the user's own wandb program, run offline by local agents.

Real parts throughout: the user's program is a real Python process calling the real wandb
client in offline mode; its parameters reach it through WANDB_SWEEP_PARAM_PATH and the
command's macros, and what it logs comes back from its offline run file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import start_agent, wait_for
from helpers import sweeper as _sweeper
from wandb_server import WandbServer

from sweeper.backends.local import LocalBackend
from sweeper.errors import SpecError
from sweeper.spec.load import load_sweep_file
from sweeper.spec.plain import PlainSweep

EXAMPLE = Path(__file__).parents[1] / "sweeps" / "examples" / "wandb-plain" / "sweep.yaml"

MODES = """
import os, signal, sys, time, wandb
args = dict(item[2:].split("=", 1) for item in sys.argv[1:])  # ${args}: --name=value
mode = args["mode"]
if mode == "no_init":
    sys.exit(0)
run = wandb.init()
assert wandb.config["mode"] == mode and wandb.config["scale"] == 2, dict(wandb.config)
if mode == "crash":
    raise RuntimeError("boom in the user's program")
if mode == "killed":  # as the OOM killer would, once the run is under way
    wandb.log({"acc": 0.1})
    time.sleep(1.5)  # past the flush interval: the run file holds the run
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "no_metric":
    wandb.log({"other": 1.0})
else:
    for epoch in range(2):
        wandb.log({"acc": 0.25 * (epoch + 1) * int(args["scale"]), "epoch": epoch})
run.finish()
"""

SLOW = """
import os, signal, sys, time, wandb
def on_term(signum, frame):
    open("term-" + os.environ["WANDB_RUN_ID"], "w").write("SIGTERM")
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
open("pid-" + os.environ["WANDB_RUN_ID"], "w").write(str(os.getpid()))
run = wandb.init()
quality = run.config.get("quality", 0.0)
pause = 0.0 if quality > 0.5 else float(os.environ.get("STEP_SLEEP", "0.3"))
for epoch in range(run.config.epochs):
    wandb.log({"acc": quality + epoch / 1000})
    time.sleep(pause)
run.finish()
"""


def _plain(folder: Path, source: str, **config: Any) -> Path:
    """sweep.yaml (program: train.py, unless `config` says otherwise) and train.py."""
    (folder / "train.py").write_text(source)
    sweep = {
        "name": "mine",
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        **config,
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def _create(backend: LocalBackend, path: Path) -> str:
    loaded = load_sweep_file(path)
    assert isinstance(loaded, PlainSweep)
    return backend.create_sweep(
        loaded.config,
        trainer="",
        spec=loaded.record(),
        spec_hash=loaded.hash,
        spec_path=loaded.path,
    )


@pytest.mark.slow  # launch, two agents and sync in child processes
def test_the_example_runs_end_to_end_offline_with_two_agents(
    store: Path, wandb_server: WandbServer
) -> None:
    """`sweeper launch` on the unchanged W&B sweep config, then `runs`, `report` and `sync`."""
    launched = _sweeper("launch", str(EXAMPLE), "--agents", "2")
    assert launched.returncode == 0, launched.stdout + launched.stderr

    db = LocalBackend(store, create=False)
    [sweep] = db.sweeps()
    assert sweep.is_command and sweep.name == "digits-logreg"
    runs = db.runs(sweep.id)
    assert len(runs) == 4 and set(runs["state"]) == {"finished"}, runs[["state", "error"]]
    grid = {(r["config.lr"], r["config.batch_size"]) for r in runs.to_dict("records")}
    assert grid == {(0.05, 32), (0.05, 128), (0.5, 32), (0.5, 128)}
    assert len(set(runs["agent"].str.split("/").str[0])) == 2, "both agents ran trials"
    assert runs["summary.val_acc"].between(0.5, 1.0).all()  # really trained: chance is 0.1
    assert len(set(runs["summary.val_acc"].round(6))) > 1  # the parameters reached the program
    for run_id in runs["run_id"]:
        history = db.history([run_id])
        assert list(history["_step"]) == [0, 1] and list(history["epoch"]) == [0, 1]
        meta = db.run(run_id)["meta"]
        assert meta["config"]["epochs"] == 2 and meta["command"][2] == "train.py"
    best = runs.loc[runs["summary.val_acc"].idxmax()]
    assert f"best run {best['run_id']}" in launched.stdout
    assert not (EXAMPLE.parent / "wandb").exists(), "the example folder stays clean"

    status = _sweeper("status", sweep.id)
    assert status.returncode == 0 and "progress: 4/4 done (4 finished)" in status.stdout

    report = _sweeper("report", sweep.id, "-o", "report", "--format", "md")
    assert report.returncode == 0, report.stderr
    assert "digits-logreg" in Path("report/report.md").read_text()

    synced = _sweeper("sync", sweep.id, "--entity", "standin")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "4 uploaded, 0 already there" in " ".join(synced.stdout.split())
    uploaded = {run.id: run for run in wandb_server.runs.values()}
    assert set(uploaded) == set(runs["run_id"])
    for row in runs.to_dict("records"):
        assert uploaded[row["run_id"]].summary["val_acc"] == pytest.approx(row["summary.val_acc"])
        assert uploaded[row["run_id"]].config["lr"] == row["config.lr"]
    db.close()


@pytest.mark.slow  # five programs run as child processes, each importing wandb
def test_each_way_a_program_can_go_wrong_fails_with_its_reason(
    backend: LocalBackend, tmp_path: Path
) -> None:
    from sweeper.agent.loop import Agent, AgentOptions

    modes = ["ok", "no_init", "no_metric", "crash", "killed"]
    path = _plain(tmp_path, MODES, parameters={"mode": {"values": modes}, "scale": {"value": 2}})
    sweep_id = _create(backend, path)

    agent = Agent(AgentOptions(sweep_id, store=backend.path, gpus=["0", "1"], poll=0.05))
    assert agent.run() == 0

    runs = {r["config.mode"]: r for r in backend.runs(sweep_id).to_dict("records")}
    assert runs["ok"]["state"] == "finished" and runs["ok"]["summary.acc"] == 1.0
    assert [h["acc"] for h in backend.history([runs["ok"]["run_id"]]).to_dict("records")] == [
        0.5,
        1.0,
    ]
    first = {mode: runs[mode]["error"].splitlines()[0] for mode in modes[1:]}
    assert first["no_init"].startswith("the program never called wandb.init")
    assert first["no_metric"] == "the program never logged the metric 'acc' (it logged: other)"
    assert first["crash"] == "the program failed (exit code 1)"
    assert "RuntimeError: boom in the user's program" in runs["crash"]["error"]
    assert first["killed"] == "the program failed (killed by SIGKILL)"
    assert {runs[m]["state"] for m in modes[1:]} == {"failed"}


def test_a_missing_variable_or_program_fails_the_trial_naming_it(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """What only the agent's machine can tell: its environment, and its copy of the program."""
    from sweeper.agent.loop import Agent, AgentOptions

    command = ["${env}", "${interpreter}", "${program}", "--token=${envvar:SWEEPER_NOT_SET}"]
    path = _plain(tmp_path, MODES, command=command, parameters={"mode": {"value": "ok"}})
    no_variable = _create(backend, path)
    Agent(AgentOptions(no_variable, store=backend.path, count=1, poll=0.05)).run()
    path = _plain(tmp_path, MODES, parameters={"mode": {"value": "ok"}})
    no_program = _create(backend, path)
    (tmp_path / "train.py").unlink()
    Agent(AgentOptions(no_program, store=backend.path, count=1, poll=0.05)).run()

    errors = [backend.runs(s).to_dict("records")[0]["error"] for s in (no_variable, no_program)]
    assert errors == [
        "command: ${envvar:SWEEPER_NOT_SET}: the environment variable SWEEPER_NOT_SET is not set",
        f"program: train.py not found (looked in {tmp_path})",
    ]


@pytest.mark.slow  # three programs run as child processes, one stopped by hyperband
def test_hyperband_stops_the_running_program(backend: LocalBackend, tmp_path: Path) -> None:
    """Two good runs finish; the poor third, judged by W&B's hyperband engine on the history
    read from its run file while it runs, gets SIGTERM and ends `stopped` at the band."""
    from sweeper.agent.loop import Agent, AgentOptions

    path = _plain(
        tmp_path,
        SLOW,
        parameters={"quality": {"values": [1.0, 0.9, 0.0]}, "epochs": {"value": 40}},
        early_terminate={"type": "hyperband", "min_iter": 2, "eta": 2},
    )
    sweep_id = _create(backend, path)

    assert Agent(AgentOptions(sweep_id, store=backend.path, gpus=[], poll=0.05)).run() == 0

    runs = {r["config.quality"]: r for r in backend.runs(sweep_id).to_dict("records")}
    assert [runs[q]["state"] for q in (1.0, 0.9, 0.0)] == ["finished", "finished", "stopped"]
    poor = runs[0.0]["run_id"]
    assert 3 <= len(backend.history([poor])) < 40
    assert (tmp_path / f"term-{poor}").read_text() == "SIGTERM"
    _assert_gone(int((tmp_path / f"pid-{poor}").read_text()))


@pytest.mark.slow  # real agent processes
def test_a_preempted_program_is_requeued_and_finishes_on_the_next_agent(
    backend: LocalBackend, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _plain(tmp_path, SLOW, parameters={"epochs": {"value": 30}})
    sweep_id = _create(backend, path)
    agent = start_agent(sweep_id, store, "--gpus", "")
    try:
        wait_for(lambda: len(backend.history(_ids(backend, sweep_id))) >= 1, 60, "history")
        [run_id] = _ids(backend, sweep_id)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=60) == 0
    finally:
        agent.kill()
    run = backend.run(run_id)
    assert (run["state"], run["error"]) == ("preempted", "requeued: SIGTERM")
    _assert_gone(int((tmp_path / f"pid-{run_id}").read_text()))

    monkeypatch.setenv("STEP_SLEEP", "0")  # the next agent's program runs at full speed
    second = start_agent(sweep_id, store, "--gpus", "")
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output
    run = backend.run(run_id)
    assert (run["state"], run["attempt"]) == ("finished", 2)
    assert len(backend.history([run_id])) == 30
    assert sorted(p.name for p in backend.run_dir(run_id).glob("attempt-*")) == [
        "attempt-1",
        "attempt-2",
    ]


def _ids(backend: LocalBackend, sweep_id: str) -> list[str]:
    return list(backend.runs(sweep_id)["run_id"])


def _assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _dead(pid: int) -> bool:
    """Gone, or a zombie: killed, waiting only for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"program": "missing.py"}, "sweep.yaml: program: missing.py not found"),
        (
            {"command": ["${interpreter}", "${program}", "${argz}"]},
            r"sweep.yaml: command: unknown macro \$\{argz\}",
        ),
        (
            {"method": "bayes", "metric": None},
            "sweep.yaml: metric: bayes search needs a `metric` to optimise",
        ),
        (
            {"parameters": {"lr": {"min": 0.1, "max": 0.01}}},
            r"sweep.yaml: parameters.lr: `min` \(0.1\) must be below `max` \(0.01\)",
        ),
        (
            {"parameters": {"lr": {"min": 0.01, "max": 0.1}}},
            "sweep.yaml: parameters.lr: grid search needs discrete values",
        ),
        ({"parameters": {"lr": 0.1}}, r"sweep.yaml: parameters.lr: expected \{value: ...\}"),
        ({"method": None}, "the W&B sweep schema rejects the file: 'method' is a required"),
        ({"trainer": "xor"}, "sweep.yaml: program: a sweeper spec runs its `trainer`"),
        ({"program": None}, "sweep.yaml: trainer: missing: a sweeper spec names a `trainer`"),
    ],
)
def test_bad_plain_configs_are_refused_in_one_line(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = _plain(tmp_path, MODES, parameters={"lr": {"values": [0.1]}})
    config = yaml.safe_load(path.read_text())
    config.update(change)
    path.write_text(yaml.safe_dump({k: v for k, v in config.items() if v is not None}))
    with pytest.raises(SpecError, match=message):
        load_sweep_file(path)


@pytest.mark.slow  # sweeper in child processes
def test_the_cli_validates_compiles_and_refuses_plain_configs(tmp_path: Path) -> None:
    ok = _sweeper("validate", str(EXAMPLE))
    assert ok.returncode == 0, ok.stderr
    assert "ok digits-logreg: grid, up to 4 trials (a plain W&B sweep)" in ok.stdout
    compiled = _sweeper("compile", str(EXAMPLE))
    assert compiled.returncode == 0, compiled.stderr
    assert yaml.safe_load(compiled.stdout) == yaml.safe_load(EXAMPLE.read_text())

    path = _plain(tmp_path, MODES, program="nowhere.py", parameters={"x": {"values": [1]}})
    bad = _sweeper("launch", str(path))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: {path}: program: nowhere.py not found (looked in {Path.cwd()} and {tmp_path})"
    ]
    assert not (tmp_path / ".sweeper").exists()


ONLINE = """
import os, sys, wandb
args = dict(item[2:].split("=", 1) for item in sys.argv[1:])  # ${args}: --name=value
run = wandb.init()
assert run.id == os.environ["WANDB_RUN_ID"] and run.config["x"] == int(args["x"])
for epoch in range(2):
    wandb.log({"acc": 0.25 * run.config["x"] * (epoch + 1), "pid": os.getpid()})
run.finish()
"""


@pytest.mark.slow  # a launch on the stand-in W&B server, programs logging online
def test_a_plain_sweep_runs_on_the_wandb_backend_each_program_logging_to_its_run(
    wandb_server: WandbServer, store: Path, tmp_path: Path
) -> None:
    """`wandb agent`'s way on W&B: the server makes each run; the agent starts the program
    with that run's id and sweep (and no run of its own); the program logs to it online."""
    path = _plain(tmp_path, ONLINE, project="plain-e2e", parameters={"x": {"values": [1, 2, 3]}})
    launched = _sweeper("launch", str(path), "--backend", "wandb", "--agents", "2")
    assert launched.returncode == 0, launched.stdout + launched.stderr

    (sweep,) = wandb_server.sweeps.values()
    runs = list({run.id: run for run in wandb_server.runs.values()}.values())
    assert sorted(run.config["x"] for run in runs) == [1, 2, 3], "each point exactly once"
    for run in runs:
        assert (run.state, run.exitcode, run.sweep_id) == ("finished", 0, sweep.id)
        assert [row["acc"] for row in run.history] == [0.25 * run.config["x"] * k for k in (1, 2)]
        program = {row["pid"] for row in run.history}
        assert len(program) == 1 and run.summary["pid"] in program, "one process logged it"
    assert len({run.summary["pid"] for run in runs}) == 3, "a program of its own per trial"
    assert f"best run {max(runs, key=lambda r: r.config['x']).id}" in launched.stdout


@pytest.mark.slow  # real agent processes on the stand-in W&B server
def test_a_program_preempted_on_wandb_is_requeued_by_w_and_b_and_resumed(
    wandb_server: WandbServer, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM to the agent: the program stops, its run is marked preempting and ends
    `preempted` on the server, which hands the same run to the next agent."""
    from sweeper.backends.wandb import WandbBackend

    parameters = {"epochs": {"value": 30}}
    loaded = load_sweep_file(_plain(tmp_path, SLOW, project="plain-e2e", parameters=parameters))
    assert isinstance(loaded, PlainSweep)
    backend = WandbBackend(store, entity="standin", project="plain-e2e")
    path = backend.create_sweep(
        loaded.config, trainer="", spec=loaded.record(), spec_hash=loaded.hash
    )
    command = [sys.executable, "-m", "sweeper", "agent", path, "--backend", "wandb"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: len(wandb_server.runs) > 0, 90, "the trial's run")
    (run,) = {run.id: run for run in wandb_server.runs.values()}.values()
    wait_for(lambda: (tmp_path / f"pid-{run.id}").exists(), 30, "the program")
    time.sleep(2)
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out
    assert (run.state, run.exitcode) == ("preempted", 1), (run.state, out)
    assert (tmp_path / f"term-{run.id}").read_text() == "SIGTERM" and "marked preempting" in out
    _assert_gone(int((tmp_path / f"pid-{run.id}").read_text()))

    monkeypatch.setenv("STEP_SLEEP", "0")
    second = _sweeper("agent", path, "--backend", "wandb")
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"trial {run.id} (resumed)" in second.stdout
    assert len({r.id for r in wandb_server.runs.values()}) == 1, "the same run, not a new one"
    assert run.state == "finished" and run.summary["acc"] == 29 / 1000


NESTED = """
import wandb
run = wandb.init()
wandb.log({"acc": run.config["optim"]["lr"], "epoch": 0})
run.finish()
"""


@pytest.mark.slow  # programs run as child processes, each importing wandb
def test_a_random_sweep_stops_at_its_run_cap_with_nested_parameters(
    backend: LocalBackend, tmp_path: Path
) -> None:
    from sweeper.agent.loop import Agent, AgentOptions

    path = _plain(
        tmp_path,
        NESTED,
        method="random",
        run_cap=3,
        parameters={"optim": {"parameters": {"lr": {"min": 0.1, "max": 0.2}}}},
    )
    sweep_id = _create(backend, path)

    assert Agent(AgentOptions(sweep_id, store=backend.path, gpus=[], poll=0.05)).run() == 0

    runs = backend.runs(sweep_id).to_dict("records")
    assert len(runs) == 3 and {r["state"] for r in runs} == {"finished"}
    for run in runs:  # the program saw its own nested parameter, and logged it back
        assert 0.1 <= run["config.optim.lr"] <= 0.2
        assert run["summary.acc"] == pytest.approx(run["config.optim.lr"])


@pytest.mark.slow  # a program run as a child process until its timeout
def test_a_program_past_the_trial_timeout_is_killed_with_its_trial(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sweeper.agent.loop import Agent, AgentOptions

    monkeypatch.setenv("STEP_SLEEP", "0.5")
    path = _plain(tmp_path, SLOW, parameters={"quality": {"value": 0.0}, "epochs": {"value": 60}})
    sweep_id = _create(backend, path)

    options = AgentOptions(sweep_id, store=backend.path, gpus=[], poll=0.05, trial_timeout=4)
    Agent(options).run()

    (run,) = backend.runs(sweep_id).to_dict("records")
    assert run["state"] == "failed" and run["error"].startswith("timed out after 4 s")
    pid = int((tmp_path / f"pid-{run['run_id']}").read_text())
    wait_for(lambda: _dead(pid), timeout=10)  # the kernel kills it with its trial's child
