"""Step 5b: a group's result recorded for every member.

``dlcourse collect`` puts a group's hand-in under its representative only
(``reports/<assignment>/groups.csv`` names the members), so each group is
graded, and graded by hand in formgrader, once. After grading, the
representative's result is stored for each other member
(``autograded/<member>/<assignment>/``: the graded notebooks and the
result, so feedback is written for them too) and recorded in the gradebook.
"""

from __future__ import annotations

import shutil

from ..core.course import CourseLayout
from ..core.groups import COLLECT_WARNINGS_NAME, read_groups
from .reports import store_result
from .results import SubmissionResult


def collect_warnings(layout: CourseLayout, assignment: str) -> list[str]:
    """What ``dlcourse collect`` warned about for ``assignment`` (so ``WARNINGS.txt`` keeps it)."""
    path = layout.reports / assignment / COLLECT_WARNINGS_NAME
    return [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def share_with_group(layout: CourseLayout, assignment: str, results: list[SubmissionResult], *,
                     record=None) -> tuple[list[SubmissionResult], dict[str, str], list[str]]:
    """Every member's result (the representative's), student -> group, and what to warn about."""
    groups = read_groups(layout, assignment)
    by_student = {r.student_id: r for r in results}
    shared, warnings = [], []
    for result in results:
        group = groups.get(result.student_id)
        if group is None or group.representative != result.student_id:
            continue
        for member in group.members:
            if member == result.student_id:
                continue
            if member in by_student:
                warnings.append(f"{member} of group {group.name} has a submission of their own; graded on it, "
                                f"not on the group's")
                continue
            copy = SubmissionResult.from_json({**result.to_json(), "student_id": member})
            source = layout.autograded_dir(result.student_id, assignment)
            target = layout.autograded_dir(member, assignment)
            target.mkdir(parents=True, exist_ok=True)
            for notebook in result.notebooks:
                graded = source / f"{notebook.name}.ipynb"
                if graded.is_file():
                    shutil.copyfile(graded, target / graded.name)
            store_result(layout, copy)
            if record:
                record(copy)
            shared.append(copy)
    everyone = sorted(results + shared, key=lambda r: r.student_id)
    return everyone, {s: g.name for s, g in groups.items()}, warnings
