"""The mutation suite: plausible mistakes lose points, valid alternatives don't.

One test per graded item (an answer cell of an assignment): each mutant of
that item in ``tests/mutants/aN.py`` replaces the item's answer cell of the
reference solution and must lose points on the item's own test cells; each
alternative of the item must get full marks on every cell of its notebook.
All variants are graded by the real engine (sandboxed kernels, tests in the
clean process), in parallel through one executor shared by the module.

A mutant only needs its notebook up to its item's last test cell: later
cells cannot change those tests' outcome, and the other items' tests do not
decide whether it is killed. So each mutant is graded against a master cut
there, which keeps the training notebooks (A3, A4, A6) affordable.

An alternative needs the whole notebook, so the alternatives of a master's items are graded together:
round k fills every item that has a k-th alternative with it, once per session (the first test that needs
a round grades it; the other xdist worker waits for its result). A round with full marks on every cell
passes each of its alternatives. A round that loses any point decides nothing: each item then grades its
own alternative of that round alone, in the reference, as if there were no rounds.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from dlcourse.core.course import CourseLayout
from dlcourse.grading import GradingJob, default_executor, grade_submission
from dlcourse.core.notebook import grade_id, is_test_cell
from helpers import (SOURCE, answer_ids, item_test_ids, kill_rate_summary, master_with_answer, mutant_modules,
                     options, record_kill_rate, session_folder, solution_notebook, dependencies_between_test_cells,
                     with_answer)

MODULES = mutant_modules()


def graded_items() -> list[tuple[str, str]]:
    """(prefix, answer_id) of every code answer cell of the masters, then of any variant naming another id.

    A variant whose grade id is not an answer cell gets its own item, whose test fails (no master has it).
    """
    items = [(prefix, answer_id) for prefix in sorted(MODULES)
             for master in sorted(SOURCE.glob(f"{prefix}_*/*.ipynb")) for answer_id in answer_ids(master)]
    for prefix, module in sorted(MODULES.items()):
        for answer_id, _, _ in module.MUTANTS + module.ALTERNATIVES:
            if (prefix, answer_id) not in items:
                items.append((prefix, answer_id))
    return items


@pytest.fixture(scope="module")
def executor():
    pool = default_executor(2)
    yield pool
    pool.shutdown()


def cut_master(master_path, answer_id: str):
    """The master up to the item's last test cell, without the other items' tests.

    Earlier test cells whose helpers the item's tests use stay (they pass on the reference's other
    answers): without them a mutant would be "killed" by a NameError of the test, not by its mistake.
    """
    master = nbformat.read(str(master_path), as_version=4)
    own = set(item_test_ids(master_path, answer_id))
    dependencies = dependencies_between_test_cells(master_path)
    keep, todo = set(own), list(own)
    while todo:
        for needed in dependencies[todo.pop()][0] - keep:
            keep.add(needed)
            todo.append(needed)
    last = max(i for i, c in enumerate(master.cells) if grade_id(c) in own)
    cells = [c for c in master.cells[:last + 1]
             if not (is_test_cell(c) and grade_id(c) not in keep)]
    master.cells = cells
    return master


def alternative_rounds(prefix: str, master_path) -> list[dict[str, tuple[int, str, str]]]:
    """Round k: ``{answer_id: (index, description, source)}`` of the k-th alternative of each item of the master."""
    ids = set(answer_ids(master_path))
    rounds: list[dict[str, tuple[int, str, str]]] = []
    seen: dict[str, int] = {}
    for index, (item, description, source) in enumerate(MODULES[prefix].ALTERNATIVES):
        if item not in ids:
            continue
        k = seen.get(item, 0)
        seen[item] = k + 1
        if k == len(rounds):
            rounds.append({})
        rounds[k][item] = (index, description, source)
    return rounds


def alternatives_lost(result) -> list[str]:
    """Why an alternative's notebook fails: each test cell below full marks, and a status other than ok."""
    lost = [f"{c.grade_id} ({c.message[:160]})" for nb in result.notebooks for c in nb.cells
            if c.kind == "test" and c.score != c.max_score]
    return lost if result.status == "ok" else [f"status {result.status}", *lost]


