"""`sweeper landscape`: filter-normalised directions, the grid evaluated in place, and the
command end to end on a real `sweeper train` run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import sweeper
from torch import nn
from typer.testing import CliRunner

from sweeper.analysis.checkpoints import find_checkpoint, load_weights
from sweeper.analysis.directions import normalise_filters, random_directions, weights
from sweeper.analysis.landscape import Options, landscape
from sweeper.analysis.surface import mean_loss, scan
from sweeper.backends.local import LocalBackend
from sweeper.cli import app
from sweeper.errors import SweeperError
from sweeper.trainers.classify.data.synthetic import write_shapes
from sweeper.trainers.common.rebuild import Rebuilt
from sweeper.trainers.logger import MemoryLogger


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)
    )


# directions -----------------------------------------------------------------------------------


def test_filter_normalisation_matches_a_per_filter_computation() -> None:
    weight, direction = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    normalised = normalise_filters(direction, weight)
    for i in range(5):
        expected = direction[i] / direction[i].norm() * weight[i].norm()
        torch.testing.assert_close(normalised[i], expected)
    # A filter's direction keeps its orientation, only its length changes.
    assert not torch.allclose(normalised, direction)


def test_biasbn_zeroes_one_dimensional_tensors_and_none_keeps_them() -> None:
    params = weights(small_net())
    (kept,) = random_directions(params, seed=3, count=1, ignore="none")
    (ignored,) = random_directions(params, seed=3, count=1, ignore="biasbn")
    for name, weight in params.items():
        if weight.ndim == 1:
            assert torch.count_nonzero(ignored[name]) == 0, name
            # each entry is a filter of one: its size is the weight's
            torch.testing.assert_close(kept[name].abs(), weight.abs())
        else:
            assert torch.count_nonzero(ignored[name]) == weight.numel(), name
            norms = ignored[name].flatten(1).norm(dim=1)
            torch.testing.assert_close(norms, weight.flatten(1).norm(dim=1))


def test_same_seed_same_directions_other_seed_other_ones() -> None:
    params = weights(small_net())
    first, second = random_directions(params, seed=7, count=2)
    again = random_directions(params, seed=7, count=2)
    other = random_directions(params, seed=8, count=2)
    for name in params:
        assert torch.equal(first[name], again[0][name]) and torch.equal(
            second[name], again[1][name]
        )
    assert not torch.equal(first["0.weight"], second["0.weight"])
    assert not torch.equal(first["0.weight"], other[0]["0.weight"])


# the grid -------------------------------------------------------------------------------------


class Quadratic(nn.Module):
    """A model whose loss is ||w - target||^2: its slice along d is a known parabola."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(
            torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]], dtype=torch.float64)
        )


def test_a_slice_of_a_known_quadratic_is_recovered_exactly() -> None:
    model = Quadratic()
    target = torch.tensor([[0.0, 1.0, 2.0], [-1.0, 0.5, 0.0]], dtype=torch.float64)

    def loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        return ((model.w - target) ** 2).sum(), 1

    rebuilt = Rebuilt(model, [None], loss, torch.device("cpu"), "quadratic")
    live = weights(model)
    (direction,) = random_directions(live, seed=0, count=1)
    alphas = np.linspace(-2, 2, 9)
    values = scan(rebuilt, live, [direction], [(a,) for a in alphas])
    w0, d = model.w.detach(), direction["w"]
    c0, c1, c2 = ((w0 - target) ** 2).sum(), 2 * (d * (w0 - target)).sum(), (d**2).sum()
    expected = (c0 + c1 * torch.tensor(alphas) + c2 * torch.tensor(alphas) ** 2).numpy()
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-12)


def test_weights_and_batch_norm_statistics_are_restored_exactly() -> None:
    model = small_net()
    model.train()
    model(torch.randn(8, 3, 6, 6))  # running statistics away from their initial values
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(10, 3, 6, 6), torch.randint(0, 3, (10,))

    def loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        return nn.functional.cross_entropy(model(batch[0]), batch[1], reduction="sum"), 10

    rebuilt = Rebuilt(model, [(x, y)], loss, torch.device("cpu"), "random")
    live = weights(model)
    values = scan(rebuilt, live, random_directions(live, 0, 2), [(0.5, -1.0), (1.0, 1.0)])
    assert len(set(values.tolist())) == 2
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert mean_loss(rebuilt) == scan(rebuilt, live, random_directions(live, 0, 2), [(0, 0)])[0]


