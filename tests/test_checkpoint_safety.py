"""Checkpoints hold tensors and plain types only and load with `torch.load(weights_only=True)`:
a crafted file in a shared store folder is refused, in one line naming it, before any of it runs
(resume, best-epoch weights, `sweeper landscape` and its `--between`)."""

from __future__ import annotations

import os
import pathlib
import pickle
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import probe_spec, start_agent, wait_for
from typer.testing import CliRunner

from sweeper.backends.local import LocalBackend
from sweeper.cli import app
from sweeper.errors import SweeperError
from sweeper.trainers.classify.config import ClassifyConfig, XorConfig
from sweeper.trainers.classify.xor import train as train_xor
from sweeper.trainers.common.best import BestModel
from sweeper.trainers.common.checkpoint import Checkpoint
from sweeper.trainers.logger import MemoryLogger


class Touch:
    """Unpickling this creates the marker file: what a payload would do first."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


class Open:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return open, (str(self.marker), "w")


def _torch_touch(path: Path, marker: Path) -> None:
    """Looks like a checkpoint: real weights, one crafted entry."""
    torch.save({"epoch": 1, "model": {"w": torch.ones(2)}, "score": Touch(marker)}, path)


def _torch_open(path: Path, marker: Path) -> None:
    torch.save(Open(marker), path)


def _bare_pickle(path: Path, marker: Path) -> None:
    """Not even torch.save's zip: torch.load reads a bare pickle too."""
    path.write_bytes(pickle.dumps({"model": Touch(marker)}))


CRAFTED: dict[str, Callable[[Path, Path], None]] = {
    "torch.save, Path.touch inside": _torch_touch,
    "torch.save, open at the top": _torch_open,
    "bare pickle": _bare_pickle,
}


@pytest.fixture(params=list(CRAFTED), ids=list(CRAFTED))
def craft(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Path], Path]:
    """Write a crafted checkpoint at a path; return the marker it would create."""

    def write(path: Path) -> Path:
        marker = tmp_path / f"marker-{path.name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        CRAFTED[request.param](path, marker)
        return marker

    return write


def _old_checkpoint(path: Path) -> None:
    """What sweeper wrote before weights-only checkpoints: RNG states as numpy and tuples."""
    model = torch.nn.Linear(2, 1)
    torch.save(
        {
            "epoch": 1,
            "model": model.state_dict(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.1).state_dict(),
            "scheduler": None,
            "state": {"history": [{"loss": 1.0}]},
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": None,
            },
        },
        path,
    )


# resume and best epoch, in process ----------------------------------------------------------

XOR = XorConfig(epochs=4, model={"depth": 1, "width": 3})


def test_a_crafted_checkpoint_is_refused_on_resume_and_nothing_runs(
    tmp_path: Path, craft: Callable[[Path], Path]
) -> None:
    run_dir = tmp_path / "run"
    marker = craft(run_dir / "checkpoint.pt")
    with pytest.raises(SweeperError) as refused:
        train_xor(XOR, MemoryLogger(run_dir=run_dir))
    assert not marker.exists(), "the payload ran"
    message = str(refused.value)
    assert message.startswith(f"{run_dir / 'checkpoint.pt'}: refused") and "\n" not in message


def test_a_crafted_best_epoch_file_is_refused_and_nothing_runs(
    tmp_path: Path, craft: Callable[[Path], Path]
) -> None:
    marker = craft(tmp_path / "best.pt")
    with pytest.raises(SweeperError, match=r"best\.pt: refused"):
        BestModel(tmp_path)
    assert not marker.exists()
    # A trainer that keeps its best epoch meets it before its first epoch (digits: no files).
    config = ClassifyConfig.model_validate({"epochs": 1, "device": "cpu"})
    with pytest.raises(SweeperError, match=r"best\.pt: refused"):
        from sweeper.trainers.classify.train import train

        train(config, MemoryLogger(run_dir=tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (_old_checkpoint, "refused: it holds more than tensors and plain types"),
        (lambda p: p.write_text("hello\n"), "not a checkpoint"),
        (lambda p: p.write_bytes(b""), "not a checkpoint"),
        (lambda p: torch.save([1, 2], p), "not a checkpoint"),
        (lambda p: torch.save({"w": torch.ones(1)}, p), "not a checkpoint"),
    ],
    ids=["written-before-weights-only", "text", "empty", "a-list", "a-bare-state-dict"],
)
def test_what_is_not_a_checkpoint_fails_the_resume_in_one_line(
    tmp_path: Path, write: Callable[[Path], None], message: str
) -> None:
    path = tmp_path / "checkpoint.pt"
    write(path)
    model = torch.nn.Linear(2, 1)
    with pytest.raises(SweeperError) as refused:
        Checkpoint(tmp_path).restore(model, torch.optim.SGD(model.parameters(), lr=0.1), None)
    assert str(refused.value).startswith(f"{path}: ") and message in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.slow