class Round:
    """One round of a master's alternatives, graded once per session.

    ``start`` takes the round's lock without waiting: the test that gets it grades the round (submitted
    first, the longest job) and holds the lock until it has written the result. A test that does not get it
    waits in ``collect`` for the result the other worker writes; if none was written (that worker failed),
    it grades the round itself. A test collects the rounds it grades before it waits for any other, and
    waits holding no other lock, so two workers never wait for each other.
    """

    def __init__(self, folder: Path, key: str, job_of):
        self.result_file, self.job_of = folder / f"{key}.json", job_of
        self.lock = open(folder / f"{key}.lock", "w")
        self.future = None

    @property
    def grading(self) -> bool:
        return self.future is not None

    def start(self, executor) -> None:
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        if self.result_file.exists():
            self.lock.close()
        else:
            self.future = executor.submit(grade_submission, self.job_of())

    def collect(self, executor) -> bool:
        try:
            if not self.lock.closed:
                fcntl.flock(self.lock, fcntl.LOCK_EX)
            if self.future is None and not self.result_file.exists():
                self.future = executor.submit(grade_submission, self.job_of())
            if self.future is not None:
                lost = alternatives_lost(self.future.result())
                self.result_file.write_text(json.dumps({"lost": lost}))
            return not json.loads(self.result_file.read_text())["lost"]
        finally:
            self.lock.close()


@pytest.fixture(scope="module")
def rounds_folder(tmp_path_factory):
    """The rounds' locks and results: one folder that every xdist worker of the session sees."""
    folder = session_folder(tmp_path_factory) / "alternative-rounds"
    folder.mkdir(exist_ok=True)
    return folder


def write_course(root, assignment: str, master, master_name: str):
    layout = CourseLayout(root)
    folder = layout.source / assignment
    folder.mkdir(parents=True)
    nbformat.write(master, str(folder / master_name))
    return layout


@pytest.mark.slow
@pytest.mark.parametrize(("prefix", "answer_id"), graded_items())
def test_mutants_are_killed_and_alternatives_pass(prefix, answer_id, tmp_path, executor, rounds_folder, request):
    module = MODULES[prefix]
    mutants = [(index, description, source) for index, (item, description, source) in enumerate(module.MUTANTS)
               if item == answer_id]
    master_path = master_with_answer(prefix, answer_id)
    rounds = [(k, entries) for k, entries in enumerate(alternative_rounds(prefix, master_path))
              if answer_id in entries]
    assert len(mutants) >= 3 and rounds, (
        f"{prefix} {answer_id}: too few mutants ({len(mutants)}, at least 3) "
        f"or alternatives ({len(rounds)}, at least 1)")
    own = item_test_ids(master_path, answer_id)
    assert own, f"{prefix}: answer cell {answer_id!r} has no test cell named test_{answer_id}[_*]"
    assignment = master_path.parent.name
    full = write_course(tmp_path / "alternative", assignment, nbformat.read(str(master_path), as_version=4),
                        master_path.name)

    def job(student: str, notebook, layout=full):
        folder = layout.submitted / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(notebook, str(folder / master_path.name))
        return GradingJob(student, assignment, str(folder), str(layout.source / assignment), options())

    def round_job(k: int, entries):
        notebook = solution_notebook(master_path)
        for item, (_, _, source) in entries.items():
            notebook = with_answer(notebook, item, source)
        return lambda: job(f"round-{k}", notebook)

    pending = [Round(rounds_folder, f"{prefix}-{master_path.stem}-{k}", round_job(k, entries))
               for k, entries in rounds]
    request.addfinalizer(lambda: [graded.lock.close() for graded in pending])  # a failed test holds no lock
    for graded in pending:  # the rounds first: they run the whole notebook, the longest jobs go first
        graded.start(executor)
    cut = cut_master(master_path, answer_id)
    layout = write_course(tmp_path / "mutant", assignment, cut, master_path.name)
    # the cut master's graded and locked cells (not None: an id-less markdown cell near the end would keep the
    # whole notebook)
    kept = {grade_id(c) for c in cut.cells} - {None}
    futures = {}
    for index, description, source in mutants:
        notebook = with_answer(solution_notebook(master_path), answer_id, source)
        last = max(i for i, c in enumerate(notebook.cells) if grade_id(c) in kept)
        notebook.cells = notebook.cells[:last + 1]
        futures[executor.submit(grade_submission, job(f"mutant-{index:03d}", notebook, layout))] = description
    alone = {}  # the alternatives whose round lost a point, each graded alone in the reference
    passed = {}
    for (k, entries), graded in sorted(zip(rounds, pending), key=lambda pair: not pair[1].grading):
        passed[k] = graded.collect(executor)
    for k, entries in rounds:
        if not passed[k]:
            index, description, source = entries[answer_id]
            notebook = with_answer(solution_notebook(master_path), answer_id, source)
            alone[executor.submit(grade_submission, job(f"alternative-{index:03d}", notebook))] = description
    survivors = [f"{answer_id}: {description}" for future, description in futures.items()
                 if all(c.score == c.max_score for nb in future.result().notebooks for c in nb.cells
                        if c.grade_id in own)]
    failed_alternatives = [f"{answer_id}: {description}: lost {lost}" for future, description in alone.items()
                           if (lost := alternatives_lost(future.result()))]
    n_mutants, n_alternatives = len(mutants), len(rounds)
    record_kill_rate(prefix, answer_id, n_mutants - len(survivors), n_mutants,
                     n_alternatives - len(failed_alternatives), n_alternatives)
    assert not survivors, "mutants that kept all their points:\n" + "\n".join(survivors)
    assert not failed_alternatives, "valid alternatives that lost points:\n" + "\n".join(failed_alternatives)


