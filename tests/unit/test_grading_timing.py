"""``dlcourse.grading.timing.timed``: a phase's seconds, on a fake clock (no real time is measured)."""

from __future__ import annotations

import random

import pytest

from dlcourse.grading import timing
from dlcourse.grading.timing import timed


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(timing.time, "monotonic", fake)
    return fake


@pytest.mark.parametrize("seed", range(5))
def test_a_phase_timed_several_times_adds_up_its_seconds(clock, seed):
    rng = random.Random(seed)
    timings: dict = {}
    durations = [rng.uniform(0, 10) for _ in range(rng.randint(1, 6))]
    for seconds in durations:
        with timed(timings, "students"):
            clock.now += seconds
        clock.now += rng.uniform(0, 3)  # between the blocks: not counted
    assert timings == {"students": pytest.approx(sum(durations))}


@pytest.mark.parametrize("seed", range(5))
def test_excluding_takes_off_what_a_nested_phase_added_and_only_that(clock, seed):
    rng = random.Random(seed)
    earlier_recording = rng.uniform(0, 5)
    timings = {"recording": earlier_recording}
    outside = inside = 0.0
    with timed(timings, "reference", excluding="recording"):
        for _ in range(rng.randint(1, 4)):
            step = rng.uniform(0, 2)
            clock.now += step
            outside += step
            with timed(timings, "recording"):
                step = rng.uniform(0, 2)
                clock.now += step
                inside += step
    assert timings["reference"] == pytest.approx(outside)
    assert timings["recording"] == pytest.approx(earlier_recording + inside)


def test_a_phase_that_raises_still_records_its_seconds(clock):
    timings: dict = {}
    with pytest.raises(RuntimeError):
        with timed(timings, "checks"):
            clock.now += 2.5
            raise RuntimeError("refused")
    assert timings == {"checks": pytest.approx(2.5)}
