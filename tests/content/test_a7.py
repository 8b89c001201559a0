"""A7 (concepts): the reading questions' keys stay in the master (answer and hidden regions only), every
question is well formed, the form of the options does not give the key away (length, letter, the
instructions' example), and the fitting experiment shows underfitting, overfitting, and weight decay
regularising the overfitted network. The written answers' rubrics, the rest of the release and the
grading-mode run: test_masters.py."""

from __future__ import annotations

import contextlib
import io
import os
import re

import nbformat
import pytest

from dlcourse.core.notebook import nbgrader_meta as _meta
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


# A student who did not read must not score by the form of the options: by picking the longest option (or
# the one of any other length rank), one letter, or the letter that the instructions' example shows.


def _options(question: str) -> dict[str, str]:
    """A question cell's options: letter -> text, with its whitespace collapsed."""
    return {letter: " ".join(text.split())
            for letter, text in re.findall(r"^- \*\*([A-D])\.\*\*(.*?)(?=^- \*\*|\Z)", question, re.M | re.S)}


def _outside_solutions(source: str) -> str:
    """A cell's text as the student sees it: without solution regions and hidden tests."""
    source = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", source, flags=re.S)
    return re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", source, flags=re.S)


def _form_giveaways(questions: dict[str, tuple[dict[str, str], str]], student_text: str) -> list[str]:
    """What lets a student answer without reading. ``questions``: variable -> (options, key); ``student_text``:
    what the student sees (instructions, comments). The keyed option is "the longest" also when tied."""
    problems = []
    lengths = {name: sorted((len(text) for text in options.values()), reverse=True)
               for name, (options, _) in questions.items()}
    ranks = [lengths[name].index(len(options[key])) for name, (options, key) in questions.items()]
    if 3 * ranks.count(0) > len(questions):
        problems.append(f"the keyed option is the longest in {ranks.count(0)} of {len(questions)} questions")
    for rank in set(ranks) - {0}:
        if 2 * ranks.count(rank) > len(questions):
            problems.append(f"the keyed option is length rank {rank + 1} in {ranks.count(rank)} of {len(questions)}")
    keys = [key for _, key in questions.values()]
    for letter in sorted(set(keys)):
        if 2 * keys.count(letter) > len(keys):
            problems.append(f"{letter} is the key of {keys.count(letter)} of {len(keys)} questions")
    # stricter than "names a question's variable with its key": a real variable with another letter rules one out
    for name, letter in re.findall(r"\b(answer_\w+)\s*=\s*[\"']\s*([A-Da-d])\s*[\"']", student_text):
        if name in questions:
            its_key = " (its key)" if letter.upper() == questions[name][1] else ""
            problems.append(f"the instructions show {name} = {letter!r}{its_key}")
    return problems


def _questions_and_student_text(notebook) -> tuple[dict, str]:
    cells = _cells(notebook)
    questions = {f"answer_{paper}": (_options(cells[f"question_{paper}"].source), _key(cells, paper))
                 for paper in PAPERS}
    return questions, "\n".join(_outside_solutions(cell.source) for cell in notebook.cells)


def test_reading_questions_cannot_be_answered_by_the_form_of_the_options(master):
    questions, student_text = _questions_and_student_text(master)
    assert all(sorted(options) == list("ABCD") for options, _ in questions.values())
    assert _form_giveaways(questions, student_text) == []


def _generated_questions(rng, keyed_rank, key_letters, lengths=range(80, 200)) -> dict:
    """Random questions whose keyed option has length rank ``keyed_rank(i)`` (0: longest) and letter
    ``key_letters(i)``; lengths are distinct."""
    questions = {}
    for i in range(rng.randint(3, 12)):
        sizes = sorted(rng.sample(list(lengths), 4), reverse=True)
        key, rank = key_letters(i), keyed_rank(i)
        others = [letter for letter in "ABCD" if letter != key]
        rng.shuffle(others)
        size_of = dict(zip(others, sizes[:rank] + sizes[rank + 1:]), **{key: sizes[rank]})
        questions[f"answer_q{i}"] = ({letter: "x" * size_of[letter] for letter in "ABCD"}, key)
    return questions


def _spread_letters(i: int) -> str:
    return "ABCD"[i % 4]


def _cycled_ranks(i: int) -> int:
    """Never the longest, and no rank in more than half of three or more questions."""
    return 1 + i % 3


@pytest.mark.parametrize("seed", range(20))
def test_form_check_flags_generated_giveaways_and_passes_fair_questions(seed):
    import random

    rng = random.Random(seed)
    fair = _generated_questions(rng, _cycled_ranks, _spread_letters)
    assert _form_giveaways(fair, 'Set the variable, e.g. `answer_paper = "C"`.') == []
    longest = _generated_questions(rng, lambda i: 0, _spread_letters)
    assert any("the longest" in problem for problem in _form_giveaways(longest, ""))
    second = _generated_questions(rng, lambda i: 1, _spread_letters)
    assert any("rank 2" in problem for problem in _form_giveaways(second, ""))
    letter = rng.choice("ABCD")
    one_letter = _generated_questions(rng, _cycled_ranks, lambda i: letter)
    assert any(f"{letter} is the key" in problem for problem in _form_giveaways(one_letter, ""))
    name, (_, key) = rng.choice(sorted(fair.items()))
    shown = _form_giveaways(fair, f'e.g. `{name} = "{key}"`; keep the quotes.')
    assert shown == [f"the instructions show {name} = {key!r} (its key)"]


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
def test_experiment_shows_underfitting_overfitting_and_weight_decay_regularising(master):
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
        numbers[name] = (train, val, best, float(re.search(r"weight norm (\d+\.\d+)", line).group(1)))
    line_train, line_val, _, _ = numbers["straight line"]
    big_train, big_val, big_best, big_norm = numbers["large network"]
    reg_train, reg_val, _, reg_norm = numbers["large network + weight decay"]
    # underfitting: both errors high (well above the noise variance 0.09) and the regularised network is better
    assert line_train > 0.15 and line_val > 0.25 and reg_val < line_val
    # overfitting: training error near zero, validation error far above it and above its own minimum
    assert big_train < 0.01 and big_val > 5 * big_train and big_val > 1.3 * big_best
    # weight decay visibly regularises the same network: a clearly lower validation error, weights less than half
    # the size, a looser fit of the training points and a smaller gap (8 seeds measured: validation 0.63-0.71 times
    # and weight norm 0.22-0.37 times the unregularised network's)
    assert reg_val < 0.2 and reg_val < 0.85 * big_val and reg_norm < 0.5 * big_norm
    assert reg_train > big_train and reg_val - reg_train < big_val - big_train


def test_experiment_text_states_the_weight_decay_and_learning_rate_the_code_uses(master):
    cells = _cells(master)
    code, text = cells["curves_experiment"].source, cells["curves_text"].source
    decay = float(re.search(r'"large network \+ weight decay": \(copy\.deepcopy\(large\), ([\d.e-]+)\)', code).group(1))
    lr = float(re.search(r"def train\(.*lr=([\d.e-]+)", code).group(1))
    assert re.search(r'"large network": \(large, 0\.0\)', code), "the unregularised network must be the same one"
    assert f"`weight_decay={decay}`" in text
    assert f"{round(100 * lr * decay)} %" in text, "the text should state the shrinking per step, lr * weight_decay"
    exponent = f"{lr:.0e}".split("e")
    assert f"{int(exponent[0])} \\cdot 10^{{{int(exponent[1])}}}" in text
