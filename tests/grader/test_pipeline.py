"""The nbgrader pipeline end to end: release, grading, gradebook, feedback."""

from __future__ import annotations

import csv
import filecmp
import html
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dlcourse.core.course import CourseLayout
from dlcourse.grading import grade_notebook
from dlcourse.authoring.kit import student_files as kit_files
from dlcourse.core.notebook import nbgrader_meta
from dlcourse.authoring.release import generate_release
from helpers import (RELEASE, ROOT, SOURCE, answer_ids, assignments, master_notebooks, mutant_modules, options,
                     release_path, scratch_course, solution_notebook, item_test_ids, with_answer)

BEGIN = re.compile(r"###\s*BEGIN (SOLUTION|HIDDEN TESTS)")
END = re.compile(r"###\s*END (SOLUTION|HIDDEN TESTS)")


def _regions(master: Path) -> tuple[dict[str, set[str]], set[str]]:
    """Lines of each kind of master-only region, and the public lines."""
    notebook = nbformat.read(str(master), as_version=4)
    public, secret = set(), {"SOLUTION": set(), "HIDDEN TESTS": set()}
    for cell in notebook.cells:
        inside = None
        for line in cell.source.splitlines():
            text = line.strip()
            if BEGIN.search(text):
                inside = BEGIN.search(text).group(1)
                continue
            if END.search(text):
                inside = None
                continue
            (public if inside is None else secret[inside]).add(text)
    return secret, public


def _public_anywhere() -> set[str]:
    return set().union(*(_regions(m)[1] for m in master_notebooks()))


def secret_lines(master: Path, kinds=("SOLUTION", "HIDDEN TESTS")) -> set[str]:
    """Lines that only the master may hold: solution and/or hidden-test regions.

    A line that stands outside the secret regions of any master (e.g.
    `loss.backward()`, `with torch.no_grad():`) gives nothing away.
    """
    secret, _ = _regions(master)
    lines = set().union(*(secret[kind] for kind in kinds)) - _public_anywhere()
    return {line for line in lines if len(line) >= 12 and not line.startswith("#")}


def student_files() -> list[Path]:
    files = [p for p in RELEASE.rglob("*") if p.is_file()]
    # the package's files a student kit carries (the grader's modules never reach students)
    files += [ROOT / "dlcourse" / name for name in kit_files()]
    files += [ROOT / "environment.yml"] if (ROOT / "environment.yml").exists() else []
    return files


def test_every_assignment_has_a_release():
    assert assignments(), "no master notebooks in source/"
    for name in assignments():
        for master in (SOURCE / name).glob("*.ipynb"):
            assert release_path(master).exists(), f"{master} has no release: run `dlcourse release {name}`"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", assignments())
def test_release_is_what_generation_gives_now(assignment, tmp_path):
    layout = CourseLayout(ROOT)
    fresh = generate_release(layout, assignment, release_dir=tmp_path / "release",
                             db_url=f"sqlite:///{tmp_path / 'gradebook.db'}")
    committed = RELEASE / assignment
    comparison = filecmp.dircmp(fresh, committed, ignore=[".ipynb_checkpoints", "__pycache__"])
    stale = comparison.left_only + comparison.right_only + comparison.diff_files
    changed = [name for name in comparison.common_files
               if name.endswith(".ipynb")
               and json.loads((fresh / name).read_text()) != json.loads((committed / name).read_text())]
    assert not stale and not changed, (f"release/{assignment} is not what source/ generates now "
                                       f"({stale + changed}): run `dlcourse release {assignment}` and commit")


def test_nothing_students_get_holds_a_solution_or_hidden_test():
    secrets = {}
    for master in master_notebooks():
        for line in secret_lines(master):
            secrets.setdefault(line, master)
    assert secrets, "found no solution or hidden-test lines in the masters"
    leaks = []
    for path in student_files():
        text = path.read_text(errors="replace")
        if path.is_relative_to(RELEASE) and (BEGIN.search(text) or END.search(text)):
            leaks.append(f"{path.relative_to(ROOT)}: solution or hidden-test marker")
        if path.suffix == ".ipynb":
            text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
        lines = {line.strip() for line in text.splitlines()}
        for line in lines & secrets.keys():
            leaks.append(f"{path.relative_to(ROOT)}: {line!r} (from {secrets[line].name})")
    assert not leaks, "students would see:\n" + "\n".join(leaks[:30])


@pytest.mark.slow
@pytest.mark.parametrize("master", master_notebooks(), ids=lambda p: p.stem)
def test_reference_solution_gets_full_marks_and_blank_gets_zero(master, tmp_path):
    solution = tmp_path / "solution" / master.name
    solution.parent.mkdir()
    nbformat.write(solution_notebook(master), str(solution))
    result = grade_notebook(master, solution, options())
    lost = [f"{c.grade_id}: {c.message[:300]}" for c in result.cells if c.kind == "test" and c.score != c.max_score]
    assert result.status == "ok" and not lost, f"status {result.status} {result.message}; lost: {lost}"
    assert result.max_score > 0

    blank = grade_notebook(master, release_path(master), options())
    assert blank.status == "ok", f"the untouched release notebook should grade without trouble: {blank.message}"
    scored = [c.grade_id for c in blank.cells if c.kind == "test" and c.score]
    assert not scored, f"the untouched release notebook scored points on {scored}"


