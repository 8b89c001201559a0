"""A2 (optimisers): the master's reference solutions against the curriculum's truth numbers and
torch.optim, the notebook's structure, the mutants' coverage, a release without solutions or hidden
tests, and the master executed as the grader would."""

from __future__ import annotations

import ast
import importlib.util
import os
import time
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
MASTER = ROOT / "source" / "a2_optimisers" / "a2_optimisers.ipynb"
RELEASE = ROOT / "release" / "a2_optimisers" / "a2_optimisers.ipynb"
# answer cell grade_id -> the one top-level name it defines
ANSWERS = {"adam": "Adam", "step1_update": "adam_step1_update", "step2_update": "adam_step2_update",
           "adamw": "AdamW", "l2_penalty": "l2_penalty", "sgd_momentum": "SGDMomentum", "ewma": "ewma"}
WRITTEN = {"adam_lines", "warmup_written", "adamw_written", "ewma_written"}


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


@pytest.fixture(scope="module")
def master():
    return nbformat.read(MASTER, as_version=4)


@pytest.fixture(scope="module")
def solutions(master):
    """The set-up and answer cells of the master (reference solutions in place), run in-process."""
    namespace: dict = {"__name__": "a2_reference"}
    import matplotlib

    matplotlib.use("Agg")
    for cell in master.cells:
        if cell.cell_type == "code" and (_meta(cell).get("solution") or _meta(cell).get("grade_id") == "setup"):
            exec(compile(cell.source, _meta(cell)["grade_id"], "exec"), namespace)
    return namespace


def _test_cells(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code" and _meta(c).get("grade")]


def _bowl(params, targets):
    return sum(((1 + i) * (p - q) ** 2).sum() for i, (p, q) in enumerate(zip(params, targets)))


def _trajectory(make_optimiser, steps=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(3, generator=g, dtype=torch.float64).requires_grad_(),
              torch.randn(2, 2, generator=g, dtype=torch.float64).requires_grad_()]
    targets = [torch.randn(3, generator=g, dtype=torch.float64), torch.randn(2, 2, generator=g, dtype=torch.float64)]
    opt = make_optimiser(params)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        _bowl(params, targets).backward()
        opt.step()
        out.append(torch.cat([p.detach().flatten() for p in params]))
    return torch.stack(out)


# --------------------------------------------------------------------------
# Truth numbers and the reference solutions against torch


def test_item5_truth(solutions):
    ones = torch.ones(2, dtype=torch.float64)
    plain = solutions["ewma"](ones, 0.95)
    corrected = solutions["ewma"](ones, 0.95, bias_correction=True)
    assert round(float(plain[0]), 10) == 0.05
    assert round(float(plain[1]), 10) == 0.0975
    assert round(float(corrected[1]), 10) == 1.0


def test_item5_truth_by_hand():
    # independent of the notebook: S1 = 0.05, S2 = 0.95 * 0.05 + 0.05 = 0.0975, S2 / (1 - 0.95^2) = 1
    s1 = 0.05 * 1
    s2 = 0.95 * s1 + 0.05 * 1
    assert abs(s1 - 0.05) < 1e-15 and abs(s2 - 0.0975) < 1e-15 and abs(s2 / (1 - 0.95 ** 2) - 1.0) < 1e-12


def test_item1_adam_matches_torch(solutions):
    for hyper in [dict(lr=0.1), dict(lr=0.01, betas=(0.5, 0.9), eps=1e-3)]:
        mine = _trajectory(lambda ps: solutions["Adam"](ps, **hyper))
        theirs = _trajectory(lambda ps: torch.optim.Adam(ps, **hyper))
        assert torch.allclose(mine, theirs, rtol=1e-10, atol=1e-12)


def test_item2_first_step_is_lr_times_sign(solutions):
    g = torch.tensor([1e-3, -5.0, 200.0, -0.01], dtype=torch.float64)
    update = solutions["adam_step1_update"](g, 0.01, (0.8, 0.99), 1e-8)
    assert torch.allclose(update, -0.01 * torch.sign(g), atol=1e-7)
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.01, betas=(0.8, 0.99))
    p.grad = g.clone()
    opt.step()
    assert torch.allclose(update, p.detach(), rtol=1e-12, atol=1e-15)


def test_item2_second_step_formula_matches_torch(solutions):
    g1 = torch.tensor([1.0, -2.0, 0.3], dtype=torch.float64)
    g2 = torch.tensor([0.5, 2.0, -4.0], dtype=torch.float64)
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.7, 0.95), eps=1e-4)
    p.grad = g1.clone()
    opt.step()
    before = p.detach().clone()
    p.grad = g2.clone()
    opt.step()
    assert torch.allclose(solutions["adam_step2_update"](g1, g2, 0.1, (0.7, 0.95), 1e-4), p.detach() - before,
                          rtol=1e-12, atol=1e-15)