def test_a_resumed_trial_meets_a_crafted_checkpoint_fails_with_that_reason(
    backend: Any, make_sweep: Any, store: Path, tmp_path: Path
) -> None:
    """The whole way: an agent's trial is preempted, its checkpoint swapped for a crafted one
    in the store folder, and the next agent's attempt fails with the refusal as its reason."""
    sweep_id = make_sweep(probe_spec(search={"x": [3.0]}, base={"epochs": 8, "epoch_seconds": 0.3}))
    agent = start_agent(sweep_id, store)
    wait_for(lambda: len(backend.history(list(backend.runs(sweep_id)["run_id"]))) >= 2)
    os.kill(agent.pid, signal.SIGTERM)
    out, _ = agent.communicate(timeout=60)
    assert agent.returncode == 0, out
    (run_id,) = backend.runs(sweep_id)["run_id"]
    assert backend.run(run_id)["state"] == "preempted"
    checkpoint = backend.run_dir(run_id) / "checkpoint.pt"
    marker = tmp_path / "marker"
    _torch_touch(checkpoint, marker)

    again = start_agent(sweep_id, store)
    out, _ = again.communicate(timeout=60)
    assert not marker.exists(), "the payload ran in the trial"
    run = backend.run(run_id)
    assert (run["state"], run["attempt"]) == ("failed", 2), out
    assert f"{checkpoint}: refused" in run["error"].splitlines()[0]


# round trips ----------------------------------------------------------------------------------


def _loads_weights_only(run_dir: Path) -> list[str]:
    names = []
    for name in ("checkpoint.pt", "best.pt"):
        if (run_dir / name).exists():
            torch.load(run_dir / name, map_location="cpu", weights_only=True)
            names.append(name)
    return names


