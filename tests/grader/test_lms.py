"""The round trip through an LMS: ``dlcourse collect`` -> ``grade`` -> ``export``, groups of two.

The tests write each LMS's download themselves, in its layout (see docs/lms.md): Moodle's "Download all
submissions" zip, Canvas's "Download Submissions" zip, GitHub Classroom's cloned repositories, and
``dlcourse handin`` zips. Everything but one test runs without a kernel; the round trip grades the tiny
course once (six groups, twelve students).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import subprocess
import unicodedata
import zipfile
from pathlib import Path

import nbformat
import pytest

from dlcourse.lms.collect import collect, parse_deadline, plan_collect, write_collect
from dlcourse.core.course import CourseLayout
from dlcourse.lms.export import (CANVAS_COLUMNS, MOODLE_COLUMNS, GradeRow, canvas_csv, moodle_feedback_name,
                             moodle_worksheet, plain_csv)
from dlcourse.grading.groups import share_with_group
from dlcourse.grading.reports import load_result, store_result
from dlcourse.grading.results import CellGrade, NotebookResult, Status, SubmissionResult
from dlcourse.student.handin import HandinResult, _write_zip, group_slug
from dlcourse.lms.roster import Roster, Student, read_groups
from tiny_course import ASSIGNMENT, GOOD_CUBE, GOOD_SQUARE, NOTEBOOK, WRONG_CUBE, WRONG_SQUARE, template_course

#: The fixture course: 12 students, in 6 groups of two (names with accents, particles, a hyphen).
STUDENTS = [
    Student("s01", "Ada Lovelace", "ada@uni.example", "1101", "ada-l"),
    Student("s02", "Alan Turing", "alan@uni.example", "1102", "aturing"),
    Student("s03", "Émilie du Châtelet", "emilie@uni.example", "1103", "emilie"),
    Student("s04", "Kurt Gödel", "kurt@uni.example", "1104", "kgodel"),
    Student("s05", "Grace Hopper", "grace@uni.example", "1105", "ghopper"),
    Student("s06", "Emmy Noether", "emmy@uni.example", "1106", "enoether"),
    Student("s07", "John von Neumann", "john@uni.example", "1107", "jvn"),
    Student("s08", "Sofia Kovalevskaya", "sofia@uni.example", "1108", "sofiak"),
    Student("s09", "Srinivasa Ramanujan", "srini@uni.example", "1109", "ramanujan"),
    Student("s10", "Marie Skłodowska-Curie", "marie@uni.example", "1110", "mcurie"),
    Student("s11", "Niels Bohr", "niels@uni.example", "1111", "nbohr"),
    Student("s12", "Hedy Lamarr", "hedy@uni.example", "1112", "hlamarr"),
]
PAIRS = [("s01", "s02"), ("s03", "s04"), ("s05", "s06"), ("s07", "s08"), ("s09", "s10"), ("s11", "s12")]
BY_ID = {s.student_id: s for s in STUDENTS}
DEADLINE = dt.datetime(2026, 12, 1, 12, 0).astimezone()
PDF = b"%PDF-1.4\n% a stand-in for the hand-in's PDF\n"


def write_roster(root: Path, students=STUDENTS) -> None:
    with open(root / "roster.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "name", "email", "lms_id", "github"])
        for s in students:
            writer.writerow([s.student_id, s.name, s.email, s.lms_id, s.github])


def names_of(*ids: str) -> str:
    return ", ".join(BY_ID[i].name for i in ids)


def notebook_bytes(names: str | None, base=None, answers: dict[str, str] | None = None, marker: str = "") -> bytes:
    """A notebook whose first cell is the names cell ``NAMES = "..."`` (none when ``names`` is None)."""
    notebook = nbformat.from_dict(json.loads(json.dumps(base))) if base is not None else nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1")])
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in (answers or {}):
            cell.source = answers[grade_id]
    if names is not None:
        notebook.cells.insert(0, nbformat.v4.new_code_cell(f"NAMES = {names!r}"))
    if marker:
        notebook.cells.append(nbformat.v4.new_markdown_cell(marker))
    return nbformat.writes(notebook).encode()


# --------------------------------------------------------------------------
# Each LMS's download, written as that LMS writes it.


def _zip_entry(bundle: zipfile.ZipFile, name: str, data: bytes, when: dt.datetime) -> None:
    local = when.astimezone().replace(tzinfo=None)
    bundle.writestr(zipfile.ZipInfo(name, date_time=local.timetuple()[:6]), data)


def moodle_zip(path: Path, entries, *, folders: bool = True, moodle_41: bool = False) -> Path:
    """Moodle "Download all submissions": ``Full Name_<participant id>_assignsubmission_file_[/]<file>``.

    Moodle 4.1 and later name the folders without the trailing "_" (see importziplib.php, docs/lms.md).
    """
    with zipfile.ZipFile(path, "w") as bundle:
        for full_name, participant, files, when in entries:
            prefix = f"{full_name}_{participant}_assignsubmission_file" + ("" if moodle_41 and folders else "_")
            for name, data in files.items():
                _zip_entry(bundle, f"{prefix}/{name}" if folders else f"{prefix}{name}", data, when)
    return path


def canvas_zip(path: Path, entries) -> Path:
    """Canvas "Download Submissions": ``lastnamefirstname[_LATE]_<user id>_<submission id>_<file>``."""
    with zipfile.ZipFile(path, "w") as bundle:
        for student, submission_id, late, files, when in entries:
            given, family = student.given_and_family
            slug = "".join(ch for ch in unicodedata.normalize("NFKD", family + given).encode("ascii", "ignore")
                           .decode().casefold() if ch.isalnum())
            for name, data in files.items():
                _zip_entry(bundle, f"{slug}{'_LATE' if late else ''}_{student.lms_id}_{submission_id}_{name}",
                           data, when)
    return path


def github_folder(root: Path, entries) -> Path:
    """``gh classroom clone student-repos``: one git repository ``<assignment>-<user or team>`` each."""
    root.mkdir(parents=True, exist_ok=True)
    for owner, files, when in entries:
        repo = root / f"{ASSIGNMENT}-{owner}"
        repo.mkdir()
        for name, data in files.items():
            (repo / name).write_bytes(data)
        stamp = when.isoformat()
        git = ["git", "-C", str(repo), "-c", "user.name=Student", "-c", "user.email=s@uni.example"]
        env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp, "PATH": "/usr/bin:/bin", "HOME": str(root)}
        subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
        subprocess.run(git + ["add", "-A"], check=True, env=env)
        subprocess.run(git + ["commit", "-q", "-m", "hand-in"], check=True, env=env)
    return root


def handin_zip(folder: Path, names: list[str], notebook: bytes, when: dt.datetime) -> Path:
    """A ``dlcourse handin`` zip, written by dlcourse.student.handin's own writer."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{ASSIGNMENT}_{group_slug(names)}"
    pdf = folder / f"{stem}.pdf.tmp"
    pdf.write_bytes(PDF)
    result = HandinResult(folder / f"{stem}.zip", names, ASSIGNMENT, [])
    _write_zip(result.zip_path, stem, {NOTEBOOK: notebook}, {NOTEBOOK: pdf}, result, when)
    pdf.unlink()
    return result.zip_path


