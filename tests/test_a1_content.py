"""A1 (reverse-mode autodiff): the master's reference solutions against the curriculum's truth numbers,
the notebook's structure, and a release without solutions or hidden tests."""

from __future__ import annotations

import ast
import math
import os
import time
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
MASTER = ROOT / "source" / "a1_autodiff" / "a1_autodiff.ipynb"
RELEASE = ROOT / "release" / "a1_autodiff" / "a1_autodiff.ipynb"


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


@pytest.fixture(scope="module")
def master():
    return nbformat.read(MASTER, as_version=4)


@pytest.fixture(scope="module")
def solutions(master):
    """The namespace of the master's non-test code cells (reference solutions in place), run in-process."""
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "a1_reference"}
    for cell in master.cells:
        if cell.cell_type == "code" and not _meta(cell).get("grade") and _meta(cell).get("grade_id") != "show_A":
            exec(compile(cell.source, _meta(cell).get("grade_id", "<cell>"), "exec"), namespace)
    return namespace


def _answer_ids(notebook) -> list[str]:
    return [_meta(c)["grade_id"] for c in notebook.cells if c.cell_type == "code" and _meta(c).get("solution")]


def _test_cells(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code" and _meta(c).get("grade")]


# --------------------------------------------------------------------------
# Truth numbers of the curriculum


def test_item1_truth(solutions):
    trace = solutions["forward_trace"](3.0, 5.0)
    adjoints = solutions["reverse_trace"](3.0, 5.0)
    assert round(trace["f"], 4) == 42.1114
    assert round(adjoints["x_bar"], 4) == 48.7569
    assert round(adjoints["c_bar"], 4) == -10.0


def test_item1_symbolic_formula_in_the_rubric_matches(solutions):
    # df/dx = 2x³(2 log x − 1)/(log x)³ and df/dc = −2c, as the rubric states.
    for x, c in [(3.0, 5.0), (1.7, -2.0), (5.5, 0.3)]:
        adjoints = solutions["reverse_trace"](x, c)
        assert math.isclose(adjoints["x_bar"], 2 * x ** 3 * (2 * math.log(x) - 1) / math.log(x) ** 3, rel_tol=1e-12)
        assert math.isclose(adjoints["c_bar"], -2 * c, rel_tol=1e-12, abs_tol=1e-12)


def test_item2_truth(solutions):
    dfdx, dfdc = solutions["autograd_gradients"](3.0, 5.0)
    assert round(float(dfdx), 4) == 48.7569 and round(float(dfdc), 4) == -10.0


def test_item3_truth(solutions):
    trace = solutions["gw_forward_trace"](1.5, 0.5)
    adjoints = solutions["gw_reverse_trace"](1.5, 0.5)
    assert round(trace["v6"], 5) == 2.01665
    assert round(adjoints["v-1_bar"], 5) == 3.01184
    assert round(adjoints["v0_bar"], 5) == -13.72396


def test_item4_sin_affine_has_shape_m_by_n(solutions):
    A = torch.randn(4, 3, dtype=torch.float64)
    b, x = torch.randn(4, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    J = solutions["jacobian_sin_affine"](A, b, x)
    assert J.shape == (4, 3)
    assert torch.allclose(J, torch.diag(torch.cos(A @ x + b)) @ A)


def test_item5_engine_matches_torch_on_A_and_B(solutions):
    Var = solutions["Var"]
    a, b, c = Var(1.0), Var(2.0), Var(0.5)
    A = solutions["build_A"](a, b, c)
    A.backward()
    ta, tb, tc = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.0, 2.0, 0.5))
    s = ta + tb + tc ** 2
    tA = s.sqrt() + s.log() + s / (tb * tc ** 2)
    tA.backward()
    assert math.isclose(A.value, tA.item(), rel_tol=1e-12)
    for mine, theirs in zip((a, b, c), (ta, tb, tc)):
        assert math.isclose(mine.grad, theirs.grad.item(), rel_tol=1e-10)

    w0, w1 = Var(0.5), Var(2.0)
    B = solutions["build_B"](w0, w1, [1.0, 2.0, 3.0], [2.0, 4.5, 7.0])
    B.backward()
    # residuals 0.5, 0, -0.5: B = 0.5, dB/dw0 = 2·Σr = 0, dB/dw1 = 2·Σ r x = 2·(0.5 − 1.5) = −2
    assert math.isclose(B.value, 0.5) and abs(w0.grad) < 1e-12 and math.isclose(w1.grad, -2.0)