def test_rng_states_survive_the_round_trip_exactly(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # a cached gaussian is part of numpy's state
    Checkpoint(tmp_path).save(1, model, optimizer, None, {"history": [{"loss": 0.5}]})
    draws = (random.random(), np.random.normal(), np.random.rand(3), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    epoch, state = Checkpoint(tmp_path).restore(model, optimizer, None)
    assert (epoch, state) == (1, {"history": [{"loss": 0.5}]})
    again = (random.random(), np.random.normal(), np.random.rand(3), torch.rand(3))
    assert draws[:2] == again[:2]
    np.testing.assert_array_equal(draws[2], again[2])
    assert torch.equal(draws[3], again[3])


def test_a_checkpoint_that_could_not_be_loaded_back_is_not_written(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for value, kind in [
        (tmp_path, "PosixPath"),
        (np.zeros(2), "ndarray"),
        (np.float64(1), "float64"),
    ]:
        with pytest.raises(TypeError, match=rf"state\.extra\[0\]: {kind} "):
            Checkpoint(tmp_path).save(1, model, optimizer, None, {"extra": [value]})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # trains an xor model twice (stopped, then resumed)
def test_xor_checkpoints_load_weights_only_and_resume_exactly(tmp_path: Path) -> None:
    config = XorConfig(epochs=6, model={"depth": 1, "width": 3}, sched={"name": "step"})
    straight = train_xor(config, MemoryLogger())
    train_xor(config, MemoryLogger(run_dir=tmp_path, stop_after=3))
    assert _loads_weights_only(tmp_path) == ["checkpoint.pt"]
    resumed = MemoryLogger(run_dir=tmp_path)
    assert train_xor(config, resumed) == straight
    assert [h["_step"] for h in resumed.history] == [3, 4, 5]


@pytest.mark.slow  # trains a classifier twice (stopped, then resumed)
def test_classify_checkpoints_load_weights_only_and_resume(tmp_path: Path) -> None:
    from sweeper.trainers.classify.train import train

    config = ClassifyConfig.model_validate(
        {"epochs": 2, "device": "cpu", "sched": {"name": "cosine"}, "optim": {"name": "adam"}}
    )
    straight = train(config, MemoryLogger())
    train(config, MemoryLogger(run_dir=tmp_path, stop_after=1))
    assert _loads_weights_only(tmp_path) == ["checkpoint.pt", "best.pt"]
    resumed = MemoryLogger(run_dir=tmp_path)
    summary = train(config, resumed)
    assert [h["_step"] for h in resumed.history] == [1]
    assert summary["val_loss"] == pytest.approx(straight["val_loss"], rel=1e-6)


@pytest.mark.slow
def test_reid_checkpoints_load_weights_only_and_resume(tmp_path: Path) -> None:
    from sweeper.trainers.reid.config import ReidConfig
    from sweeper.trainers.reid.train import train

    config = ReidConfig.model_validate(
        {
            "epochs": 2,
            "model": {"arch": "resnet18"},
            "data": {
                "root": str(tmp_path / "veri"),
                "synthetic": True,
                "image_size": [32, 32],
                "batch_size": 16,
                "workers": 0,
            },
        }
    )
    run_dir = tmp_path / "run"
    train(config, MemoryLogger(run_dir=run_dir, stop_after=1))
    assert _loads_weights_only(run_dir) == ["checkpoint.pt", "best.pt"]
    resumed = MemoryLogger(run_dir=run_dir)
    summary = train(config, resumed)
    assert [h["_step"] for h in resumed.history] == [1]
    assert summary["epochs_done"] == 2


# sweeper landscape ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalBackend, str]:
    """One `sweeper train xor` run, as a user makes it; landscape reads its checkpoint.pt."""
    cwd = tmp_path_factory.mktemp("xor")
    result = subprocess.run(
        [sys.executable, "-m", "sweeper", "train", "xor", "--set", "epochs=2"],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    backend = LocalBackend(cwd / ".sweeper" / "sweeper.db", create=False)
    return backend, result.stdout.split()[1]  # "run <id> (xor) in <store>"


def _landscape(backend: LocalBackend, *args: str) -> Any:
    return CliRunner().invoke(app, ["landscape", *args, "--store", str(backend.path)])


@pytest.mark.slow  # uses an xor run trained by a real launch
def test_landscape_between_a_crafted_file_is_one_line_exit_2_and_nothing_runs(
    xor_run: tuple[LocalBackend, str], tmp_path: Path, craft: Callable[[Path], Path]
) -> None:
    backend, run_id = xor_run
    evil = tmp_path / "evil.pt"
    marker = craft(evil)
    result = _landscape(backend, run_id, "--steps", "2", "--dims", "1", "--between", str(evil))
    assert result.exit_code == 2, result.output
    assert not marker.exists(), "the payload ran"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {evil}: refused"), result.stderr


@pytest.mark.slow  # uses an xor run trained by a real launch
def test_landscape_of_a_run_whose_checkpoint_was_swapped_refuses_it(
    xor_run: tuple[LocalBackend, str], tmp_path: Path, craft: Callable[[Path], Path]
) -> None:
    backend, run_id = xor_run
    swapped = backend.create_run({}, agent="test").run_id
    backend.record_meta(swapped, 1, backend.run(run_id)["meta"])
    for name in ("checkpoint.pt", "best.pt"):  # the run's own file, then the preferred one
        marker = craft(backend.run_dir(swapped) / name)
        result = _landscape(backend, swapped, "--steps", "2", "--dims", "1")
        assert result.exit_code == 2, result.output
        assert not marker.exists(), f"the payload in {name} ran"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{name}: refused" in lines[0], result.stderr


@pytest.mark.slow
def test_landscape_reads_a_real_xor_checkpoint_and_refuses_evil_as_a_user_sees_it(
    xor_run: tuple[LocalBackend, str], tmp_path: Path
) -> None:
    backend, run_id = xor_run
    assert _loads_weights_only(backend.run_dir(run_id)) == ["checkpoint.pt"]
    result = _landscape(backend, run_id, "--steps", "2", "--dims", "1")
    assert result.exit_code == 0, result.output
    evil, marker = tmp_path / "evil.pt", tmp_path / "marker"
    _torch_touch(evil, marker)
    args = [run_id, "--between", str(evil), "--store", str(backend.path)]
    result = subprocess.run(
        [sys.executable, "-m", "sweeper", "landscape", *args], capture_output=True, text=True
    )
    assert result.returncode == 2 and not marker.exists()
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(f"error: {evil}: refused") and "Traceback" not in result.stderr


# pretrained weights a spec names --------------------------------------------------------------


def _weights_loaders() -> dict[str, Callable[[Path], None]]:
    from sweeper.trainers.classify.models.tv import load_matching
    from sweeper.trainers.reid.models.backbones import load_pretrained
    from sweeper.trainers.segment.models import load_encoder_weights

    net = torch.nn.Linear(2, 1)
    return {
        "model.weights": lambda path: load_matching(net, path),
        "model.pretrained": lambda path: load_pretrained(net, str(path)),
        "model.encoder_weights": lambda path: load_encoder_weights(net, path),
    }


@pytest.mark.parametrize("field", ["model.weights", "model.pretrained", "model.encoder_weights"])
def test_crafted_pretrained_weights_are_refused_in_one_line_naming_the_field(
    tmp_path: Path, craft: Callable[[Path], Path], field: str
) -> None:
    path = tmp_path / "weights.pth"
    marker = craft(path)
    with pytest.raises(SweeperError) as refused:
        _weights_loaders()[field](path)
    assert not marker.exists(), "the payload ran"
    message = str(refused.value)
    assert message.startswith(f"{field} {str(path)!r}: refused") and "\n" not in message


@pytest.mark.parametrize("field", ["model.weights", "model.pretrained", "model.encoder_weights"])
def test_pretrained_weights_that_are_no_state_dict_are_one_line(tmp_path: Path, field: str) -> None:
    for write in (lambda p: p.write_text("hello\n"), lambda p: torch.save([1, 2], p)):
        path = tmp_path / "weights.pth"
        write(path)
        with pytest.raises(SweeperError, match=rf"^{field} .*weights\.pth': not a") as refused:
            _weights_loaders()[field](path)
        assert "\n" not in str(refused.value)