def bare_course(root: Path, students=STUDENTS) -> CourseLayout:
    """A course with a master (collect needs the assignment) and the roster; no release, no kernel."""
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    (root / "source" / ASSIGNMENT / NOTEBOOK).write_bytes(notebook_bytes(None))
    write_roster(root, students)
    return CourseLayout(root)


def at(hour: int, minute: int = 0, day: int = 1) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute).astimezone()


def collect_rows(layout: CourseLayout) -> list[dict]:
    with open(layout.reports / ASSIGNMENT / "collect.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def warnings_text(layout: CourseLayout) -> str:
    path = layout.reports / ASSIGNMENT / "WARNINGS.txt"
    return path.read_text() if path.exists() else ""


def submitted_marker(layout: CourseLayout, student: str) -> str:
    """The last cell of the student's collected notebook (the tests put a marker there)."""
    notebook = nbformat.read(str(layout.submission_dir(student, ASSIGNMENT) / NOTEBOOK), as_version=4)
    return notebook.cells[-1].source


# --------------------------------------------------------------------------
# Roster matching.


def _variants(name: str, rng: random.Random) -> list[str]:
    words = name.split()
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    reordered = " ".join(words[-1:] + words[:-1])
    shuffled = words[:]
    rng.shuffle(shuffled)
    return [name.upper(), name.lower(), plain, plain.swapcase(), reordered, " ".join(shuffled),
            "  " + "   ".join(words) + " ", unicodedata.normalize("NFD", name)]


@pytest.mark.parametrize("seed", range(5))
def test_every_roster_name_matches_whatever_its_case_accents_and_order(seed):
    roster = Roster(STUDENTS)
    rng = random.Random(seed)
    for student in STUDENTS:
        for variant in _variants(student.name, rng):
            match = roster.match_name(variant)
            assert match.student == student, f"{variant!r} -> {match.problem}"


def test_ids_and_addresses_match_exactly_and_canvas_glued_names_match():
    roster = Roster(STUDENTS)
    for student in STUDENTS:
        assert roster.match_name(student.student_id).student == student
        assert roster.match_name(student.email.upper()).student == student
        given, family = student.given_and_family
        assert roster.match_name((family + given).replace(" ", "").lower()).student == student


def test_a_name_that_fits_two_students_is_ambiguous_and_matches_nobody():
    twins = [Student("t1", "Lee Wong"), Student("t2", "Lee Wong"), Student("t3", "Kim Park"),
             Student("t4", "Kim Park Jones")]
    roster = Roster(twins)
    match = roster.match_name("wong lee")
    assert match.student is None and {s.student_id for s in match.candidates} == {"t1", "t2"}
    assert "ambiguous" in match.problem and "t1" in match.problem and "t2" in match.problem
    # "Kim Park" is one student exactly, though it is also part of "Kim Park Jones"
    assert roster.match_name("Park Kim").student.student_id == "t3"
    only_given = roster.match_name("Kim")
    assert only_given.student is None and "ambiguous" in only_given.problem
    assert roster.match_name("Jones").student is None and "incomplete" in roster.match_name("Jones").problem
    unknown = roster.match_name("Charles Babbage")
    assert unknown.student is None and "not on the roster" in unknown.problem


def test_a_partial_name_matches_the_one_student_it_is_part_of():
    roster = Roster([Student("a", "Ada Augusta Lovelace"), Student("b", "Alan Mathison Turing")])
    assert roster.match_name("Ada Lovelace").student.student_id == "a"
    assert roster.match_name("turing alan").student.student_id == "b"


# --------------------------------------------------------------------------
# Collect: each source, late flags, newer wins, and every warning.


def test_moodle_download_in_folders_and_flat_gives_each_group_one_folder_for_its_representative(tmp_path):
    for folders, moodle_41 in ((True, False), (True, True), (False, False)):
        layout = bare_course(tmp_path / f"course-{folders}-{moodle_41}")
        entries = []
        for index, (first, second) in enumerate(PAIRS):
            uploader = BY_ID[first if index % 2 else second]
            files = {NOTEBOOK: notebook_bytes(names_of(first, second), marker=f"group {index}"),
                     "tiny.pdf": PDF}
            entries.append((uploader.name, uploader.lms_id, files, at(11, index)))
        download = moodle_zip(tmp_path / f"moodle-{folders}-{moodle_41}.zip", entries, folders=folders,
                              moodle_41=moodle_41)
        report = collect(layout, ASSIGNMENT, download)
        assert not report.warnings
        assert layout.students(ASSIGNMENT) == [first for first, _ in PAIRS]
        groups = read_groups(layout, ASSIGNMENT)
        for index, (first, second) in enumerate(PAIRS):
            assert groups[first] == groups[second] and groups[first].representative == first
            assert submitted_marker(layout, first) == f"group {index}"
            assert (layout.submission_dir(first, ASSIGNMENT) / "tiny.pdf").read_bytes() == PDF
        assert {r["action"] for r in collect_rows(layout)} == {"collected"}


def test_canvas_late_marker_and_the_deadline_both_flag_late(tmp_path):
    layout = bare_course(tmp_path / "course")
    entries = []
    for index, (first, second) in enumerate(PAIRS):
        when = at(11) if index < 2 else at(13)  # groups 2.. hand in after the noon deadline
        entries.append((BY_ID[first], 9000 + index, index == 1, {NOTEBOOK: notebook_bytes(names_of(first, second))},
                        when))
    collect(layout, ASSIGNMENT, canvas_zip(tmp_path / "canvas.zip", entries), deadline=DEADLINE)
    late = {r["student_ids"]: r["late"] for r in collect_rows(layout)}
    for index, (first, second) in enumerate(PAIRS):
        expected = "yes" if index >= 1 else "no"  # group 1 by Canvas's _LATE, the others by the deadline
        assert late[f"{first} {second}"] == expected


def test_github_classroom_repositories_are_matched_by_github_user_or_names_cell(tmp_path):
    layout = bare_course(tmp_path / "course")
    entries = [(BY_ID[first].github if index % 2 else f"team-{index}",
                {NOTEBOOK: notebook_bytes(names_of(first, second) if index % 2 == 0 else None), "tiny.pdf": PDF},
                at(10, index))
               for index, (first, second) in enumerate(PAIRS)]
    collect(layout, ASSIGNMENT, github_folder(tmp_path / "repos", entries), deadline=DEADLINE)
    rows = {r["origin"]: r for r in collect_rows(layout)}
    for index, (first, second) in enumerate(PAIRS):
        origin = f"{ASSIGNMENT}-{entries[index][0]}"
        # a team repository names both in its names cell; a personal one without names is its owner's
        assert rows[origin]["student_ids"] == (f"{first} {second}" if index % 2 == 0 else first)
        assert rows[origin]["handed_in"] == at(10, index).isoformat(timespec="seconds")
        assert rows[origin]["late"] == "no"
    assert "has 1 member" in warnings_text(layout)


def test_newer_hand_in_wins_within_a_download_and_across_collects(tmp_path):
    layout = bare_course(tmp_path / "course")
    first, second = PAIRS[0]
    names = [BY_ID[first].name, BY_ID[second].name]
    old = handin_zip(tmp_path / "old", names, notebook_bytes(", ".join(names), marker="OLD"), at(9))
    new = handin_zip(tmp_path / "new", names, notebook_bytes(", ".join(names), marker="NEW"), at(10))
    collect(layout, ASSIGNMENT, new)
    assert submitted_marker(layout, first) == "NEW"
    report = collect(layout, ASSIGNMENT, old)  # an older download later: kept the newer
    assert submitted_marker(layout, first) == "NEW"
    actions = {r["handed_in"]: r["action"] for r in report.rows}
    assert actions[at(9).isoformat(timespec="seconds")] == "superseded"
    assert actions[at(10).isoformat(timespec="seconds")] == "kept"
    # both members uploaded to Moodle, one later: the later one is the group's, and no one is warned
    entries = [(BY_ID[first].name, BY_ID[first].lms_id, {NOTEBOOK: notebook_bytes(", ".join(names), marker="A")},
                at(11)),
               (BY_ID[second].name, BY_ID[second].lms_id, {NOTEBOOK: notebook_bytes(", ".join(names), marker="B")},
                at(11, 30))]
    report = collect(layout, ASSIGNMENT, moodle_zip(tmp_path / "m.zip", entries))
    assert submitted_marker(layout, first) == "B"
    assert not report.warnings
    assert len(layout.students(ASSIGNMENT)) == 1


def test_two_hand_ins_claiming_one_student_are_reported_and_the_newer_is_graded(tmp_path):
    layout = bare_course(tmp_path / "course")
    # s01 hands in with s02 at 10:00, and with s03 at 11:00: s01 is in two groups
    entries = [(BY_ID["s02"].name, "1102", {NOTEBOOK: notebook_bytes(names_of("s01", "s02"), marker="X")}, at(10)),
               (BY_ID["s03"].name, "1103", {NOTEBOOK: notebook_bytes(names_of("s01", "s03"), marker="Y")}, at(11))]
    report = collect(layout, ASSIGNMENT, moodle_zip(tmp_path / "m.zip", entries))
    text = warnings_text(layout)
    assert "two hand-ins claim s01" in text and "s01 is in two groups" in text
    groups = read_groups(layout, ASSIGNMENT)
    assert groups["s01"].members == ("s01", "s03")  # the newer
    assert groups["s02"].members == ("s02",)  # the older still counts for s02, who is in no newer one
    assert submitted_marker(layout, "s01") == "Y" and submitted_marker(layout, "s02") == "X"
    assert any("s01: older than" in r["reason"] for r in report.rows)


def test_collecting_again_changes_nothing_and_keeps_earlier_warnings(tmp_path):
    from tiny_course import tree_digest

    layout = bare_course(tmp_path / "course")
    entries = [(BY_ID["s02"].name, "1102", {NOTEBOOK: notebook_bytes(names_of("s01", "s02"))}, at(10)),
               (BY_ID["s03"].name, "1103", {NOTEBOOK: notebook_bytes(names_of("s01", "s03"))}, at(11)),
               (BY_ID["s07"].name, "1107", {NOTEBOOK: notebook_bytes("John von Neumann, Charles Babbage")}, at(10))]
    download = moodle_zip(tmp_path / "m.zip", entries)
    first = collect(layout, ASSIGNMENT, download)
    groups, files = read_groups(layout, ASSIGNMENT), tree_digest(layout.submitted)
    again = collect(layout, ASSIGNMENT, download)
    assert read_groups(layout, ASSIGNMENT) == groups and tree_digest(layout.submitted) == files
    assert set(again.warnings) == set(first.warnings)
    # a second download (Canvas) adds its group; what the first one warned about is still listed
    other = canvas_zip(tmp_path / "c.zip", [(BY_ID["s09"], 1, False, {NOTEBOOK: notebook_bytes(names_of("s09", "s10"))},
                                             at(11))])
    collect(layout, ASSIGNMENT, other, source="canvas")
    assert read_groups(layout, ASSIGNMENT)["s10"].members == ("s09", "s10")
    assert {k: v for k, v in read_groups(layout, ASSIGNMENT).items() if k not in ("s09", "s10")} == groups
    assert "'Charles Babbage' is not on the roster" in warnings_text(layout)
    assert "s01 is in two groups" in warnings_text(layout)


def _random_moodle_download(path: Path, rng: random.Random) -> Path:
    """Hand-ins of random groups (some overlapping, some with a stranger), at random times."""
    entries = []
    for index in range(rng.randint(2, 6)):
        group = rng.sample([s.student_id for s in STUDENTS], rng.choice([1, 2, 2, 3]))
        names = [BY_ID[m].name for m in group] + (["Charles Babbage"] if rng.random() < 0.2 else [])
        uploader = BY_ID[group[0]]
        entries.append((uploader.name, uploader.lms_id, {NOTEBOOK: notebook_bytes(", ".join(names), marker=str(index))},
                        at(9 + rng.randint(0, 3), rng.randint(0, 59))))
    return moodle_zip(path, entries)


@pytest.mark.parametrize("seed", range(4))
def test_plan_collect_writes_nothing_and_writing_its_plan_is_what_collect_does(tmp_path, seed):
    from tiny_course import tree_digest

    rng = random.Random(seed)
    downloads = [_random_moodle_download(tmp_path / f"m{i}.zip", rng) for i in range(2)]
    planned, direct = bare_course(tmp_path / "planned"), bare_course(tmp_path / "direct")
    for download in downloads:  # the second download meets what the first collected
        before = (tree_digest(planned.submitted), tree_digest(planned.reports))
        plan = plan_collect(planned, ASSIGNMENT, download, deadline=DEADLINE)
        assert (tree_digest(planned.submitted), tree_digest(planned.reports)) == before
        from_plan = write_collect(plan)
        report = collect(direct, ASSIGNMENT, download, deadline=DEADLINE)
        assert from_plan.rows == report.rows and from_plan.warnings == report.warnings
        assert from_plan.groups == report.groups
        assert tree_digest(planned.submitted) == tree_digest(direct.submitted)
        assert collect_rows(planned) == collect_rows(direct)
        assert read_groups(planned, ASSIGNMENT) == read_groups(direct, ASSIGNMENT)


def test_a_group_of_one_is_warned_unless_the_course_allows_one(tmp_path):
    for size, warned in ((None, True), (1, False)):
        root = tmp_path / f"course-{size}"
        layout = bare_course(root)
        (root / "nbgrader_config.py").write_text("c = get_config()\n" + (
            f"c.Dlcourse.group_size = {size}\n" if size else ""))
        entries = [(BY_ID["s05"].name, "1105", {NOTEBOOK: notebook_bytes(names_of("s05"))}, at(10))]
        report = collect(layout, ASSIGNMENT, moodle_zip(tmp_path / f"m{size}.zip", entries))
        assert ("group s05 has 1 member" in warnings_text(layout)) is warned
        assert ("has 1 member" in report.rows[0]["reason"]) is warned
        assert layout.students(ASSIGNMENT) == ["s05"]  # collected, never dropped


def test_a_name_not_on_the_roster_is_warned_and_the_known_member_is_collected(tmp_path):
    layout = bare_course(tmp_path / "course")
    entries = [(BY_ID["s07"].name, "1107", {NOTEBOOK: notebook_bytes("John von Neumann, Charles Babbage")}, at(10)),
               ("Charles Babbage", "4242", {NOTEBOOK: notebook_bytes("Charles Babbage, Augustus De Morgan")}, at(10))]
    report = collect(layout, ASSIGNMENT, moodle_zip(tmp_path / "m.zip", entries))
    text = warnings_text(layout)
    assert "'Charles Babbage' is not on the roster" in text and "'Augustus De Morgan' is not on the roster" in text
    assert layout.students(ASSIGNMENT) == ["s07"]
    by_origin = {r["origin"].split("_")[0]: r for r in report.rows}
    assert by_origin["Charles Babbage"]["action"] == "unmatched"
    assert by_origin["John von Neumann"]["action"] == "collected"


def test_collect_refuses_without_a_roster_and_parses_deadlines(tmp_path):
    from dlcourse.lms.roster import RosterError

    layout = bare_course(tmp_path / "course")
    (layout.root / "roster.csv").unlink()
    with pytest.raises(RosterError, match="roster.csv"):
        collect(layout, ASSIGNMENT, moodle_zip(tmp_path / "m.zip", []))
    assert parse_deadline("2026-12-01 12:00") == DEADLINE


# --------------------------------------------------------------------------
# Group results for every member (no kernel: results written by hand).


def _result(student: str, square: float, cube: float) -> SubmissionResult:
    cells = [CellGrade(NOTEBOOK[:-6], "test_square", "test", 2.0, square),
             CellGrade(NOTEBOOK[:-6], "test_cube", "test", 1.0, cube),
             CellGrade(NOTEBOOK[:-6], "why", "manual", 1.0, None)]
    return SubmissionResult(student, ASSIGNMENT, Status.OK, [NotebookResult(NOTEBOOK[:-6], Status.OK, cells)])


def test_the_representatives_result_is_stored_for_every_member(tmp_path):
    layout = bare_course(tmp_path / "course")
    entries = [(BY_ID[a].name, BY_ID[a].lms_id, {NOTEBOOK: notebook_bytes(names_of(a, b))}, at(10))
               for a, b in PAIRS]
    collect(layout, ASSIGNMENT, moodle_zip(tmp_path / "m.zip", entries))
    rng = random.Random(3)
    results = [_result(a, rng.choice([0.0, 2.0]), rng.choice([0.0, 1.0])) for a, _ in PAIRS]
    for result in results:
        store_result(layout, result)
    recorded = []
    everyone, groups, warnings = share_with_group(layout, ASSIGNMENT, results, record=recorded.append)
    assert not warnings and len(everyone) == 12 and len(recorded) == 6
    for result, (a, b) in zip(results, PAIRS):
        stored = load_result(layout.result_path(b, ASSIGNMENT))
        assert stored.student_id == b and stored.score == result.score and groups[b] == groups[a] == f"{a}+{b}"


# --------------------------------------------------------------------------
# Export formats, read back with csv.


def _rows(seed: int) -> list[GradeRow]:
    rng = random.Random(seed)
    rows = []
    for index, student in enumerate(STUDENTS):
        row = GradeRow(student, "+".join(PAIRS[index // 2]))
        row.handed_in = rng.random() > 0.2
        row.auto_score, row.auto_max = rng.choice([0, 1, 2, 3]), 3.0
        row.manual_score, row.manual_max = rng.choice([0, 0.5, 1]), 1.0
        row.status = "ok" if row.handed_in else "no hand-in"
        row.submitted_at = at(11, index).isoformat(timespec="seconds") if row.handed_in else ""
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", range(3))
def test_moodle_worksheet_reads_back_with_moodles_columns_and_each_grade(seed):
    rows = _rows(seed)
    table = list(csv.DictReader(io.StringIO(moodle_worksheet(rows))))
    assert list(table[0].keys()) == MOODLE_COLUMNS
    for line, row in zip(table, rows):
        assert line["Identifier"] == f"Participant {row.student.lms_id}"
        assert line["Full name"] == row.student.name and line["Email address"] == row.student.email
        assert line["Grade"] == (f"{row.score:.2f}" if row.handed_in else "")
        assert float(line["Maximum Grade"]) == row.max_score
        assert line["Status"] == ("Submitted for grading" if row.handed_in else "No submission")


def test_moodle_template_keeps_its_rows_and_scales_to_its_maximum_grade():
    rows = _rows(7)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MOODLE_COLUMNS)
    for s in reversed(STUDENTS):
        writer.writerow([f"Participant {s.lms_id}", s.name, s.email, "Submitted for grading", "", "100.00", "Yes",
                         "-", "-", ""])
    writer.writerow(["Participant 9999", "Someone Else", "x@uni.example", "No submission", "", "100.00", "Yes", "-",
                     "-", ""])
    table = list(csv.DictReader(io.StringIO(moodle_worksheet(rows, out.getvalue()))))
    assert [line["Identifier"] for line in table] == [f"Participant {s.lms_id}" for s in reversed(STUDENTS)] + [
        "Participant 9999"]
    by_pid = {line["Identifier"]: line for line in table}
    for row in rows:
        expected = f"{row.score / row.max_score * 100:.2f}" if row.handed_in else ""
        assert by_pid[f"Participant {row.student.lms_id}"]["Grade"] == expected
    assert by_pid["Participant 9999"]["Grade"] == ""


@pytest.mark.parametrize("seed", range(3))
def test_canvas_import_reads_back_with_canvas_columns_and_each_grade(seed):
    rows = _rows(seed)
    lines = list(csv.reader(io.StringIO(canvas_csv(rows, ASSIGNMENT, "4711"))))
    assert lines[0] == CANVAS_COLUMNS + [f"{ASSIGNMENT} (4711)"]
    assert lines[1][0].strip() == "Points Possible" and float(lines[1][-1]) == rows[0].max_score
    for line, row in zip(lines[2:], rows):
        given, family = row.student.given_and_family
        assert line[0] == f"{family}, {given}" and line[1] == row.student.lms_id
        assert line[-1] == (f"{row.score:g}" if row.handed_in else "")


def test_canvas_template_fills_only_the_assignments_column():
    rows = _rows(11)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CANVAS_COLUMNS + ["Other (1)", f"{ASSIGNMENT} (4711)"])
    for s in STUDENTS:
        writer.writerow([s.name, s.lms_id, "", "", "Sec A", "5", ""])
    table = list(csv.DictReader(io.StringIO(canvas_csv(rows, ASSIGNMENT, "4711", out.getvalue()))))
    for line, row in zip(table, rows):
        assert line["Other (1)"] == "5" and line["Section"] == "Sec A"
        assert line[f"{ASSIGNMENT} (4711)"] == (f"{row.score:g}" if row.handed_in else "")


def test_plain_csv_reads_back_with_every_number():
    rows = _rows(5)
    table = list(csv.DictReader(io.StringIO(plain_csv(rows))))
    for line, row in zip(table, rows):
        assert line["student_id"] == row.student.student_id and line["group"] == row.group
        assert float(line["auto_score"]) + float(line["manual_score"]) == row.score
        assert line["score"] == (f"{row.score:g}" if row.handed_in else "")


def test_moodle_feedback_file_names_carry_the_participant_id_after_the_first_underscore():
    for student in STUDENTS + [Student("x", "Odd_Name Person", lms_id="77")]:
        name = moodle_feedback_name(student, "tiny.html")
        parts = name.split("_", 4)
        assert parts[1] == student.lms_id and parts[2:4] == ["assignfeedback", "file"]
        assert name.endswith("_tiny.html")


# --------------------------------------------------------------------------
# The round trip: four sources -> collect -> grade (once) -> formgrader's points -> export.

ANSWERS = [  # per group: (square, cube) sources, and the manual points a grader gives
    ((GOOD_SQUARE, GOOD_CUBE), 1.0), ((GOOD_SQUARE, WRONG_CUBE), 0.5), ((WRONG_SQUARE, GOOD_CUBE), 0.0),
    ((WRONG_SQUARE, WRONG_CUBE), 1.0), ((GOOD_SQUARE, GOOD_CUBE), 0.0), ((GOOD_SQUARE, WRONG_CUBE), 1.0),
]
POINTS = {GOOD_SQUARE: 2.0, WRONG_SQUARE: 0.0, GOOD_CUBE: 1.0, WRONG_CUBE: 0.0}  # the tiny master's points


def dlcourse_here(course, *args: str):
    """``dlcourse --course COURSE ARGS`` in this process (collect and export run no student code)."""
    import contextlib

    from dlcourse.cli import main
    from tiny_course import GradeRun

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--course", str(course.root), *args])
    return GradeRun(code, out.getvalue(), err.getvalue(), 0.0)


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    course = template_course(tmp_path_factory).copy(tmp_path_factory.mktemp("lms") / "course")
    write_roster(course.root)
    downloads = tmp_path_factory.mktemp("downloads")
    base = course.released_notebook()

    def nb(index):
        (square, cube), _ = ANSWERS[index]
        a, b = PAIRS[index]
        return notebook_bytes(names_of(a, b), base, {"square": square, "cube": cube})

    moodle = moodle_zip(downloads / "moodle.zip", [
        (BY_ID[PAIRS[i][1]].name, BY_ID[PAIRS[i][1]].lms_id, {NOTEBOOK: nb(i), "tiny.pdf": PDF}, at(11, i))
        for i in (0, 1)])
    canvas = canvas_zip(downloads / "canvas.zip", [(BY_ID[PAIRS[i][0]], 500 + i, False, {NOTEBOOK: nb(i)}, at(11, i))
                                                   for i in (2, 3)])
    github = github_folder(downloads / "repos", [(f"team{i}", {NOTEBOOK: nb(i), "tiny.pdf": PDF}, at(11, i))
                                                 for i in (4,)])
    handins = downloads / "handins"
    handin_zip(handins, [BY_ID[s].name for s in PAIRS[5]], nb(5), at(13))  # after the deadline
    runs = {}
    for name, path in (("moodle", moodle), ("canvas", canvas), ("github", github), ("handin", handins)):
        runs[f"collect-{name}"] = dlcourse_here(course, "collect", ASSIGNMENT, str(path), "--deadline",
                                                  DEADLINE.isoformat())
    runs["grade"] = course.grade("--workers", "2")
    runs["export-early"] = dlcourse_here(course, "export", ASSIGNMENT, "--to", "csv")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gradebook:  # what formgrader does
        for index, (a, _) in enumerate(PAIRS):
            grade = gradebook.find_grade("why", NOTEBOOK[:-6], ASSIGNMENT, a)
            grade.manual_score = ANSWERS[index][1]
            grade.needs_manual_grade = False
        gradebook.db.commit()
    for target in ("moodle", "canvas", "csv"):  # feedback/ is written once, by the first; the others package it
        runs[f"export-{target}"] = dlcourse_here(course, "export", ASSIGNMENT, "--to", target, "--lms-assignment-id",
                                                 "4711", *(() if target == "moodle" else ("--no-feedback",)))
    return course, runs


def _expected(index: int) -> tuple[float, float]:
    (square, cube), manual = ANSWERS[index]
    return POINTS[square] + POINTS[cube], POINTS[square] + POINTS[cube] + manual


@pytest.mark.slow
def test_round_trip_gives_each_member_their_groups_grade(round_trip):
    course, runs = round_trip
    for name, run in runs.items():
        if name != "export-early":
            assert run.returncode == 0, f"{name}: {run.stdout}\n{run.stderr}"
    layout = CourseLayout(course.root)
    assert layout.students(ASSIGNMENT) == [a for a, _ in PAIRS]  # graded once per group
    with open(course.reports / "grades.csv", newline="") as handle:
        grades = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert set(grades) == set(BY_ID)
    for index, (a, b) in enumerate(PAIRS):
        auto, total = _expected(index)
        for member in (a, b):
            assert float(grades[member]["score"]) == auto and grades[member]["group"] == f"{a}+{b}"
    auto_in_gradebook = course.gradebook_scores()
    assert all(auto_in_gradebook[m] == _expected(i)[0] for i, pair in enumerate(PAIRS) for m in pair)
    with open(course.reports / "export" / "csv" / "grades.csv", newline="") as handle:
        exported = {row["student_id"]: row for row in csv.DictReader(handle)}
    with open(course.reports / "export" / "moodle" / "grading_worksheet.csv", newline="") as handle:
        moodle = {row["Identifier"]: row for row in csv.DictReader(handle)}
    with open(course.reports / "export" / "canvas" / "gradebook_import.csv", newline="") as handle:
        canvas = {row["ID"]: row for row in csv.DictReader(handle)}
    for index, (a, b) in enumerate(PAIRS):
        _, total = _expected(index)
        for member in (a, b):
            assert float(exported[member]["score"]) == total
            assert float(moodle[f"Participant {BY_ID[member].lms_id}"]["Grade"]) == total
            assert float(canvas[BY_ID[member].lms_id][f"{ASSIGNMENT} (4711)"]) == total
            assert exported[member]["late"] == ("yes" if index == 5 else "no")


@pytest.mark.slow
def test_round_trip_refuses_to_export_before_manual_grading_is_done(round_trip):
    _, runs = round_trip
    assert runs["export-early"].returncode == 1
    assert "manual grading of tiny is not finished" in runs["export-early"].stderr
    assert "--partial" in runs["export-early"].stderr


@pytest.mark.slow
def test_round_trip_feedback_reaches_every_member_named_as_the_lms_expects(round_trip):
    course, _ = round_trip
    with zipfile.ZipFile(course.reports / "export" / "moodle" / "feedback_files.zip") as bundle:
        names = set(bundle.namelist())
        texts = {n: bundle.read(n).decode() for n in names}
    assert names == {moodle_feedback_name(s, "tiny.html") for s in STUDENTS}
    for index, (a, b) in enumerate(PAIRS):
        page_a = texts[moodle_feedback_name(BY_ID[a], "tiny.html")]
        page_b = texts[moodle_feedback_name(BY_ID[b], "tiny.html")]
        assert f"{ANSWERS[index][1]:g} / 1 points" in page_b  # the manual points reached the partner
        assert b in page_b and a in page_a
    from tiny_course import HIDDEN_MARKER

    assert not any(HIDDEN_MARKER in text for text in texts.values())
    canvas = course.reports / "export" / "canvas" / "feedback"
    assert len(list(canvas.glob("*_*/tiny.html"))) == 12
