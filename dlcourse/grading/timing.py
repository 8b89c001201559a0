"""``timed()``: the seconds a phase of grading takes, added to a ``timings`` dict.

``dlcourse grade`` reports where its seconds went (``GradingReport.timings``,
written to ``$DLCOURSE_PROFILE`` for ``bench/profile_grading.py``)::

    with timed(timings, "reference", excluding="recording"):
        check_reference(...)   # opens the gradebook meanwhile: its seconds count as recording

A phase timed twice adds up. ``excluding`` names a phase that may run inside
this one; what the block added to it is taken off, so no second is counted
twice.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def timed(timings: dict, phase: str, *, excluding: str | None = None) -> Iterator[None]:
    """Adds the block's seconds to ``timings[phase]`` (less what it added to ``timings[excluding]``)."""
    inner_before = timings.get(excluding, 0.0) if excluding else 0.0
    started = time.monotonic()
    try:
        yield
    finally:
        seconds = time.monotonic() - started
        if excluding:
            seconds -= timings.get(excluding, 0.0) - inner_before
        timings[phase] = timings.get(phase, 0.0) + seconds
