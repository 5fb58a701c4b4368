"""A plain W&B sweep's command, expanded as `wandb agent` does (wandb 0.31's sweeps utils)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sweeper.spec.command import DEFAULT_COMMAND, CommandError, check_command, expand

ARGS = {"lr": 0.001, "layers": [64, 32], "dropout": False, "bn": True, "opt": "adam", "w": None}
FILE = Path("/tmp/run/args.json")

CASES = [
    (
        DEFAULT_COMMAND,
        [
            "/usr/bin/env",
            sys.executable,
            "train.py",
            "--lr=0.001",
            "--layers=[64, 32]",
            "--dropout=False",
            "--bn=True",
            "--opt=adam",
            "--w=None",
        ],
    ),
    (
        ["${interpreter}", "${program}", "${args_no_hyphens}"],
        [
            sys.executable,
            "train.py",
            "lr=0.001",
            "layers=[64, 32]",
            "dropout=False",
            "bn=True",
            "opt=adam",
            "w=None",
        ],
    ),
    (
        ["${program}", "${args_no_boolean_flags}"],
        ["train.py", "--lr=0.001", "--layers=[64, 32]", "--bn", "--opt=adam", "--w=None"],
    ),
    (
        ["${program}", "${args_no_equals}"],
        [
            "train.py",
            "--lr",
            "0.001",
            "--layers",
            "[64, 32]",
            "--dropout",
            "False",
            "--bn",
            "True",
            "--opt",
            "adam",
            "--w",
            "None",
        ],
    ),
    (
        ["run", "${args_json}"],
        ["run", json.dumps(ARGS)],
    ),
    (
        ["run", "${args_json_file}"],
        ["run", str(FILE)],
    ),
    (
        ["python", "${program}", "${args_override_hydra}"],
        [
            "python",
            "train.py",
            "++lr=0.001",
            "++layers=[64, 32]",
            "++dropout=False",
            "++bn=True",
            "++opt=adam",
            "++w=None",
        ],
    ),
    (
        ["python", "${program}", "${args_append_hydra}"],
        [
            "python",
            "train.py",
            "+lr=0.001",
            "+layers=[64, 32]",
            "+dropout=False",
            "+bn=True",
            "+opt=adam",
            "+w=None",
        ],
    ),
    (
        ["${envvar:RUNNER}", "--data=${envvar:DATA}/x", "--seed", "7"],
        ["torchrun", "--data=/data/x", "--seed", "7"],
    ),
]


@pytest.mark.parametrize(("command", "argv"), CASES, ids=[" ".join(c) for c, _ in CASES])
def test_macros_expand_as_wandb_agent_does(
    command: list[str], argv: list[str], tmp_path: Path
) -> None:
    json_file = tmp_path / "args.json" if "${args_json_file}" in command else FILE
    expected = [str(json_file) if item == str(FILE) else item for item in argv]
    environ = {"RUNNER": "torchrun", "DATA": "/data"}

    got = expand(command, ARGS, program="train.py", args_json_file=json_file, environ=environ)

    assert got == expected
    if "${args_json_file}" in command:
        assert json.loads(json_file.read_text()) == ARGS
    else:
        assert not json_file.exists()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["${interpreter}", "${prog}"], r"unknown macro \$\{prog\}"),
        (["${envvar:lower}"], r"unknown macro \$\{envvar:lower\}"),
        (["--file=${args_json_file}"], "must be a command item of its own"),
    ],
)
def test_unknown_or_embedded_macros_are_refused(command: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        check_command(command)


def test_a_missing_variable_or_program_is_an_error_not_a_silent_gap() -> None:
    with pytest.raises(CommandError, match="the environment variable NOPE is not set"):
        expand(["${envvar:NOPE}"], {}, program=None, args_json_file=FILE, environ={})
    with pytest.raises(CommandError, match="gives no `program`"):
        expand(DEFAULT_COMMAND, {}, program=None, args_json_file=FILE, environ={})


def test_args_macros_match_wandbs_own_rendering() -> None:
    """The reference: wandb's agent builds these lists with this function."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    from sweeper.spec.command import ARGS_MACROS, args_items

    theirs = create_sweep_command_args({"args": {k: {"value": v} for k, v in ARGS.items()}})
    ours = args_items(ARGS)
    assert {name: ours[name] for name in ARGS_MACROS} == {n: theirs[n] for n in ARGS_MACROS}