# the command, on a real run -------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any]]:
    """One `sweeper train classify` run: a small batch-normed CNN, one epoch, on the generated
    shapes; its wandb mirror offline. (cwd, run id, store run)."""
    cwd = tmp_path_factory.mktemp("landscape")
    write_shapes(cwd / "shapes", seed=0)
    sets = ["data.name=folder", f"data.root={cwd / 'shapes'}", "epochs=1", "model.arch=cnn"]
    sets += ["model.batch_norm=true", "device=cpu"]
    result = sweeper("train", "classify", *(a for s in sets for a in ("--set", s)), cwd=cwd)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.split()[1]  # "run <id> (classify) in <store>"
    backend = LocalBackend(cwd / ".sweeper" / "sweeper.db", create=False)
    return cwd, run_id, backend.run(run_id)


@pytest.mark.slow  # sweeper train and landscape in child processes
def test_cli_writes_the_surface_and_scores_the_run_at_its_own_loss(
    trained: tuple[Path, str, dict[str, Any]],
) -> None:
    cwd, run_id, run = trained
    assert run["meta"]["trainer"] == "classify"
    assert find_checkpoint(cwd / ".sweeper" / "runs" / run_id).name == "best.pt"
    args = ["landscape", run_id, "--steps", "3", "--dims", "2", "--split", "val"]
    result = sweeper(*args, "--range", "-0.5", "0.5", cwd=cwd)
    assert result.returncode == 0, result.stderr
    folder = cwd / ".sweeper" / "runs" / run_id / "landscape"
    names = {"contour.png", "surface.png", "curve.png", "surface.csv", "curve.csv"}
    assert names | {"landscape.npz", "landscape.json"} == {p.name for p in folder.iterdir()}
    grid = np.load(folder / "landscape.npz")
    assert grid["loss"].shape == (3, 3) and np.isfinite(grid["loss"]).all()
    # At alpha = beta = 0 the surface is the run's own validation loss (the trainer computed it).
    val_loss = run["summary"]["val_loss"]
    assert grid["loss"][1, 1] == pytest.approx(val_loss, rel=1e-5)
    assert grid["curve"][1] == pytest.approx(val_loss, rel=1e-5)
    assert json.loads((folder / "landscape.json").read_text())["split"] == "val"
    assert len((folder / "surface.csv").read_text().splitlines()) == 1 + 9
    # The images went into the run's offline wandb mirror, as media.
    mirrors = sorted((cwd / ".sweeper" / "wandb").glob(f"offline-run-*-{run_id}*"))
    assert len(mirrors) == 2, mirrors  # the training run's, and the resumed one
    media = {p.name.split("_")[0] for p in mirrors[-1].glob("files/media/images/landscape/*.png")}
    assert media == {"contour", "surface", "curve"}
    # Same seed, same surface (in process: a second command costs its imports again).
    backend = LocalBackend(cwd / ".sweeper" / "sweeper.db", create=False)
    options = Options(steps=3, low=-0.5, high=0.5, split="val")
    landscape(backend, run_id, options, out=cwd / "again")
    np.testing.assert_array_equal(np.load(cwd / "again" / "landscape.npz")["loss"], grid["loss"])
    landscape(backend, run_id, replace(options, seed=1), out=cwd / "seed1")
    assert not np.array_equal(np.load(cwd / "seed1" / "landscape.npz")["loss"], grid["loss"])


