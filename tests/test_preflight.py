"""Issue 19 §3 and §6: what a trial needs is checked before any trial starts, and `--estimate`
says what a launch will cost from a real probe trial on this machine."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import write_spec
from helpers import sweeper

from sweeper.errors import SpecError
from sweeper.spec.load import load_spec
from sweeper.spec.preflight import preflight

ROOT = Path(__file__).parents[1]
SWEEPS = ROOT / "sweeps"


def refusal(path: Path, *sets: str, smoke: bool = False) -> str:
    """The one line preflight refuses with (the test fails when it accepts)."""
    overrides = dict(s.split("=", 1) for s in sets)
    with pytest.raises(SpecError) as caught:
        preflight(load_spec(path, overrides, smoke=smoke))
    return str(caught.value)


def spec_file(tmp_path: Path, trainer: str, base: dict[str, Any], search: dict[str, Any]) -> Path:
    metric = {"classify": "val_acc", "reid": "mAP", "segment": "val_dice"}[trainer]
    return write_spec(
        tmp_path,
        {
            "name": "pf",
            "trainer": trainer,
            "metric": {"name": metric, "goal": "maximize"},
            "base": base,
            "search": search,
        },
    )


@pytest.mark.slow  # sweeper validate and launch in child processes
def test_validate_and_launch_refuse_cifar10_without_data_and_smoke_is_ok(tmp_path: Path) -> None:
    spec = str(SWEEPS / "cifar10-lenet5.yaml")
    for command in (["validate", spec], ["launch", spec]):
        done = sweeper(*command, cwd=tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr
        assert "base.data.root: data has no CIFAR-10 files" in lines[0]
        assert "data.download: true" in lines[0]
    assert os.listdir(tmp_path) == []  # no store, no data, nothing
    done = sweeper("validate", spec, "--smoke", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert os.listdir(tmp_path) == []  # the generator's target is only checked, not written


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar10-lenet5", "data has no CIFAR-10 files"),
        ("cifar10-two-branch", "data has no CIFAR-10 files"),
        ("mnist-mlp-vs-cnn", "data has no MNIST files"),
        ("lenet-alexnet-binary", "data/binary does not exist"),
        ("veri-backbones", "data/VeRi does not exist"),
        ("veri-backbones-pareto", "data/VeRi does not exist"),
        ("veri-staged", "data/VeRi does not exist"),
        ("xray-unet", "data/xray does not exist"),
        ("xray-unet-log", "data/xray does not exist"),
    ],
)
def test_every_ready_spec_names_its_missing_data_and_runs_with_smoke(
    name: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = SWEEPS / f"{name}.yaml"
    assert f"base.data.root: {expected}" in refusal(path)
    preflight(load_spec(path, smoke=True))
    assert os.listdir(tmp_path) == []


def test_torchvision_layouts_need_their_files_not_a_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    mnist = spec_file(
        tmp_path, "classify", {"data": {"name": "mnist", "root": "tv"}}, {"seed": [0]}
    )
    assert "tv/MNIST/raw/train-images-idx3-ubyte is missing" in refusal(mnist)
    preflight(load_spec(mnist, {"data.download": True}))  # torchvision fetches it there
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3"):
        (raw / f"{stem}-ubyte").write_bytes(b"")
    assert "t10k-labels-idx1-ubyte is missing" in refusal(mnist)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"")
    preflight(load_spec(mnist))
    cifar = spec_file(
        tmp_path, "classify", {"data": {"name": "cifar10", "root": "tv"}}, {"seed": [0]}
    )
    assert "tv/cifar-10-batches-py/data_batch_1 is missing" in refusal(cifar)
    batches = tmp_path / "tv" / "cifar-10-batches-py"
    batches.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (batches / name).write_bytes(b"")
    preflight(load_spec(cifar))


def test_generated_layouts_pass_and_a_broken_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sweeper.trainers.classify.data.synthetic import write_shapes
    from sweeper.trainers.reid.data.synthetic import write_veri
    from sweeper.trainers.segment.data.synthetic import write_xray

    monkeypatch.chdir(tmp_path)
    cases = [
        ("classify", {"data": {"name": "folder", "root": "shapes"}}, write_shapes, "train/circle"),
        ("reid", {"data": {"root": "veri"}}, write_veri, "image_query"),
        ("segment", {"data": {"root": "xray"}}, write_xray, "images"),
    ]
    for trainer, base, write, broken in cases:
        spec = spec_file(tmp_path, trainer, base, {"seed": [0]})
        root = tmp_path / base["data"]["root"]
        write(root)
        preflight(load_spec(spec))
        for file in (root / broken).iterdir():
            file.unlink()
        line = refusal(spec)
        assert "base.data.root: " in line, line


def test_a_swept_data_field_is_checked_at_every_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sweeper.trainers.classify.data.synthetic import write_shapes

    monkeypatch.chdir(tmp_path)
    write_shapes(tmp_path / "good")
    spec = spec_file(
        tmp_path,
        "classify",
        {"data": {"name": "folder"}},
        {"data.root": ["good", "good", "missing"]},
    )
    assert "search.data.root[2]: missing does not exist" in refusal(spec)
    staged = write_spec(
        tmp_path,
        {
            "name": "pf",
            "trainer": "classify",
            "metric": {"name": "val_acc", "goal": "maximize"},
            "base": {"data": {"name": "folder", "root": "good"}},
            "stages": [
                {"name": "a", "search": {"seed": [0, 1]}},
                {"name": "b", "search": {"data.name": ["folder", "mnist"]}},
            ],
        },
    )
    line = refusal(staged)
    assert "base.data.root: good has no MNIST files" in line and "data.name='mnist'" in line


@pytest.mark.parametrize(
    ("trainer", "base", "field"),
    [
        (
            "classify",
            {
                "model": {"arch": "resnet18", "weights": "w.pt"},
                "data": {"channels": 3, "image_size": [32, 32]},
            },
            "model.weights",
        ),
        (
            "reid",
            {"model": {"pretrained": "w.pt"}, "data": {"synthetic": True}},
            "model.pretrained",
        ),
        (
            "segment",
            {"model": {"encoder_weights": "w.pt"}, "data": {"synthetic": True}},
            "model.encoder_weights",
        ),
    ],
)
def test_a_missing_weights_file_is_named(
    trainer: str, base: dict[str, Any], field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = spec_file(tmp_path, trainer, base, {"seed": [0]})
    assert f"base.{field}: w.pt is not a file" in refusal(spec)
    section, name = field.split(".")
    unswept = {**base, section: {k: v for k, v in base[section].items() if k != name}}
    swept = spec_file(tmp_path, trainer, unswept, {field: [None, "w.pt"]})
    assert f"search.{field}[1]: w.pt is not a file" in refusal(swept)


def test_smoke_needs_a_target_the_generator_can_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain-file").write_text("")
    for trainer, base in (
        ("classify", {"data": {"name": "folder", "synthetic": True}}),
        ("reid", {"data": {"synthetic": True}}),
        ("segment", {"data": {"synthetic": True}}),
    ):
        spec = spec_file(tmp_path, trainer, base, {"seed": [0]})
        line = refusal(spec, "data.root=plain-file/set")
        assert "base.data.root: cannot create plain-file/set: plain-file is a file" in line
        assert "is a file, not a folder" in refusal(spec, "data.root=plain-file")
        preflight(load_spec(spec, {"data.root": "fresh/set"}))
    assert sorted(os.listdir(tmp_path)) == ["plain-file", "spec.yaml"]


@pytest.mark.slow  # the estimate's probe trains in a child process (imports torch)
def test_launch_estimate_runs_no_sweep_and_says_unbounded(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        {
            "name": "est",
            "trainer": "xor",
            "method": "random",
            "metric": {"name": "val_acc", "goal": "maximize"},
            "base": {"epochs": 3},
            "stages": [
                {"name": "grid", "method": "grid", "search": {"model.width": [1, 2]}},
                {"name": "open", "search": {"optim.lr": {"min": 0.01, "max": 0.1}}},
            ],
        },
    )
    done = sweeper("launch", str(spec), "--estimate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"a probe ran [1-3] of 3 epochs of the first configuration on cpu", out)
    assert "  grid: 2 trials x " in out and "CPU core-hours" in out
    assert "  open: unbounded (no run_cap)" in out
    assert "assumes: 1 agent" in out
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]  # no store: nothing ran


@pytest.mark.slow
def test_estimate_is_within_a_factor_of_two_of_the_real_trials(tmp_path: Path) -> None:
    """The probe is measured here, on this machine; the real launch runs right after it."""
    from sweeper.analysis.estimate import estimate
    from sweeper.backends.local import LocalBackend

    spec = write_spec(
        tmp_path,
        {
            "name": "est",
            "trainer": "xor",
            "metric": {"name": "val_acc", "goal": "maximize"},
            "base": {"epochs": 200},  # seconds, not a fraction: start-up noise would dominate
            "search": {"model.width": [2, 3]},
            "agents": {"cpus_per_trial": 1},
        },
    )
    predicted = estimate(load_spec(spec), agents=1, threads=1, gpu_slot=None)
    (stage,) = predicted.stages
    assert stage.trials == 2 and stage.epochs == 200
    done = sweeper(
        "launch", str(spec), "--agents", "1", "--wandb", "disabled", "--store", "db",
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    backend = LocalBackend(tmp_path / "db", create=False, readonly=True)
    (sweep,) = backend.made_from(str(spec), "est")
    real = float(backend.runs(sweep.id)["runtime"].mean())
    assert 0.5 <= stage.trial_s / real <= 2, (stage.trial_s, real)
