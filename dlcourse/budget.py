"""How long a notebook trains: the full run in a student's notebook, a short one while it is graded.

    from dlcourse.budget import budget, first
    run = budget("a4_vgg_cifar", epochs=10, batch_size=256, train_images=None, test_images=None)
    run.epochs                                     # 10 in your notebook; 1 while the notebook is graded
    x_train, y_train = first(run.train_images, x_train, y_train)   # None: all of them

A notebook states only the numbers of the full run. The short run's numbers live here, in
:data:`GRADING_BUDGETS`, next to the grader's time limits, so that no student cell tests
``NBGRADER_EXECUTION`` itself: the cells that call :func:`budget` are locked, the grader runs the
master's copy of them, and a student who edits or deletes them changes nothing in what is graded.
Grading never trains more than the full run: each short number is at most the full one.
"""

from __future__ import annotations

from typing import Mapping

from .data import grading_mode

#: notebook (file stem) -> the numbers of its short run while graded. A quantity a notebook asks for and
#: its entry does not name keeps its full value. ``threads``: torch threads (None: torch's own choice).
GRADING_BUDGETS: dict[str, dict[str, int]] = {
    "a2_optimisers": {"figure_steps": 60},
    "a3_layers": {"steps": 300},
    "a3_mnist": {"epochs": 1, "train_images": 2000, "test_images": 1000, "threads": 1},
    "a4_vgg_cifar": {"epochs": 1, "batch_size": 32, "train_images": 64, "test_images": 32},
    "a6_autoencoders": {"epochs": 3, "train_images": 4000, "threads": 1},
    "a7_concepts": {"steps": 200},
}


class Budget(Mapping):
    """The numbers of one run, read as attributes (``run.epochs``) or as a mapping (``dict(run)``).

    ``None`` means "no limit": all the images, torch's own number of threads.
    """

    def __init__(self, numbers: Mapping[str, int | None], grading: bool):
        self._numbers = dict(numbers)
        self._grading = grading

    def __getattr__(self, name: str):
        numbers = self.__dict__.get("_numbers", {})
        if name in numbers:
            return numbers[name]
        raise AttributeError(f"this budget has no {name!r}; it has {', '.join(sorted(numbers)) or 'nothing'} "
                             f"(name it in the budget(...) call)")

    def __getitem__(self, name: str):
        return self._numbers[name]

    def __iter__(self):
        return iter(self._numbers)

    def __len__(self) -> int:
        return len(self._numbers)

    def __repr__(self) -> str:
        numbers = ", ".join(f"{name}={value!r}" for name, value in self._numbers.items())
        return f"Budget({numbers})" + (" (shortened: the notebook is being graded)" if self._grading else "")


def _check(notebook: str, full: Mapping[str, object]) -> None:
    if not isinstance(notebook, str) or not notebook:
        raise TypeError(f"budget()'s first argument is the notebook's name, e.g. 'a4_vgg_cifar', not {notebook!r}")
    if not full:
        raise TypeError("budget() needs the full run's numbers, e.g. budget('a3_mnist', epochs=10)")
    for name, value in full.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"budget({name}={value!r}): a number of at least 1, or None for no limit")


def shortened(full: Mapping[str, int | None], short: Mapping[str, int]) -> dict[str, int | None]:
    """The short run: each quantity of ``full`` at its ``short`` value, never above the full one."""
    numbers = {}
    for name, value in full.items():
        if name not in short:
            numbers[name] = value
        else:
            numbers[name] = short[name] if value is None else min(value, short[name])
    return numbers


def budget(notebook: str, **full: int | None) -> Budget:
    """The numbers a training cell uses: ``full`` in a student's notebook, the short run while graded.

    ``notebook`` is the notebook's file name without ``.ipynb``; its short run is
    ``GRADING_BUDGETS[notebook]``. Every number is a positive int, or ``None`` for no limit.
    """
    _check(notebook, full)
    if not grading_mode():
        return Budget(full, grading=False)
    if notebook not in GRADING_BUDGETS:
        raise KeyError(f"no grading budget for the notebook {notebook!r}: add its short run to "
                       f"dlcourse.budget.GRADING_BUDGETS (there are {', '.join(sorted(GRADING_BUDGETS))})")
    return Budget(shortened(full, GRADING_BUDGETS[notebook]), grading=True)


def first(n: int | None, *tensors):
    """The first ``n`` items of each tensor (all of them when ``n`` is None), as a tuple."""
    return tuple(t if n is None else t[:n] for t in tensors)


__all__ = ["GRADING_BUDGETS", "Budget", "budget", "first", "shortened"]
