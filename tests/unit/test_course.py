"""The one course-root finder and the course's folders (dlcourse.core.course)."""

from __future__ import annotations

import pytest

from dlcourse.core.course import CourseLayout, course_root, find_course_root


def _course(tmp_path):
    root = tmp_path / "course"
    (root / "source" / "a1_autodiff").mkdir(parents=True)
    (root / "source" / "a1_autodiff" / "a1_autodiff.ipynb").write_text("{}")
    (root / "source" / "empty").mkdir()
    (root / "nbgrader_config.py").write_text("")
    return root


def test_the_course_is_found_at_or_above_the_working_folder(tmp_path, monkeypatch):
    root = _course(tmp_path)
    deep = root / "release" / "a1_autodiff"
    deep.mkdir(parents=True)
    assert find_course_root(deep) == root.resolve()
    monkeypatch.chdir(deep)
    monkeypatch.delenv("DLCOURSE_ROOT", raising=False)
    assert course_root() == root.resolve()


def test_an_explicit_course_wins_over_the_environment_and_the_environment_over_the_folder(tmp_path, monkeypatch):
    root = _course(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("DLCOURSE_ROOT", str(other))
    assert course_root() == other.resolve()
    assert course_root(root) == root.resolve()


def test_a_folder_without_config_is_its_own_root(tmp_path):
    assert find_course_root(tmp_path) == tmp_path.resolve()


def test_layout_lists_assignments_with_masters_and_students_with_folders(tmp_path):
    root = _course(tmp_path)
    layout = CourseLayout(root)
    assert layout.assignments() == ["a1_autodiff"]
    for student in ("bob", "ada", ".hidden"):
        (layout.submission_dir(student, "a1_autodiff")).mkdir(parents=True)
    (layout.submitted / "carl").mkdir()
    assert layout.students("a1_autodiff") == ["ada", "bob"]
    assert layout.result_path("ada", "a1_autodiff").parent == layout.autograded / "ada" / "a1_autodiff"


def test_a_wrong_assignment_name_is_answered_with_the_closest_one(tmp_path):
    layout = CourseLayout(_course(tmp_path))
    assert layout.require_assignment("a1_autodiff") == layout.source / "a1_autodiff"
    with pytest.raises(FileNotFoundError, match=r"no assignment 'a1_autodif'.*a1_autodiff.*did you mean 'a1_autodiff'"):
        layout.require_assignment("a1_autodif")
    with pytest.raises(FileNotFoundError, match="is not a course"):
        CourseLayout(tmp_path / "nowhere").require_assignment("a1")
