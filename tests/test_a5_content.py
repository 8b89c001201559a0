"""A5 (recurrent networks and attention): the master's reference solutions against torch's own layers,
the notebook's structure, the mutants' coverage, a release without solutions or hidden tests, and the
master executed as the grader would."""

from __future__ import annotations

import ast
import importlib.util
import math
import os
import time
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
MASTER = ROOT / "source" / "a5_rnn_attention" / "a5_rnn_attention.ipynb"
RELEASE = ROOT / "release" / "a5_rnn_attention" / "a5_rnn_attention.ipynb"
ANSWERS = ["VanillaRNN", "SelfAttention", "CausalSelfAttention", "MultiHeadSelfAttention"]
WRITTEN = {"vanishing_exploding", "params_vs_length", "attention_vs_recurrence", "why_heads", "narrow_vs_wide"}


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


@pytest.fixture(scope="module")
def master():
    return nbformat.read(MASTER, as_version=4)


@pytest.fixture(scope="module")
def solutions(master):
    """The set-up and answer cells of the master (reference solutions in place), run in-process."""
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "a5_reference"}
    for cell in master.cells:
        if cell.cell_type == "code" and (_meta(cell).get("solution") or _meta(cell).get("grade_id") == "a5_setup"):
            exec(compile(cell.source, _meta(cell)["grade_id"], "exec"), namespace)
    return namespace