def test_item5_backward_accumulates_where_a_node_fans_out(solutions):
    Var = solutions["Var"]
    x = Var(0.7)
    u = x * x
    w = (u + x) + u  # u is used twice, x three times
    w.backward()
    assert math.isclose(x.grad, 4 * 0.7 + 1) and math.isclose(u.grad, 2.0)


# --------------------------------------------------------------------------
# Structure of the master


def test_every_answer_cell_defines_its_name_and_has_a_test_cell_with_hidden_tests(master):
    test_ids = {_meta(c)["grade_id"]: c for c in _test_cells(master)}
    for cell in master.cells:
        if cell.cell_type != "code" or not _meta(cell).get("solution"):
            continue
        grade_id = _meta(cell)["grade_id"]
        tree = ast.parse(cell.source)
        defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        assert defined == [grade_id], f"answer cell {grade_id} should define exactly {grade_id}, defines {defined}"
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
        own = [t for t in test_ids if t == f"test_{grade_id}" or t.startswith(f"test_{grade_id}_")]
        assert own, f"no test cell for {grade_id}"
        for test_id in own:
            source = test_ids[test_id].source
            assert _meta(test_ids[test_id]).get("points", 0) > 0
            assert "### BEGIN HIDDEN TESTS" in source and "### END HIDDEN TESTS" in source, test_id
            public = source.split("### BEGIN HIDDEN TESTS")[0]
            # Public checks call the student's code directly or through a helper of an earlier test cell.
            assert any(call in public for call in ("student.", "_closed_form(", "_check_")), (
                f"{test_id} has no public check")


def test_test_cells_reach_student_code_only_through_student(master):
    student_names = set(_answer_ids(master)) | {"Var", "as_var", "neg", "draw_graph"}
    for cell in _test_cells(master):
        tree = ast.parse(cell.source)
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        assert not used & student_names, f"{_meta(cell)['grade_id']} uses {used & student_names} directly"


def test_written_answers_have_rubrics_and_points(master):
    written = [c for c in master.cells if c.cell_type == "markdown" and _meta(c).get("grade")]
    assert {_meta(c)["grade_id"] for c in written} == {
        "chain_rule_symbolic", "backprop_vs_symbolic", "elementwise_diagonal", "chain_rule_reparam"}
    for cell in written:
        assert _meta(cell)["solution"] and _meta(cell)["points"] > 0
        rubric = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        assert "Rubric" in rubric and len(rubric) > 200


def test_mutant_module_covers_every_answer_cell(master):
    import importlib.util

    spec = importlib.util.spec_from_file_location("a1_mutants", ROOT / "tests" / "mutants" / "a1.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # fails if a mutant's anchor is no longer in the master
    for answer_id in _answer_ids(master):
        assert sum(m[0] == answer_id for m in module.MUTANTS) >= 3, answer_id
        assert sum(a[0] == answer_id for a in module.ALTERNATIVES) >= 1, answer_id


# --------------------------------------------------------------------------
# The release


def test_release_has_no_solution_and_no_hidden_test(master):
    release = nbformat.read(RELEASE, as_version=4)
    assert [_meta(c).get("grade_id") for c in release.cells] == [_meta(c).get("grade_id") for c in master.cells]
    text = "\n".join(c.source for c in release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "Rubric"):
        assert marker not in text
    provided = "\n".join(c.source for c in release.cells if not _meta(c).get("solution"))
    for cell in master.cells:
        meta = _meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            body = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in body.splitlines():
                line = line.strip()
                if len(line) > 20 and line not in provided:
                    assert line not in text, f"solution line of {meta['grade_id']} in the release: {line}"
        if meta.get("grade") and cell.cell_type == "code":
            hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            for line in hidden.splitlines():
                line = line.strip()
                if len(line) > 30 and line not in provided:
                    assert line not in text, f"hidden test line of {meta['grade_id']} in the release: {line}"


# --------------------------------------------------------------------------
# The whole master, executed as the grader would (one kernel, grading mode)


@pytest.mark.slow
def test_master_executes_cleanly_and_fast_in_grading_mode():
    from nbclient import NotebookClient

    notebook = nbformat.read(MASTER, as_version=4)
    env = dict(os.environ, NBGRADER_EXECUTION="autograde", PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    old = dict(os.environ)
    os.environ.update(env)
    try:
        started = time.monotonic()
        NotebookClient(notebook, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(MASTER.parent)}}).execute()
        seconds = time.monotonic() - started
    finally:
        os.environ.clear()
        os.environ.update(old)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{_meta(cell).get('grade_id')}: {output.get('evalue')}"
            assert not (output.output_type == "stream" and output.name == "stderr"), _meta(cell).get("grade_id")
    print("timing (not asserted: machines are noisy):", f"the master took {seconds:.0f} s")
