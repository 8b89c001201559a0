"""A7 (concepts): the reading questions' keys stay in the master (answer and hidden regions only), every
question is well formed, and the fitting experiment shows under- and overfitting. The written answers'
rubrics, the rest of the release and the grading-mode run: test_masters.py."""

from __future__ import annotations

import contextlib
import io
import os
import re

import nbformat
import pytest

from dlcourse.notebook import nbgrader_meta as _meta
from helpers import RELEASE, SOURCE

MASTER = SOURCE / "a7_concepts" / "a7_concepts.ipynb"
RELEASE_NOTEBOOK = RELEASE / "a7_concepts" / "a7_concepts.ipynb"
PAPERS = ["recht", "greff", "wightman", "ulyanov", "brendel", "wu", "picard", "vaswani", "zhu"]


def _cells(notebook) -> dict:
    return {_meta(c)["grade_id"]: c for c in notebook.cells if _meta(c).get("grade_id")}


@pytest.fixture(scope="module")
def master():
    return nbformat.read(str(MASTER), as_version=4)


@pytest.fixture(scope="module")
def release():
    return nbformat.read(str(RELEASE_NOTEBOOK), as_version=4)


def _key(cells, paper) -> str:
    return re.search(rf'answer_{paper} = "([ABCD])"', cells[f"reading_{paper}"].source).group(1)


# --------------------------------------------------------------------------
# Reading questions


def test_each_question_has_four_options_an_answer_cell_and_a_test_cell(master):
    cells = _cells(master)
    order = [_meta(c).get("grade_id") for c in master.cells]
    for paper in PAPERS:
        question = cells[f"question_{paper}"].source
        assert [m for m in re.findall(r"^- \*\*([A-Z])\.\*\*", question, re.M)] == list("ABCD"), paper
        answer, test = cells[f"reading_{paper}"], cells[f"test_reading_{paper}"]
        assert _meta(answer)["solution"] and not _meta(answer)["grade"]
        assert _meta(test)["grade"] and _meta(test)["points"] == 1
        assert order.index(f"question_{paper}") + 1 == order.index(f"reading_{paper}")
        assert order.index(f"reading_{paper}") + 1 == order.index(f"test_reading_{paper}")


def test_keys_live_only_in_the_solution_and_the_hidden_test(master):
    cells = _cells(master)
    for paper in PAPERS:
        key = _key(cells, paper)
        answer = cells[f"reading_{paper}"].source
        assert f'answer_{paper} = "{key}"' in answer.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        test = cells[f"test_reading_{paper}"].source
        public, hidden = test.split("### BEGIN HIDDEN TESTS")
        assert f'== "{key}"' in hidden and "==" not in public, paper
        assert "student.answer_" in public, "the format check must be public"


def test_keys_are_spread_over_the_letters(master):
    keys = [_key(_cells(master), paper) for paper in PAPERS]
    assert set(keys) == set("ABCD"), keys


def test_keyed_facts_are_the_curriculums(master):
    """The keyed option of each question states the fact the curriculum is sure of."""
    cells = _cells(master)
    facts = {
        "recht": ["dropped", "ranking"], "greff": ["adds the block's input"], "wightman": ["unchanged ResNet-50"],
        "ulyanov": ["structure of a convolutional network is itself a prior"], "brendel": ["unordered bag"],
        "wu": ["groups of channels", "each sample"], "picard": ["fairly small", "black swans"],
        "vaswani": ["same linear maps", "1×1 convolution"], "zhu": ["other domain and back"],
    }
    for paper, words in facts.items():
        key = _key(cells, paper)
        question = cells[f"question_{paper}"].source
        option = re.search(rf"^- \*\*{key}\.\*\*(.*?)(?=^- \*\*|\Z)", question, re.M | re.S).group(1)
        option = " ".join(option.split())
        for word in words:
            assert word in option, f"{paper}: the keyed option {key} should say {word!r}"


def test_release_holds_no_key(release):
    cells = _cells(release)
    for paper in PAPERS:
        answer = cells[f"reading_{paper}"].source
        assert not re.search(rf"answer_{paper}\s*=", answer.replace(f"# Set answer_{paper} to", "")), answer
        test = cells[f"test_reading_{paper}"].source
        assert "HIDDEN" not in test and "==" not in test


# --------------------------------------------------------------------------
# The experiment shows both failure modes


@pytest.mark.slow
def test_experiment_shows_underfitting_and_overfitting(master):
    import matplotlib

    matplotlib.use("Agg")
    cells = _cells(master)
    namespace: dict = {"__name__": "a7_experiment"}
    old = os.environ.pop("NBGRADER_EXECUTION", None)
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            exec(cells["setup"].source, namespace)
            exec(cells["curves_experiment"].source, namespace)
    finally:
        if old is not None:
            os.environ["NBGRADER_EXECUTION"] = old
    numbers = {}
    for line in output.getvalue().splitlines():
        name = line[:30].strip()
        train, val, best = map(float, re.findall(r"MSE (\d+\.\d+)", line))
        numbers[name] = (train, val, best)
    line_train, line_val, _ = numbers["straight line"]
    small_train, small_val, _ = numbers["small network + weight decay"]
    big_train, big_val, big_best = numbers["large network"]
    # underfitting: both errors high (well above the noise variance 0.09) and the best of the three models is better
    assert line_train > 0.15 and line_val > 0.25 and small_val < line_val
    # overfitting: training error near zero, validation error far above it and above its own minimum
    assert big_train < 0.01 and big_val > 5 * big_train and big_val > 1.3 * big_best
    # a good fit in between
    assert small_val < 0.2 and small_val - small_train < big_val - big_train
