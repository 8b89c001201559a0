"""The command line (dlcourse.cli): plain-text help with an example, wrong names, exit codes. No kernels."""

from __future__ import annotations

import random
import re
import string

import pytest

from dlcourse import cli
from dlcourse.core.course import no_such

COMMANDS = ("release", "grade", "feedback", "demo", "handin", "lab", "data", "student-kit", "config")
RST_MARKUP = re.compile(r"``|:(class|func|mod|data|meth):`|^\.\. |::$", re.M)


def help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        cli.main([*argv, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ("",) + COMMANDS)
def test_every_help_is_plain_text_with_an_example_of_that_command_and_the_exit_codes(capsys, command):
    text = help_text(capsys, *([command] if command else []))
    assert not RST_MARKUP.search(text), RST_MARKUP.search(text).group(0)
    example = re.search(r"^example:\n  (.+)$", text, re.M)
    assert example, text
    assert example.group(1).startswith(f"dlcourse {command}".strip() + " ")
    assert "exit codes: 0 done, 1 refused" in text and "2 usage" in text


def test_the_main_help_lists_every_command(capsys):
    text = help_text(capsys)
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", text, re.M), command


@pytest.mark.parametrize("argv", (["grade"], ["feedback"], ["grade", "a", "--workers", "many"], ["nosuchcommand"],
                                  ["feedback", "a", "--nosuchoption"]))
def test_a_usage_error_exits_with_2(capsys, argv):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == cli.EXIT_USAGE == 2
    assert "usage:" in capsys.readouterr().err


def random_names(rng: random.Random, count: int) -> list[str]:
    names = set()
    while len(names) < count:
        names.add(rng.choice(string.ascii_lowercase) + "".join(
            rng.choice(string.ascii_lowercase + string.digits + "_") for _ in range(rng.randint(5, 12))))
    return sorted(names)


def misspell(rng: random.Random, name: str) -> str:
    """One typo: a letter dropped, doubled or swapped with the next."""
    at = rng.randrange(1, len(name) - 1)
    kind = rng.choice(("drop", "double", "swap"))
    if kind == "drop":
        return name[:at] + name[at + 1:]
    if kind == "double":
        return name[:at] + name[at] + name[at:]
    return name[:at] + name[at + 1] + name[at] + name[at + 2:] if name[at] != name[at + 1] else name[:at] + name[at + 1:]


def make_course(root, assignments: list[str], students: list[str]):
    (root / "nbgrader_config.py").parent.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text("")
    for assignment in assignments:
        (root / "source" / assignment).mkdir(parents=True)
        (root / "source" / assignment / f"{assignment}.ipynb").write_text("{}")
        (root / "release" / assignment).mkdir(parents=True)
        (root / "release" / assignment / f"{assignment}.ipynb").write_text("{}")
        for student in students:
            (root / "submitted" / student / assignment).mkdir(parents=True)
    return root


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("command", ("grade", "feedback", "release"))
def test_a_mistyped_assignment_is_refused_with_the_assignments_there_are_and_the_closest(tmp_path, capsys, monkeypatch,
                                                                                     seed, command):
    rng = random.Random(seed)
    assignments = random_names(rng, rng.randint(2, 5))
    root = make_course(tmp_path / "course", assignments, ["alice"])
    wanted = rng.choice(assignments)
    typo = misspell(rng, wanted)
    monkeypatch.delenv("DLCOURSE_ROOT", raising=False)
    code, text = run_cli(capsys, "--course", str(root), command, typo)
    assert code == cli.EXIT_REFUSED == 1
    assert f"there is no assignment {typo!r}" in text
    assert all(a in text for a in assignments)
    assert f"did you mean {wanted!r}" in text or wanted != _closest(typo, assignments)
    assert "submissions found" not in text


def _closest(name, known):
    import difflib

    found = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return found[0] if found else None


@pytest.mark.parametrize("seed", range(6))
def test_a_mistyped_student_is_refused_with_the_students_there_are_and_the_closest(tmp_path, capsys, seed):
    rng = random.Random(100 + seed)
    students = random_names(rng, rng.randint(2, 6))
    root = make_course(tmp_path / "course", ["hw1"], students)
    wanted = rng.choice(students)
    typo = misspell(rng, wanted)
    code, text = run_cli(capsys, "--course", str(root), "feedback", "hw1", "--student", typo)
    assert code == cli.EXIT_REFUSED
    assert f"there is no student {typo!r}" in text
    assert all(s in text for s in students)
    if _closest(typo, students) == wanted:
        assert f"did you mean {wanted!r}" in text


def test_feedback_of_an_ungraded_assignment_is_refused_with_what_to_run(tmp_path, capsys):
    root = make_course(tmp_path / "course", ["hw1"], ["alice"])
    code, text = run_cli(capsys, "--course", str(root), "feedback", "hw1")
    assert code == cli.EXIT_REFUSED
    assert "dlcourse grade hw1" in text


def test_a_course_without_source_is_named_as_not_a_course(tmp_path, capsys):
    code, text = run_cli(capsys, "--course", str(tmp_path), "grade", "hw1")
    assert code == cli.EXIT_REFUSED
    assert "is not a course" in text


@pytest.mark.parametrize("seed", range(4))
def test_a_mistyped_handin_assignment_lists_each_folder_once_and_the_closest(tmp_path, capsys, monkeypatch, seed):
    rng = random.Random(200 + seed)
    assignments = random_names(rng, 3)
    root = make_course(tmp_path / "course", assignments, [])
    monkeypatch.chdir(root)  # the working folder is the course: the folder it names is the same one
    wanted = rng.choice(assignments)
    typo = misspell(rng, wanted)
    code, text = run_cli(capsys, "--course", str(root), "handin", typo, "--no-tests", "--no-pdf")
    assert code == cli.EXIT_REFUSED
    looked = re.search(r"looked in (.*?)\)", text).group(1).split(", ")
    assert len(looked) == len(set(looked)), looked
    if _closest(typo, assignments) == wanted:
        assert f"Did you mean {wanted!r}" in text


@pytest.mark.parametrize("seed", range(20))
def test_no_such_lists_every_known_name_and_suggests_only_a_known_one(seed):
    rng = random.Random(300 + seed)
    known = random_names(rng, rng.randint(0, 6))
    name = misspell(rng, rng.choice(known)) if known and rng.random() < 0.7 else "zz" + str(seed)
    text = no_such("notebook", name, known, "somewhere")
    assert f"there is no notebook {name!r} in somewhere" in text
    assert all(k in text for k in known) and ("(notebooks: none)" in text) == (not known)
    suggested = re.search(r"did you mean '([^']*)'", text)
    assert suggested is None or suggested.group(1) in known


def test_the_lab_ships_a_page_config_that_turns_jupyters_news_off(tmp_path, monkeypatch):
    from jupyterlab_server.config import get_page_config

    from dlcourse.student import lab

    env = lab.lab_env(tmp_path)
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", env["JUPYTER_CONFIG_PATH"])
    config = get_page_config([], str(tmp_path / "no-settings"))
    disabled = config.get("disabledExtensions", [])  # jupyterlab_server gives the enabled ones as a list
    assert lab.NEWS_PLUGIN in (disabled if isinstance(disabled, list) else [k for k, v in disabled.items() if v])


@pytest.mark.parametrize("seed", range(4))
def test_a_mistyped_submissions_folder_is_refused_with_the_folders_there_are(tmp_path, capsys, seed):
    rng = random.Random(400 + seed)
    root = make_course(tmp_path / "course", ["hw1"], ["alice"])
    folders = random_names(rng, 3)
    for folder in folders:
        (tmp_path / folder).mkdir()
    wanted = rng.choice(folders)
    typo = misspell(rng, wanted)
    code, text = run_cli(capsys, "--course", str(root), "grade", "hw1", "--submissions", str(tmp_path / typo))
    assert code == cli.EXIT_REFUSED
    assert f"there is no folder {typo!r}" in text
    assert all(f in text for f in folders)
    if _closest(typo, folders + ["course"]) == wanted:
        assert f"did you mean {wanted!r}" in text
