"""Which test cells are plain, which of them must run in the student's kernel and why, the course's settings."""

from __future__ import annotations

import random
import textwrap

import pytest

from dlcourse.core import config, testcode as testcells

#: Statements a plain test is made of; {f} and {g} are student names, {v} a test variable.
PLAIN_STATEMENTS = [
    "assert {f}(3) == [1, 4, 9]",
    "{v} = {f}(2)\nassert {v} == 4, 'wrong'",
    "try:\n    {f}(-1)\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError('no error')",
    "saved = {f}\ndel {f}\ntry:\n    {g}(1)\nexcept NameError:\n    pass\nfinally:\n    {f} = saved",
    "for k in range(3):\n    assert {f}(k) == k * k",
    "import numpy as np\nnp.testing.assert_allclose({f}(4), np.arange(4.0))",
    "import math\nassert math.isclose({f}(0.5), 0.25)",
    "print('{f}(2) =', {f}(2))",
    "def check(x):\n    assert {f}(x) == x * x\ncheck(3)\ncheck(4)",
    "{v} = sorted({f}(5), key=lambda item: -item)",
    "assert isinstance({f}(1), list) and len({f}(2)) == 2",
    "{v} = [{f}(i) for i in range(4)]\nassert all(x >= 0 for x in {v})",
    "obj = {g}()\nobj.total = 3\nassert obj.total == 3",
    "{v} = 0\nif {f}(1) == 1:\n    {v} += 0.5\n{v}",
    "with open('data.txt') as handle:\n    {v} = handle.read()",
]

#: Statements that need the student's kernel, and the words of the reason they give.
KERNEL_STATEMENTS = [
    ("import inspect\nassert inspect.isfunction({f})", "inspect"),
    ("assert '{f}' in globals()", "globals()"),
    ("assert '{f}' in locals()", "locals()"),
    ("{v} = vars()['{f}']", "vars()"),
    ("import sys\nframe = sys._getframe(0)", "sys._getframe"),
    ("ip = get_ipython()", "get_ipython"),
    ("%timeit {f}(3)", "magics"),
    ("!ls", "magics"),
    ("{v} = eval('{f}(2)')", "eval"),
    ("exec('{v} = {f}(2)')", "exec"),
    ("import __main__\nassert __main__.{f}", "__main__"),
    ("{g}(lambda x: x + 1)", "lambda"),
    ("def fake(x):\n    return x\n{f} = fake", "its own function fake"),
    ("def key(x):\n    return x\n{g}(key)", "its own function key"),
    ("def key(x):\n    return x\n{v} = {g}(callback=key)", "its own function key"),
    ("class Stub:\n    pass\n{g}(Stub())", "defines a class (Stub)"),
    ("def bump():\n    global {v}\n    {v} = 1\nbump()", "global"),
    ("import IPython", "IPython"),
]

WRAPPERS = [
    "{body}",
    "if True:\n{indented}",
    "try:\n{indented}\nexcept Exception:\n    raise",
    "for _ in range(1):\n{indented}",
]


def _snippet(statements: list[str], rng: random.Random) -> str:
    names = {"f": rng.choice(["squares", "forward", "f1", "compute"]), "g": rng.choice(["sum_of", "Model", "run"]),
             "v": rng.choice(["result", "out", "x_"])}
    body = "\n".join(s.format(**names) for s in statements)
    wrapper = rng.choice(WRAPPERS) if "%" not in body and "!" not in body else "{body}"
    return wrapper.format(body=body, indented=textwrap.indent(body, "    "))


@pytest.mark.parametrize("seed", range(40))
def test_plain_statements_in_any_order_and_nesting_need_no_kernel(seed):
    rng = random.Random(seed)
    source = _snippet(rng.sample(PLAIN_STATEMENTS, rng.randint(1, 4)), rng)
    assert testcells.kernel_reason(source) is None, source
    assert testcells.is_plain(source)


@pytest.mark.parametrize("seed", range(60))
def test_one_kernel_only_statement_among_plain_ones_sends_the_cell_to_the_kernel_with_its_reason(seed):
    rng = random.Random(seed)
    statement, words = KERNEL_STATEMENTS[seed % len(KERNEL_STATEMENTS)]
    plain = rng.sample(PLAIN_STATEMENTS, rng.randint(0, 3))
    statements = plain[:]
    statements.insert(rng.randint(0, len(plain)), statement)
    source = _snippet(statements, rng)
    reason = testcells.kernel_reason(source)
    assert reason is not None and words in reason, (source, reason)