@pytest.mark.slow  # uses the run `sweeper train` makes in a child process
def test_between_runs_from_the_trained_weights_to_another_checkpoint(
    trained: tuple[Path, str, dict[str, Any]],
) -> None:
    cwd, run_id, _ = trained
    backend = LocalBackend(cwd / ".sweeper" / "sweeper.db", create=False)
    checkpoint = backend.run_dir(run_id) / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)["model"]
    torch.manual_seed(1)
    other = {
        k: v + 0.3 * torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()
    }
    for name in other:
        if name.endswith("running_var"):
            other[name] = other[name].abs() + 0.5  # a batch-norm buffer too: it must move
    torch.save({"model": other}, cwd / "other.pt")
    between = str(cwd / "other.pt")

    result = landscape(
        backend,
        run_id,
        Options(steps=3, low=0, high=1, dims=1, split="val", between=between),
        out=cwd / "between",
    )
    curve = np.load(cwd / "between" / "landscape.npz")["curve"]
    assert not (cwd / "between" / "contour.png").exists()
    from sweeper.analysis.landscape import rebuild

    _, rebuilt = rebuild(backend, run_id, "val", None)
    assert curve[0] == pytest.approx(mean_loss(rebuilt), rel=1e-6) == result.origin_loss
    rebuilt.model.load_state_dict(other)
    assert curve[-1] == pytest.approx(mean_loss(rebuilt), rel=1e-6)
    assert curve[0] != pytest.approx(curve[-1])


@pytest.mark.slow  # sweeper landscape in child processes, on a trained run
def test_bad_input_is_one_line_and_exit_2(
    trained: tuple[Path, str, dict[str, Any]], tmp_path: Path
) -> None:
    cwd, run_id, run = trained
    backend = LocalBackend(cwd / ".sweeper" / "sweeper.db", create=False)
    bare = backend.create_run({}, agent="test").run_id  # a run that kept no files
    moved = backend.create_run({}, agent="test").run_id  # a run whose data is not here
    meta = {**run["meta"], "config": {**run["meta"]["config"]}}
    meta["config"]["data"] = {**meta["config"]["data"], "root": str(tmp_path / "gone")}
    backend.record_meta(moved, 1, meta)
    backend.run_dir(moved).mkdir(parents=True)
    (backend.run_dir(moved) / "checkpoint.pt").write_bytes(
        (backend.run_dir(run_id) / "checkpoint.pt").read_bytes()
    )
    cases = {
        (run_id, "--steps", "1"): "--steps: must be at least 2",
        (run_id, "--range", "1", "-1"): "--range: min must be below max",
        (run_id, "--range", "0", "0"): "--range: min must be below max",
        (run_id, "--dims", "3"): "--dims: expected 1 or 2",
        (run_id, "--split", "test"): "--split: expected train or val",
        (run_id, "--ignore", "all"): "--ignore: expected biasbn or none",
        (run_id, "--between", "nowhere"): "--between nowhere: neither a checkpoint file",
        ("nope",): "no run 'nope'",
        (bare,): f"run {bare} does not record its trainer",
        (moved,): f"run {moved}: cannot rebuild its classify data",
    }
    store = ["--store", str(backend.path)]
    for args, message in cases.items():
        result = CliRunner().invoke(app, ["landscape", *args, *store])
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)
        assert result.stdout == "", (args, result.stdout)
    assert not (backend.run_dir(moved) / "landscape").exists(), "nothing half-written"
    backend.record_meta(bare, 1, {"trainer": "classify", "config": run["meta"]["config"]})
    # As a user types it: a real process, one line on stderr, exit code 2, no traceback.
    result = sweeper("landscape", bare, *store, cwd=tmp_path)
    assert result.returncode == 2 and f"run {bare} has no checkpoint" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


# the other trainers' rebuilds -----------------------------------------------------------------


@pytest.mark.slow  # trains a U-Net, then scores its surface
def test_segment_rebuild_scores_the_best_weights_at_the_trainers_val_loss(tmp_path: Path) -> None:
    from sweeper.trainers.segment.build import build
    from sweeper.trainers.segment.config import SegmentConfig
    from sweeper.trainers.segment.data.synthetic import write_xray
    from sweeper.trainers.segment.rebuild import rebuild
    from sweeper.trainers.segment.train import train

    root = write_xray(tmp_path / "xray", n=8, size=64)
    config = SegmentConfig.model_validate(
        {
            "epochs": 1,
            "device": "cpu",
            "overlays": 0,
            "model": {
                "encoder_name": "mobilenet_v2",
                "encoder_depth": 3,
                "decoder_channels": [16, 8, 8],
            },
            "data": {"root": str(root), "image_size": 32, "batch_size": 4, "workers": 0},
        }
    )
    summary = train(config, MemoryLogger(run_dir=tmp_path / "run"))
    assert find_checkpoint(tmp_path / "run") == tmp_path / "run" / "best.pt"
    rebuilt = rebuild(build(config, torch.device("cpu")), "val")
    rebuilt.model.load_state_dict(load_weights(tmp_path / "run" / "best.pt"))
    assert mean_loss(rebuilt) == pytest.approx(summary["val_loss"], rel=1e-5)
    assert len(rebuild(build(config, torch.device("cpu")), "train", limit=3).batches[0][0]) == 3  # type: ignore[index]