def test_item3_adamw_and_l2_match_torch_and_differ_from_each_other(solutions):
    mine = _trajectory(lambda ps: solutions["AdamW"](ps, lr=0.05, weight_decay=0.3))
    theirs = _trajectory(lambda ps: torch.optim.AdamW(ps, lr=0.05, weight_decay=0.3))
    assert torch.allclose(mine, theirs, rtol=1e-10, atol=1e-12)
    l2_in_optimiser = _trajectory(lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.3))
    assert not torch.allclose(theirs, l2_in_optimiser, atol=1e-4), "AdamW and Adam + L2 should differ"

    g = torch.Generator().manual_seed(1)
    start = torch.randn(3, generator=g, dtype=torch.float64)
    target = torch.randn(3, generator=g, dtype=torch.float64)
    penalised, decayed = start.clone().requires_grad_(), start.clone().requires_grad_()
    opt_penalised = torch.optim.Adam([penalised], lr=0.05)
    opt_decayed = torch.optim.Adam([decayed], lr=0.05, weight_decay=0.3)
    for _ in range(30):
        opt_penalised.zero_grad()
        (((penalised - target) ** 2).sum() + solutions["l2_penalty"]([penalised], 0.3)).backward()
        opt_penalised.step()
        opt_decayed.zero_grad()
        ((decayed - target) ** 2).sum().backward()
        opt_decayed.step()
    assert torch.allclose(penalised.detach(), decayed.detach(), rtol=1e-10, atol=1e-12)


def test_item4_ewma_momentum_is_not_torch_sgd(solutions):
    mine = _trajectory(lambda ps: solutions["SGDMomentum"](ps, lr=0.05, rho=0.8), steps=5)
    # by hand for the first step: v1 = (1 - rho) g, theta1 = theta0 - lr (1 - rho) g
    torch_form = _trajectory(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8), steps=5)
    damped = _trajectory(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.8), steps=5)
    plain = _trajectory(lambda ps: torch.optim.SGD(ps, lr=0.05 * 0.2), steps=1)
    assert torch.allclose(mine[0], plain[0], rtol=1e-12)
    assert not torch.allclose(mine, torch_form, atol=1e-4) and not torch.allclose(mine, damped, atol=1e-4)


# --------------------------------------------------------------------------
# Structure of the master


def test_answer_cells_define_one_name_and_have_tests_with_hidden_parts(master):
    test_ids = {_meta(c)["grade_id"]: c for c in _test_cells(master)}
    answer_cells = [c for c in master.cells if c.cell_type == "code" and _meta(c).get("solution")]
    assert [_meta(c)["grade_id"] for c in answer_cells] == list(ANSWERS)
    for cell in answer_cells:
        grade_id = _meta(cell)["grade_id"]
        tree = ast.parse(cell.source)
        defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert defined == [ANSWERS[grade_id]], f"{grade_id} defines {defined}"
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
        own = [t for t in test_ids if t == f"test_{grade_id}" or t.startswith(f"test_{grade_id}_")]
        assert own, f"no test cell for {grade_id}"
        for test_id in own:
            source = test_ids[test_id].source
            assert _meta(test_ids[test_id])["points"] > 0
            assert "### BEGIN HIDDEN TESTS" in source and "### END HIDDEN TESTS" in source
            assert "student" in source.split("### BEGIN HIDDEN TESTS")[0], f"{test_id} has no public check"


def test_test_cells_reach_student_code_only_through_student(master):
    student_names = set(ANSWERS.values())
    for cell in _test_cells(master):
        tree = ast.parse(cell.source)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert not used & student_names, f"{_meta(cell)['grade_id']} uses {used & student_names} directly"


def test_written_answers_have_rubrics_and_points(master):
    written = [c for c in master.cells if c.cell_type == "markdown" and _meta(c).get("grade")]
    assert {_meta(c)["grade_id"] for c in written} == WRITTEN
    for cell in written:
        assert _meta(cell)["solution"] and _meta(cell)["points"] > 0
        rubric = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        assert "point" in rubric and len(rubric) > 300


def test_mutant_module_covers_every_answer_cell(master):
    spec = importlib.util.spec_from_file_location("a2_mutants", ROOT / "tests" / "mutants" / "a2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for answer_id in ANSWERS:
        assert sum(m[0] == answer_id for m in module.MUTANTS) >= 3, answer_id
        assert sum(a[0] == answer_id for a in module.ALTERNATIVES) >= 1, answer_id
    for answer_id, _, source in module.MUTANTS + module.ALTERNATIVES:
        defined = [n.name for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert defined == [ANSWERS[answer_id]], f"a variant of {answer_id} defines {defined}"


# --------------------------------------------------------------------------
# The release


def test_release_has_no_solution_and_no_hidden_test(master):
    release = nbformat.read(RELEASE, as_version=4)
    assert [_meta(c).get("grade_id") for c in release.cells] == [_meta(c).get("grade_id") for c in master.cells]
    text = "\n".join(c.source for c in release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "point, "):
        assert marker not in text
    # every line students receive (a secret line would have to stand on a line of its own to be useful)
    provided = {line.strip() for c in release.cells for line in c.source.splitlines()}
    public = {line.strip() for c in master.cells for line in
              c.source.split("### BEGIN SOLUTION")[0].split("### BEGIN HIDDEN TESTS")[0].splitlines()}
    for cell in master.cells:
        for begin, end in (("### BEGIN SOLUTION", "### END SOLUTION"), ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")):
            for region in cell.source.split(begin)[1:]:
                for line in region.split(end)[0].splitlines():
                    line = line.strip()
                    if len(line) > 20 and line not in public:
                        assert line not in provided, f"{_meta(cell).get('grade_id')}: {line!r} is in the release"


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