@pytest.mark.parametrize(("source", "plain"), [
    ("from dlcourse.testing import student\nassert student.f(1) == 1", False),
    ("import dlcourse.testing as t\nassert t.student.f(1) == 1", False),
    ("from dlcourse import testing", False),
    ("import dlcourse", False),
    ("def helper():\n    from dlcourse.testing import assert_close\n    return assert_close", False),
    ("assert squares(2) == [1, 4]", True),
    ("import numpy as np\nassert np.all(f() == 0)", True),
    ("# uses dlcourse only in a comment\nassert f() == 1", True),
    ("s = 'from dlcourse.testing import student'\nassert f(s)", True),
    ("from .dlcourse import x", True),
])
def test_a_cell_is_plain_unless_it_imports_from_the_dlcourse_package(source, plain):
    assert testcells.is_plain(source) is plain


def test_cell_names_are_every_identifier_less_builtins_dunders_and_the_cells_imports():
    rng = random.Random(3)
    for _ in range(30):
        own = {f"name_{rng.randrange(10**6)}" for _ in range(rng.randint(1, 6))}
        imported = {f"mod_{rng.randrange(10**6)}" for _ in range(rng.randint(0, 3))}
        lines = [f"import {m}" for m in sorted(imported)]
        lines += [rng.choice(["assert {n}(1) == len([1])", "{n} = print", "del {n}", "{n}.x = abs(-1)"]).format(n=n)
                  for n in sorted(own)]
        lines.append("x = __name__")
        names = testcells.cell_names("\n".join(lines))
        assert names.candidates == own | {"x"} and names.imported == imported


def test_a_syntax_error_is_plain_and_needs_no_kernel_it_fails_here_as_there():
    assert testcells.kernel_reason("assert f(1 ==") is None and testcells.is_plain("assert f(1 ==")


def test_course_settings_read_ignore_pattern_timeout_and_strict_tests(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()\nc.IgnorePattern.enabled = True\nc.IgnorePattern.pattern = 'Warn'\n"
        "c.Execute.timeout = 45\nc.Dlcourse.strict_tests = ['ps1', 'ps3']\n")
    settings = config.course_settings(tmp_path)
    assert (settings.ignore_pattern, settings.cell_timeout) == ("Warn", 45.0)
    assert settings.strict("ps1") and settings.strict("ps3") and not settings.strict("ps2")


def test_course_settings_ignore_a_disabled_pattern_and_strict_true_means_every_assignment(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()\nc.IgnorePattern.pattern = 'Warn'\nc.ExecutePreprocessor.timeout = 30\n"
        "c.Dlcourse.strict_tests = True\n")
    settings = config.course_settings(tmp_path)
    assert settings.ignore_pattern == "" and settings.cell_timeout == 30.0
    assert all(settings.strict(name) for name in ("a1", "ps1", "x"))


def test_course_settings_without_a_config_are_the_defaults(tmp_path):
    settings = config.course_settings(tmp_path)
    assert (settings.ignore_pattern, settings.cell_timeout, settings.strict("ps1")) == ("", None, False)


def test_the_course_config_sets_the_ignore_pattern_nbgrader_uses():
    from helpers import ROOT

    assert config.course_settings(ROOT).ignore_pattern == r"Warning\b|warnings\.warn|\bWARNING\b"


def test_kernel_cells_of_masters_name_notebook_cell_and_reason(tmp_path):
    from dlcourse import authoring

    path = authoring.write_notebook(tmp_path / "nb.ipynb", [
        authoring.tests("uses_frames", 1, "import inspect\nassert inspect.isfunction(f)"),
        authoring.tests("plain", 1, "assert f(2) == 4"),
        authoring.tests("ours", 1, "from dlcourse.testing import student\nimport inspect"),
    ])
    cells = testcells.kernel_cells([path])
    assert cells == [("nb", "uses_frames", "inspects frames (inspect)")]
    assert testcells.kernel_warning(*cells[0]) == (
        "nb uses_frames: runs in the student's kernel: not tamper-proof (inspects frames (inspect))")
