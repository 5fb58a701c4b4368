"""GPU slots: which CUDA_VISIBLE_DEVICES each trial gets, and the --gpus values refused."""

from __future__ import annotations

import pytest

from sweeper.agent.slots import make_slots, parse_gpus, threads_per_trial
from sweeper.errors import SweeperError


def test_one_slot_per_gpu_or_per_group_of_gpus() -> None:
    assert make_slots([]) == [None], "no GPU: one CPU slot"
    assert make_slots(["0", "1", "2"]) == ["0", "1", "2"]
    assert make_slots(["0", "1", "2", "3"], 2) == ["0,1", "2,3"]
    assert make_slots(["0", "1", "2"], 2) == ["0,1"], "a leftover GPU is not half a slot"
    assert make_slots(["0", "1"], 0) == [None], "gpus_per_trial 0: CPU trials"


def test_fewer_gpus_than_a_trial_needs_is_refused() -> None:
    with pytest.raises(SweeperError, match="gpus_per_trial is 2, but only 1 GPU"):
        make_slots(["0"], 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0,1", ["0", "1"]),
        (" 3 , 1 ", ["3", "1"]),
        ("", []),
        (None, []),
        ("GPU-5f2a9c1e-0b7d-4c6a-9e2b-1a2b3c4d5e6f", ["GPU-5f2a9c1e-0b7d-4c6a-9e2b-1a2b3c4d5e6f"]),
        ("MIG-GPU-5f2a9c1e/1/0", ["MIG-GPU-5f2a9c1e/1/0"]),
    ],
)
def test_gpu_lists_parse(text: str | None, expected: list[str]) -> None:
    assert parse_gpus(text) == expected


@pytest.mark.parametrize("text", ["abc", "0,x", "-1", "0,0", "1.5"])
def test_bad_gpu_lists_are_refused(text: str) -> None:
    with pytest.raises(SweeperError, match=r"^--gpus: "):
        parse_gpus(text)


def test_threads_share_the_cores_unless_the_spec_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert threads_per_trial(None, 2) == 4
    assert threads_per_trial(None, 16) == 1
    assert threads_per_trial(3, 2) == 3
