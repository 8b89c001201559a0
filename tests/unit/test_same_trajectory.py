"""``assert_same_trajectory``: a training loop checked step for step, naming a mistake only when it is sure."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlcourse.grading.model_checks import assert_same_trajectory

NAMES = ["weight", "bias"]


def trajectory(seed: int, steps: int) -> list[list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [[torch.randn(3, 2, generator=generator), torch.randn(2, generator=generator)] for _ in range(steps)]


def message(got, expected, **kwargs) -> str:
    with pytest.raises(AssertionError) as raised:
        assert_same_trajectory(got, expected, what="train(...)", names=NAMES, **kwargs)
    return str(raised.value)


@settings(max_examples=25, deadline=None, database=None)
@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(1, 6))
def test_the_same_trajectory_up_to_rounding_passes(seed, steps):
    expected = trajectory(seed, steps)
    got = [[p * (1 + 1e-7) for p in step] for step in expected]
    assert_same_trajectory(got, expected, what="train(...)", names=NAMES, mistakes={"x": trajectory(seed + 1, steps)})


@settings(max_examples=25, deadline=None, database=None)
@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(1, 6), data=st.data())
def test_the_first_parting_is_reported_by_step_and_parameter_and_no_mistake_is_guessed(seed, steps, data):
    expected = trajectory(seed, steps)
    step = data.draw(st.integers(0, steps - 1))
    index = data.draw(st.integers(0, 1))
    got = [[p.clone() for p in s] for s in expected]
    for later in range(step, steps):  # a loop that parts stays parted
        got[later][index] = got[later][index] + 0.5
    text = message(got, expected, mistakes={"the optimiser is created again": trajectory(seed + 1, steps)})
    assert f"after step {step + 1} your {NAMES[index]} differs from the reference's by up to 0.5" in text
    assert ("steps 1 to" in text) == (step > 0)
    assert "follow, step for step" not in text and "the optimiser is created again" in text  # listed, not claimed


@settings(max_examples=25, deadline=None, database=None)
@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(1, 6), which=st.integers(0, 2))
def test_a_trajectory_that_follows_a_known_mistake_names_that_mistake_only(seed, steps, which):
    expected = trajectory(seed, steps)
    mistakes = {f"mistake {k}": trajectory(seed + 1 + k, steps) for k in range(3)}
    text = message(mistakes[f"mistake {which}"], expected, mistakes=mistakes)
    assert f"a loop in which mistake {which}." in text
    assert all(f"mistake {k}" not in text for k in range(3) if k != which)


def test_another_number_of_steps_is_reported_as_such():
    assert "took 2 optimiser steps, expected 3" in message(trajectory(0, 2), trajectory(0, 3))
