"""Statuses, results and options: order, texts, the JSON a rerun resumes from, and defaults in one place."""

from __future__ import annotations

import json

import pytest

from dlcourse.grading.results import CellGrade, GradingOptions, NotebookResult, Status, SubmissionResult
from dlcourse.sandbox.isolation import Limits


def test_statuses_are_declared_worst_first_and_the_worst_one_wins():
    assert [s.value for s in Status] == ["invalid-notebook", "missing", "memory", "timeout", "crashed", "error",
                                         "renamed", "ok"]
    assert Status.worst(["ok", "renamed", "timeout", "crashed"]) is Status.TIMEOUT
    assert Status.worst([Status.OK, Status.RENAMED]) is Status.RENAMED
    assert Status.worst([]) is Status.OK
    assert all(a.rank < b.rank for a, b in zip(Status, list(Status)[1:]))


def test_a_status_reads_as_its_plain_string_in_csv_json_and_text():
    assert Status.TIMEOUT == "timeout" and str(Status.TIMEOUT) == "timeout" and f"{Status.OK:>4}" == "  ok"
    assert json.dumps({"status": Status.MEMORY}) == '{"status": "memory"}'
    with pytest.raises(ValueError):
        Status("no-such-status")


def test_every_status_has_a_student_facing_text():
    texts = {s: s.student_text for s in Status}
    assert all(isinstance(t, str) and len(t) > 5 for t in texts.values())
    assert len(set(texts.values())) == len(texts)


def _result() -> SubmissionResult:
    cells = [CellGrade("nb", "test_a", "test", 2.0, 2.0), CellGrade("nb", "test_b", "test", 3.0, 0.0, "wrong"),
             CellGrade("nb", "why", "manual", 1.0, None)]
    notebook = NotebookResult("nb", Status.OK, cells, seconds=1.5, graded={"cells": [], "metadata": {}})
    return SubmissionResult("ada", "a1", Status.RENAMED, [notebook], fingerprint="abc", warnings=["w"])


def test_scores_count_automatic_points_only():
    result = _result()
    assert (result.score, result.max_score) == (2.0, 5.0)
    assert (result.notebooks[0].score, result.notebooks[0].max_score) == (2.0, 5.0)


def test_a_result_survives_json_without_its_executed_notebook():
    result = _result()
    data = result.to_json()
    assert "graded" not in data["notebooks"][0]  # the executed notebook is stored once, as .ipynb
    back = SubmissionResult.from_json(json.loads(json.dumps(data)))
    assert back.status is Status.RENAMED and back.notebooks[0].status is Status.OK
    assert back.notebooks[0].graded is None
    assert [vars(c) for c in back.notebooks[0].cells] == [vars(c) for c in result.notebooks[0].cells]
    assert (back.score, back.max_score, back.fingerprint, back.warnings) == (2.0, 5.0, "abc", ["w"])


def test_results_stored_by_the_previous_grader_still_load():
    old = _result().to_json()
    old["notebooks"][0]["graded"] = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    assert SubmissionResult.from_json(old).notebooks[0].graded is not None


def test_options_fingerprint_changes_with_every_option():
    base = GradingOptions().fingerprint()
    variants = [GradingOptions(isolate=False), GradingOptions(cell_timeout=1), GradingOptions(notebook_timeout=1),
                GradingOptions(limits=Limits(memory_bytes=1)), GradingOptions(read_only=["/data"])]
    assert len({base, *(v.fingerprint() for v in variants)}) == len(variants) + 1


def test_default_options_come_from_the_dataclass():
    assert GradingOptions.default("cell_timeout") == GradingOptions().cell_timeout
    assert GradingOptions().limits == Limits()