@pytest.mark.slow
def test_grade_ten_students_with_one_and_two_workers(tmp_path):
    """10 simulated students (solutions, blanks, mutants); same per-cell grades with 1 and 2 workers.

    (The mutation suite grades every mutant; tests/grader/test_engines.py grades a 20-student set with both
    engines. Ten are enough here to keep two workers busy and to show that their order changes nothing.)"""
    master = SOURCE / "a1_autodiff" / "a1_autodiff.ipynb"
    # Mutants of items 1-4, which no other item builds on, so every other cell keeps its points.
    engine = set(answer_ids(master)[answer_ids(master).index("add"):])
    mutants = [m for m in mutant_modules()["a1"].MUTANTS if m[0] not in engine]
    mutants = [mutants[i] for i in sorted(random.Random().sample(range(len(mutants)), 4))]  # a different 4 each run
    plan = {}
    for i in range(3):
        plan[f"solution{i:02d}"] = ("solution", None)
    for i in range(3):
        plan[f"blank{i:02d}"] = ("blank", None)
    for i, (answer_id, description, source) in enumerate(mutants):
        plan[f"mutant{i:02d}"] = ("mutant", (answer_id, source))
    assert len(plan) == 10
    tables = []
    for workers in (1, 2):
        course = scratch_course(tmp_path / f"w{workers}", "a1_autodiff")
        for student, (kind, detail) in plan.items():
            folder = course / "submitted" / student / "a1_autodiff"
            folder.mkdir(parents=True)
            if kind == "solution":
                notebook = solution_notebook(master)
            elif kind == "blank":
                notebook = nbformat.read(str(release_path(master)), as_version=4)
            else:
                notebook = with_answer(solution_notebook(master), *detail)
            nbformat.write(notebook, str(folder / master.name))
        before = _tree_digest(course / "submitted")
        subprocess.run([sys.executable, "-m", "dlcourse", "--course", str(course), "grade", "a1_autodiff",
                        "--workers", str(workers)], check=True, capture_output=True, text=True)
        assert _tree_digest(course / "submitted") == before, "grading changed submitted/"
        cells = _read_csv(course / "reports" / "a1_autodiff" / "cells.csv")
        grades = _read_csv(course / "reports" / "a1_autodiff" / "grades.csv")
        assert sorted(r["student_id"] for r in grades) == sorted(plan)
        assert all(r["status"] == "ok" for r in grades), grades
        by_student = {}
        for row in cells:
            by_student.setdefault(row["student_id"], {})[row["grade_id"]] = row
        for student, (kind, detail) in plan.items():
            rows = by_student[student]
            tests = {gid: row for gid, row in rows.items() if row["score"] != ""}
            if kind == "solution":
                assert all(r["score"] == r["max_score"] for r in tests.values()), (student, rows)
            elif kind == "blank":
                assert all(float(r["score"]) == 0 for r in tests.values()), (student, rows)
            else:
                own = set(item_test_ids(master, detail[0]))
                assert any(tests[g]["score"] != tests[g]["max_score"] for g in own), (student, detail[0])
                # Items whose reference code calls the mutated one may fail too; all others keep their points.
                users = {g for user in dependents(master, detail[0]) for g in item_test_ids(master, user)}
                lost = [g for g, r in tests.items() if g not in own | users and r["score"] != r["max_score"]]
                assert not lost, f"{student} ({detail[0]} mutated) lost points on unrelated {lost}"
        _check_gradebook(course, by_student)
        tables.append(sorted((r["student_id"], r["grade_id"], r["score"]) for r in cells))
    assert tables[0] == tables[1], "one and two workers gave different grades"

    # Feedback shows what failed, never a hidden test or the solution.
    subprocess.run([sys.executable, "-m", "dlcourse", "--course", str(course), "feedback", "a1_autodiff"],
                   check=True, capture_output=True, text=True)
    hidden = secret_lines(master, kinds=("HIDDEN TESTS",))
    solutions = secret_lines(master, kinds=("SOLUTION",))
    for student in ("blank00", "mutant00", "solution00"):
        page = (course / "feedback" / student / "a1_autodiff" / "a1_autodiff.html").read_text()
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        lines = {line.strip() for line in text.splitlines()}
        # What the student wrote may be shown back to them, even where it matches a hidden line.
        submitted = nbformat.read(str(course / "submitted" / student / "a1_autodiff" / master.name), as_version=4)
        own = {line.strip() for cell in submitted.cells for line in cell.source.splitlines()}
        shown = sorted((hidden & lines) - own)
        if student.startswith("blank"):
            shown += sorted(solutions & lines)
        assert not shown, f"feedback of {student} shows master-only lines: {shown[:5]}"
        assert "points" in text


def dependents(master: Path, answer_id: str) -> set[str]:
    """Answer cells whose reference solution uses a name the given answer cell defines."""
    import ast

    notebook = nbformat.read(str(master), as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in notebook.cells
               if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    defined = {node.name for node in ast.parse(answers[answer_id]).body
               if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    users = set()
    for other, source in answers.items():
        used = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
        used |= {n.attr for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Attribute)}
        if other != answer_id and used & defined:
            users.add(other)
    return users


def _check_gradebook(course: Path, by_student: dict) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student, rows in by_student.items():
            for grade_id, row in rows.items():
                if row["score"] == "":
                    continue
                grade = gradebook.find_grade(grade_id, row["notebook"], "a1_autodiff", student)
                assert grade.auto_score == float(row["score"]), (student, grade_id)


def _tree_digest(folder: Path) -> dict:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