def _test_cells(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code" and _meta(c).get("grade")]


# --------------------------------------------------------------------------
# The reference solutions against torch


def test_vanilla_rnn_matches_torch_rnn_values_and_gradients(solutions):
    torch.manual_seed(0)
    for d, h, n, t in [(1, 1, 1, 1), (3, 5, 2, 7), (6, 4, 3, 12)]:
        mine = solutions["VanillaRNN"](d, h).double()
        theirs = torch.nn.RNN(d, h, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            theirs.weight_ih_l0.copy_(mine.weight_xh)
            theirs.weight_hh_l0.copy_(mine.weight_hh)
            theirs.bias_ih_l0.copy_(mine.bias_xh)
            theirs.bias_hh_l0.copy_(mine.bias_hh)
        x = torch.randn(n, t, d, dtype=torch.float64)
        torch.testing.assert_close(mine(x), theirs(x)[0])
        g = torch.randn(n, t, h, dtype=torch.float64)
        (mine(x) * g).sum().backward()
        (theirs(x)[0] * g).sum().backward()
        torch.testing.assert_close(mine.weight_hh.grad, theirs.weight_hh_l0.grad)
        torch.testing.assert_close(mine.bias_xh.grad, theirs.bias_ih_l0.grad)


def test_attention_parameters_do_not_depend_on_the_sequence_length(solutions):
    for d in (2, 7, 16):
        layer = solutions["SelfAttention"](d)
        counts = []
        for t in (5, 10, 20):
            layer(torch.randn(2, t, d))
            counts.append(sum(p.numel() for p in layer.parameters()))
        assert counts == [3 * d * d] * 3
        multi = solutions["MultiHeadSelfAttention"](d, 1 if d == 7 else 2)
        assert sum(p.numel() for p in multi.parameters()) == 4 * d * d


def test_self_attention_rows_are_convex_combinations_of_the_values(solutions):
    # With v = identity, each output lies in the convex hull of the inputs: check one coordinate's range.
    layer = solutions["SelfAttention"](4)
    with torch.no_grad():
        layer.v.weight.copy_(torch.eye(4))
    x = torch.randn(3, 6, 4)
    y = layer(x)
    assert (y <= x.amax(dim=1, keepdim=True) + 1e-6).all() and (y >= x.amin(dim=1, keepdim=True) - 1e-6).all()


def test_causal_attention_ignores_the_future_and_equals_full_attention_at_the_last_position(solutions):
    torch.manual_seed(1)
    causal, full = solutions["CausalSelfAttention"](5), solutions["SelfAttention"](5)
    full.load_state_dict(causal.state_dict())
    x = torch.randn(2, 7, 5)
    y = causal(x)
    torch.testing.assert_close(y[:, -1], full(x)[:, -1])  # the last position sees everything
    torch.testing.assert_close(y[:, 0], causal.v(x[:, 0]))
    x2 = x.clone()
    x2[:, 4:] += 1.0
    torch.testing.assert_close(causal(x2)[:, :4], y[:, :4])


def test_multihead_matches_torch_multihead_attention(solutions):
    torch.manual_seed(2)
    for d, heads in [(4, 1), (6, 3), (8, 2), (12, 4)]:
        mine = solutions["MultiHeadSelfAttention"](d, heads).double()
        theirs = torch.nn.MultiheadAttention(d, heads, bias=False, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            theirs.in_proj_weight.copy_(torch.cat([mine.q.weight, mine.k.weight, mine.v.weight]))
            theirs.out_proj.weight.copy_(mine.o.weight)
        x = torch.randn(3, 5, d, dtype=torch.float64)
        torch.testing.assert_close(mine(x), theirs(x, x, x, need_weights=False)[0])


def test_one_head_is_self_attention_followed_by_the_output_map(solutions):
    single, multi = solutions["SelfAttention"](6), solutions["MultiHeadSelfAttention"](6, 1)
    single.load_state_dict({k: v for k, v in multi.state_dict().items() if not k.startswith("o.")})
    x = torch.randn(2, 4, 6)
    torch.testing.assert_close(multi(x), multi.o(single(x)))


# --------------------------------------------------------------------------
# Structure of the master


def test_every_answer_cell_defines_its_curriculum_name_and_has_tests(master):
    test_ids = {_meta(c)["grade_id"]: c for c in _test_cells(master)}
    answers = [c for c in master.cells if c.cell_type == "code" and _meta(c).get("solution")]
    assert [_meta(c)["grade_id"] for c in answers] == ANSWERS
    for cell in answers:
        grade_id = _meta(cell)["grade_id"]
        tree = ast.parse(cell.source)
        defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        assert defined == [grade_id]
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
        own = [t for t in test_ids if t == f"test_{grade_id}" or t.startswith(f"test_{grade_id}_")]
        assert own, f"no test cell for {grade_id}"
        for test_id in own:
            source = test_ids[test_id].source
            assert _meta(test_ids[test_id]).get("points", 0) > 0
            assert "### BEGIN HIDDEN TESTS" in source and "### END HIDDEN TESTS" in source, test_id
            assert "student." in source.split("### BEGIN HIDDEN TESTS")[0], f"{test_id} has no public check"
    assert sum(_meta(c)["points"] for c in _test_cells(master)) == 14


def test_test_cells_reach_student_code_only_through_student(master):
    student_names = set(ANSWERS) | {"input_gradient_norms", "causal"}
    for cell in _test_cells(master):
        tree = ast.parse(cell.source)
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        assert not used & student_names, f"{_meta(cell)['grade_id']} uses {used & student_names} directly"


def test_rnn_test_forbids_torch_recurrent_layers(master):
    source = next(c.source for c in _test_cells(master) if _meta(c)["grade_id"] == "test_VanillaRNN_structure")
    assert "assert_no_forbidden" in source and "torch.rnn_tanh" in source and '"RNN"' in source


def test_written_answers_have_rubrics_and_points(master):
    written = [c for c in master.cells if c.cell_type == "markdown" and _meta(c).get("grade")]
    assert {_meta(c)["grade_id"] for c in written} == WRITTEN
    for cell in written:
        assert _meta(cell)["solution"] and _meta(cell)["points"] > 0
        rubric = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        assert "Rubric" in rubric and len(rubric) > 200
    assert sum(_meta(c)["points"] for c in written) == 10


def test_mutant_module_covers_every_answer_cell(master):
    spec = importlib.util.spec_from_file_location("a5_mutants", ROOT / "tests" / "mutants" / "a5.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # fails if a mutant's anchor is no longer in its reference
    assert module.NOTEBOOK == "a5_rnn_attention/a5_rnn_attention.ipynb"
    for answer_id in ANSWERS:
        assert sum(m[0] == answer_id for m in module.MUTANTS) >= 3, answer_id
        assert sum(a[0] == answer_id for a in module.ALTERNATIVES) >= 1, answer_id


def test_mutant_references_are_the_masters_solutions(master, solutions):
    """The mutants are edits of reference code that must behave as the master's solution does."""
    spec = importlib.util.spec_from_file_location("a5_mutants", ROOT / "tests" / "mutants" / "a5.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    namespace = {"torch": torch, "nn": torch.nn, "math": math}
    for source in (module.RNN, module.ATTENTION, module.CAUSAL, module.MULTIHEAD):
        exec(source, namespace)
    torch.manual_seed(3)
    x = torch.randn(2, 5, 6)
    for name, args in [("VanillaRNN", (6, 4)), ("SelfAttention", (6,)), ("CausalSelfAttention", (6,)),
                       ("MultiHeadSelfAttention", (6, 2))]:
        ours, theirs = namespace[name](*args), solutions[name](*args)
        theirs.load_state_dict(ours.state_dict())
        torch.testing.assert_close(ours(x), theirs(x))


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
        if meta.get("solution"):
            for part in cell.source.split("### BEGIN SOLUTION")[1:]:
                for line in part.split("### END SOLUTION")[0].splitlines():
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
def test_master_executes_cleanly_and_fast_in_grading_mode(tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(MASTER, as_version=4)
    env = dict(os.environ, NBGRADER_EXECUTION="autograde", PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    old = dict(os.environ)
    os.environ.update(env)
    try:
        started = time.monotonic()
        NotebookClient(notebook, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
        seconds = time.monotonic() - started
    finally:
        os.environ.clear()
        os.environ.update(old)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{_meta(cell).get('grade_id')}: {output.get('evalue')}"
            assert not (output.output_type == "stream" and output.name == "stderr"), _meta(cell).get("grade_id")
    print("timing (not asserted: machines are noisy):", f"the master took {seconds:.0f} s")