@pytest.mark.slow  # trains a re-id model, then scores its surface
def test_reid_rebuild_scores_identity_cross_entropy_on_training_images(tmp_path: Path) -> None:
    from sweeper.trainers.reid.build import build
    from sweeper.trainers.reid.config import ReidConfig
    from sweeper.trainers.reid.rebuild import rebuild

    config = ReidConfig.model_validate(
        {
            "model": {"arch": "resnet18"},
            "data": {
                "root": str(tmp_path / "veri"),
                "synthetic": True,
                "image_size": [32, 32],
                "workers": 0,
            },
        }
    )
    built = build(config, torch.device("cpu"))
    rebuilt = rebuild(built, "train", limit=16)
    loss = mean_loss(rebuilt)
    n_ids = rebuilt.model.classifier.out_features  # type: ignore[union-attr]
    # An untrained head (weights ~ N(0, 0.01)) is close to uniform over the identities.
    assert loss == pytest.approx(np.log(n_ids), rel=0.1)
    with pytest.raises(SweeperError, match="only --split train"):
        rebuild(built, "val")


# one assembly for training and analysis ---------------------------------------------------------


@pytest.mark.slow  # trains each trainer's model, then rebuilds it
def test_the_landscape_rebuilds_the_very_model_that_was_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train() and the landscape both go through the trainer's registered build: the rebuilt
    model starts from the same initial weights, takes the trained weights without a missing or
    extra key, and gives the trained model's outputs on the same validation batch."""
    import sweeper.trainers.classify.train as classify
    from sweeper.analysis.landscape import load_into
    from sweeper.trainers.classify.config import ClassifyConfig
    from sweeper.trainers.registry import get_trainer

    built_for_training = []
    real_build = classify.build

    def spy(config: Any, device: torch.device) -> Any:
        built = real_build(config, device)
        initial = {k: v.clone() for k, v in built.model.state_dict().items()}
        built_for_training.append((built, initial))
        return built

    monkeypatch.setattr(classify, "build", spy)
    config = ClassifyConfig.model_validate(
        {
            "epochs": 2,
            "device": "cpu",
            "model": {"arch": "cnn", "batch_norm": True},
            "data": {"image_size": [28, 28]},
            "optim": {"name": "adam", "lr": 3e-3},
        }
    )
    summary = classify.train(config, MemoryLogger(run_dir=tmp_path / "run"))
    ((built, initial),) = built_for_training
    trained = built.model.eval()

    info = get_trainer("classify")
    build, rebuild = info.build_fn(), info.rebuild_fn()
    assert build is not None and rebuild is not None
    rebuilt = rebuild(build(config, torch.device("cpu")), "val", None)
    assert rebuilt.model is not trained
    for name, tensor in rebuilt.model.state_dict().items():
        assert torch.equal(tensor, initial[name]), name  # seeded in build: same initial weights
    load_into(rebuilt, tmp_path / "run" / "checkpoint.pt")  # the last epoch's: what train ended on
    for name, tensor in rebuilt.model.state_dict().items():
        assert torch.equal(tensor, trained.state_dict()[name]), name
    x, _ = next(iter(rebuilt.batches))
    assert torch.equal(x, built.data.scored().x[: len(x)])  # the same validation images
    with torch.no_grad():
        assert torch.equal(rebuilt.model.eval()(x), trained(x))
    assert mean_loss(rebuilt) == pytest.approx(summary["val_loss"], rel=1e-5)