class _Later:
    """A future of a canned grading: its ``result`` is what ``grade`` gives for the job (or raises)."""

    def __init__(self, grade, job):
        self.grade, self.job = grade, job

    def result(self):
        return self.grade(self.job)


class _CannedExecutor:
    def __init__(self, grade):
        self.grade, self.jobs = grade, []

    def submit(self, function, job):
        self.jobs.append(job)
        return _Later(self.grade, job)


def _result(status: str, scores: list[tuple[float, float]]):
    cells = [SimpleNamespace(grade_id=f"test_{i}", kind="test", score=score, max_score=top, message="")
             for i, (score, top) in enumerate(scores)]
    return SimpleNamespace(status=status, notebooks=[SimpleNamespace(cells=cells)])


@pytest.mark.parametrize(("status", "scores", "passed"), [
    ("ok", [(1, 1), (2, 2)], True), ("ok", [(1, 1), (1, 2)], False), ("error", [(1, 1)], False)])
def test_a_round_is_graded_once_and_its_result_read_by_the_other_worker(tmp_path, status, scores, passed):
    first = _CannedExecutor(lambda job: _result(status, scores))
    second = _CannedExecutor(lambda job: _result("ok", [(9, 9)]))
    mine, theirs = Round(tmp_path, "a1-x-0", lambda: "job"), Round(tmp_path, "a1-x-0", lambda: "job")
    mine.start(first)
    theirs.start(second)  # the lock is taken: it leaves the grading to the first
    assert mine.grading and not theirs.grading
    assert mine.collect(first) is passed
    assert theirs.collect(second) is passed
    assert first.jobs == ["job"] and second.jobs == []


def test_a_round_whose_grader_wrote_no_result_is_graded_by_the_waiting_worker(tmp_path):
    def broken(job):
        raise RuntimeError("the worker died")

    mine, theirs = Round(tmp_path, "a1-x-0", lambda: "job"), Round(tmp_path, "a1-x-0", lambda: "job")
    mine.start(_CannedExecutor(broken))
    theirs.start(_CannedExecutor(broken))
    with pytest.raises(RuntimeError):
        mine.collect(_CannedExecutor(broken))
    again = _CannedExecutor(lambda job: _result("ok", [(1, 1)]))
    assert theirs.collect(again) is True and again.jobs == ["job"]


def test_rounds_take_each_items_kth_alternative_and_only_the_masters_items():
    master = master_with_answer("a2", "adam")
    rounds = alternative_rounds("a2", master)
    items = [item for item, _, _ in MODULES["a2"].ALTERNATIVES if item in answer_ids(master)]
    assert sorted(item for entries in rounds for item in entries) == sorted(items)
    assert all(len(entries) == len(set(entries)) for entries in rounds)
    assert [len(entries) for entries in rounds] == sorted((len(entries) for entries in rounds), reverse=True)
    for k, entries in enumerate(rounds):
        for item, (index, _, source) in entries.items():
            assert MODULES["a2"].ALTERNATIVES[index][0] == item and MODULES["a2"].ALTERNATIVES[index][2] == source
            assert [i for i, (other, _, _) in enumerate(MODULES["a2"].ALTERNATIVES) if other == item][k] == index


def test_kill_rate_summary_adds_up_the_items_of_each_assignment():
    lines = ("a2 adam: 7/8 mutants killed, 3/3 alternatives with full marks\n"
             "a10 x: 3/3 mutants killed, 1/1 alternatives with full marks\n"
             "a2 ewma: 5/5 mutants killed, 1/2 alternatives with full marks\n"
             "something else\n")
    assert kill_rate_summary(lines) == (
        "a10: 3/3 mutants killed (100%), 1/1 alternatives with full marks (1 items)\n"
        "a2: 12/13 mutants killed (92%), 4/5 alternatives with full marks (2 items)\n"
        "something else\n")
