"""Shared set-up of the content tests: the masters' reference solutions, run in this process.

Each assignment's tests call what its master's answer cells define (``solutions["Adam"]``, ...). Which
code cells form that namespace differs per master, and stays as it was when every assignment had its
own copy of this code: ``REFERENCE_CELLS`` holds the rule of each master, in one place.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Callable

import nbformat
import pytest
import torch

from dlcourse.core.notebook import nbgrader_meta
from helpers import SOURCE

Cells = list  # a master's code cells, in notebook order
Selector = Callable[[Cells], Cells]


def answers_and(*grade_ids: str) -> Selector:
    """The answer cells and the named locked cells (the set-up); not the demos, figures or tests."""
    return lambda cells: [c for c in cells
                          if nbgrader_meta(c).get("solution") or nbgrader_meta(c).get("grade_id") in grade_ids]


def untested_except(*grade_ids: str) -> Selector:
    """Every code cell that is not a test cell, with or without nbgrader metadata, but the named ones."""
    return lambda cells: [c for c in cells
                          if not nbgrader_meta(c).get("grade") and nbgrader_meta(c).get("grade_id") not in grade_ids]


def named_untested(cells: Cells) -> Cells:
    """The cells with a grade_id that are not test cells: locked set-up and answer cells, no free demo cells."""
    return [c for c in cells if nbgrader_meta(c).get("grade_id") and not nbgrader_meta(c).get("grade")]


def named_untested_except(*grade_ids: str) -> Selector:
    """:func:`named_untested` without the named cells (the locked demos that load data, train or plot)."""
    return lambda cells: [c for c in named_untested(cells) if nbgrader_meta(c).get("grade_id") not in grade_ids]


def setup_and_definitions(cells: Cells) -> Cells:
    """The first untested cell after the names cell (the set-up), then the untested cells that only import and
    define (answers and helpers): not the cells that train and plot."""
    untested = [c for c in cells if not nbgrader_meta(c).get("grade") and nbgrader_meta(c).get("grade_id") != "names"]
    return [c for index, c in enumerate(untested)
            if index == 0 or all(isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
                                 for node in ast.parse(c.source).body)]


# master (file stem) -> the code cells whose reference code the assignment's own tests need
REFERENCE_CELLS: dict[str, Selector] = {
    "a1_autodiff": untested_except("show_A"),  # show_A draws and prints the engine's result on A
    "a2_optimisers": answers_and("setup"),  # not the figure cells
    "a3_layers": setup_and_definitions,  # not the figure cells, nor the one that trains on spirals
    "a3_mnist": setup_and_definitions,  # not the cells that train on MNIST and plot
    "a4_convnets": named_untested_except("edges_demo", "vgg16_numbers"),  # the demo cells
    "a4_vgg_cifar": named_untested_except("data", "normalise", "training", "plot_history", "show_examples",
                                          "training_batchnorm"),  # these load CIFAR-10, train and plot
    "a5_rnn_attention": answers_and("a5_setup"),
    "a6_autoencoders": answers_and("a6_setup"),  # not train_mnist, which trains on MNIST
}


def reference_namespace(master: Path, include: Selector) -> dict:
    """Run the code cells of ``master`` that ``include`` picks, in order, in one fresh namespace; return it."""
    import matplotlib

    matplotlib.use("Agg")
    prefix = master.parent.name.split("_")[0]
    namespace: dict = {"__name__": f"{prefix}_reference"}
    cells = [c for c in nbformat.read(str(master), as_version=4).cells if c.cell_type == "code"]
    for cell in include(cells):
        exec(compile(cell.source, nbgrader_meta(cell).get("grade_id", "<cell>"), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def reference():
    """``reference("a3_mnist")``: the namespace of that master's reference cells (``REFERENCE_CELLS``), built
    once per test module. Set-up cells ask torch for one thread; the module's end gives back the count."""
    threads = torch.get_num_threads()
    built: dict[str, dict] = {}

    def namespace(stem: str) -> dict:
        if stem not in built:
            (master,) = SOURCE.glob(f"*/{stem}.ipynb")
            built[stem] = reference_namespace(master, include=REFERENCE_CELLS[stem])
        return built[stem]

    yield namespace
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def solutions(request, reference):
    """The reference namespace of the master of test_aN.py's assignment, for the assignments with one master."""
    prefix = re.fullmatch(r"test_(a\d+)(_\w+)?", request.path.stem).group(1)
    masters = sorted(SOURCE.glob(f"{prefix}_*/*.ipynb"))
    assert len(masters) == 1, f"{request.path.name}: ask for one of {[m.stem for m in masters]} by name instead"
    return reference(masters[0].stem)


def _reference_of(name: str, stem: str):
    @pytest.fixture(scope="module", name=name)
    def namespace(reference):
        return reference(stem)

    return namespace


# The assignments with two masters ask for each by name.
layers, mnist = _reference_of("layers", "a3_layers"), _reference_of("mnist", "a3_mnist")
convnets, vgg_cifar = _reference_of("convnets", "a4_convnets"), _reference_of("vgg_cifar", "a4_vgg_cifar")
