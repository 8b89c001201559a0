"""dlcourse.budget: the full run's numbers for a student, the short run's while graded, never more."""

from __future__ import annotations

import ast
import random

import nbformat
import pytest
import torch

from dlcourse.budget import GRADING_BUDGETS, budget, first, shortened
from helpers import SOURCE

QUANTITIES = ("epochs", "steps", "batch_size", "train_images", "test_images", "threads", "figure_steps")


def random_full(rng: random.Random) -> dict:
    names = rng.sample(QUANTITIES, rng.randint(1, len(QUANTITIES)))
    return {name: None if rng.random() < 0.25 else rng.randint(1, 100_000) for name in names}


@pytest.fixture
def student(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


@pytest.fixture
def grading(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")


@pytest.mark.parametrize("seed", range(20))
def test_a_student_gets_exactly_the_full_numbers(student, seed):
    rng = random.Random(seed)
    notebook = rng.choice(sorted(GRADING_BUDGETS))
    full = random_full(rng)
    run = budget(notebook, **full)
    assert dict(run) == full
    assert all(getattr(run, name) == value for name, value in full.items())


@pytest.mark.parametrize("seed", range(20))
def test_grading_shortens_what_the_table_names_never_above_the_full_number(grading, seed):
    rng = random.Random(seed)
    notebook = rng.choice(sorted(GRADING_BUDGETS))
    full = random_full(rng)
    short = GRADING_BUDGETS[notebook]
    run = budget(notebook, **full)
    assert set(run) == set(full)
    for name, value in full.items():
        if name not in short:
            assert run[name] == value, name
        elif value is None:
            assert run[name] == short[name], name
        else:
            assert run[name] == min(value, short[name]) <= value, name


@pytest.mark.parametrize("seed", range(10))
def test_shortened_is_at_most_full_and_at_most_short(seed):
    rng = random.Random(seed)
    full = random_full(rng)
    short = {name: rng.randint(1, 1000) for name in rng.sample(QUANTITIES, 3)}
    numbers = shortened(full, short)
    for name, value in numbers.items():
        if name in short:
            assert value <= short[name]
        if full[name] is not None:
            assert value <= full[name]


def test_grading_a_notebook_without_a_table_entry_says_where_to_add_it(grading):
    with pytest.raises(KeyError, match="GRADING_BUDGETS"):
        budget("a9_unknown", epochs=10)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_a_number_that_is_not_a_positive_int_or_none_is_refused(student, bad):
    with pytest.raises(ValueError, match="at least 1"):
        budget("a3_mnist", epochs=bad)


def test_an_unnamed_quantity_is_an_attribute_error_naming_the_ones_there(student):
    run = budget("a3_mnist", epochs=10)
    with pytest.raises(AttributeError, match="epochs"):
        run.batch_size


@pytest.mark.parametrize("n", [None, 0, 1, 3, 7, 50])
def test_first_takes_the_first_n_of_every_tensor_or_all(n):
    x, y = torch.arange(20).reshape(10, 2), torch.arange(10)
    small_x, small_y = first(n, x, y)
    expected = 10 if n is None else min(n, 10)
    assert len(small_x) == len(small_y) == expected
    assert torch.equal(small_x, x[:expected]) and torch.equal(small_y, y[:expected])


def _budget_calls(master) -> list[tuple[str, set[str]]]:
    """(notebook argument, quantity names) of every budget(...) call in the master's code cells."""
    calls = []
    for cell in nbformat.read(str(master), as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "budget":
                calls.append((node.args[0].value, {k.arg for k in node.keywords}))
    return calls


def test_every_table_entry_is_one_masters_and_every_short_number_is_asked_for():
    """An entry names a master that calls budget() with its own name, and only quantities that master uses."""
    calls = {master.stem: _budget_calls(master) for master in SOURCE.glob("*/*.ipynb")}
    for notebook, short in GRADING_BUDGETS.items():
        assert notebook in calls, f"GRADING_BUDGETS names {notebook!r}, which is no master"
        assert calls[notebook], f"{notebook} has a grading budget but calls no budget()"
        asked = set().union(*(names for _, names in calls[notebook]))
        assert set(short) <= asked, f"{notebook}: {set(short) - asked} shortened but never asked for"
    for stem, found in calls.items():
        assert all(name == stem for name, _ in found), f"{stem} calls budget() with another notebook's name"

