"""Every master notebook, by the same rules: the structure that grading and the mutation suite rely on, a
release without solutions or hidden tests, mutants for every answer cell, and the whole master executed as the
grader would (one kernel, grading mode).

What differs between assignments is data, here at the top: the curriculum's names and written questions,
and the few exceptions, each with the reason. The assignments' own truth numbers are in test_aN.py.
"""

from __future__ import annotations

import ast
import functools
import os
import time
from pathlib import Path

import nbformat
import pytest

from dlcourse.core.notebook import nbgrader_meta
from helpers import RELEASE, ROOT, SOURCE, mutant_modules, dependencies_between_test_cells

MASTERS = sorted(SOURCE.glob("*/*.ipynb"))
ASSIGNMENTS = sorted({master.parent.name for master in MASTERS})


def _same_names(*grade_ids: str) -> dict[str, str]:
    return {grade_id: grade_id for grade_id in grade_ids}


# master -> its answer cells in notebook order: grade_id -> the one name the cell defines (the curriculum's)
CURRICULUM_NAMES: dict[str, dict[str, str]] = {
    "a1_autodiff": _same_names(
        "forward_trace", "reverse_trace", "autograd_gradients", "gw_forward_trace", "gw_reverse_trace", "d_cos_log",
        "d_gaussian", "d_sigmoid", "jacobian_f", "jacobian_sigmoid", "grad_sin_cos", "grad_dot", "grad_sin_log",
        "jacobian_sin_affine", "add", "sub", "mul", "div", "power", "sqrt", "log", "exp", "sin", "cos", "sum_vars",
        "backward", "build_A", "build_B"),
    "a2_optimisers": {"adam": "Adam", "step1_update": "adam_step1_update", "step2_update": "adam_step2_update",
                      "adamw": "AdamW", "l2_penalty": "l2_penalty", "sgd_momentum": "SGDMomentum", "ewma": "ewma"},
    "a3_layers": {"linear": "Linear", "relu": "ReLU", "sigmoid": "Sigmoid", "dropout": "Dropout",
                  "fcnet_do": "FCNet_do", "two_layer_net": "TwoLayerNet", "gradient_check": "gradient_check",
                  "grad_w1": "grad_w1"},
    "a3_mnist": {"mlp": "MLP", "train_one_epoch": "train_one_epoch", "evaluate": "evaluate",
                 "plot_history": "plot_history"},
    "a4_convnets": _same_names("Conv2d", "averaging_kernel", "averaged_image", "count_parameters",
                               "receptive_field", "vgg_parameter_counts", "conv_fc_ratio"),
    "a4_vgg_cifar": _same_names("channel_stats", "VGG16", "train_one_epoch", "predict", "pick_examples",
                                "plot_examples"),
    "a5_rnn_attention": _same_names("VanillaRNN", "SelfAttention", "CausalSelfAttention", "MultiHeadSelfAttention"),
    "a6_autoencoders": _same_names("Encoder", "Decoder", "Autoencoder", "train_autoencoder", "plot_reconstructions"),
    # the reading questions: each answer cell sets one variable
    "a7_concepts": {f"reading_{paper}": f"answer_{paper}" for paper in (
        "recht", "greff", "wightman", "ulyanov", "brendel", "wu", "picard", "vaswani", "zhu")},
}
# master -> its written questions (graded markdown cells)
WRITTEN = {
    "a1_autodiff": {"chain_rule_symbolic", "backprop_vs_symbolic", "elementwise_diagonal", "chain_rule_reparam"},
    "a2_optimisers": {"adam_lines", "warmup_written", "adamw_written", "ewma_written"},
    "a3_layers": {"reg_written"},
    "a3_mnist": {"mnist_written"},
    "a4_convnets": {"count_parameters_written", "vgg_written"},
    "a4_vgg_cifar": {"results_written", "batchnorm_written"},
    "a5_rnn_attention": {"vanishing_exploding", "params_vs_length", "attention_vs_recurrence", "why_heads",
                         "narrow_vs_wide"},
    "a6_autoencoders": {"gan_objective"},
    "a7_concepts": {"fitting_written", "reproducibility_written", "troubling_trends_written", "scaling_down_written",
                    "perceiver_io_written", "gan_segmentation_written"},
}
# assignment -> the word every rubric of its written questions uses: A2 and A7 rubrics give points, not a heading
RUBRIC_WORD = {"a2_optimisers": "point", "a7_concepts": "point"}
RUBRIC_MIN_CHARS = 300
# master -> (points of its test cells, points of its written questions), where the curriculum fixes them
TOTAL_POINTS = {"a5_rnn_attention": (14, 10), "a6_autoencoders": (12, 3)}
# master -> its test cells that have no hidden part, and why
NO_HIDDEN_PART = {"a6_autoencoders": {"test_train_autoencoder_mnist"}}  # its bar is public on purpose
# assignment -> what a test cell's public part may call to check the student's code; otherwise "student."
PUBLIC_CHECKS = {
    "a1_autodiff": ("student.", "_closed_form(", "_check_"),  # helpers defined by an earlier test cell
    "a3_layers": ("student.", "assert_no_forbidden("),  # the *_elementary cells check the student's source
}
# assignment -> names its notebooks define outside the answer cells, which test cells must also reach only
# through `student` (the answer cells' names always count)
NOTEBOOK_NAMES = {
    "a1_autodiff": {"Var", "as_var", "neg", "draw_graph"},
    "a3_layers": {"softmax_cross_entropy", "make_spirals", "net", "model"},
    "a4_convnets": {"X_EXAMPLE", "VGG16_CONFIG", "model", "history", "normalise", "x_train", "x_test", "device"},
    "a5_rnn_attention": {"input_gradient_norms", "causal"},
    "a6_autoencoders": {"autoencoder", "train_losses", "x_train", "x_test"},
}
# assignment -> those names a test cell may bind itself and then use (test_VGG16* build their own `model`)
OWN_LOCALS = {"a4_convnets": {"model"}}
# assignment -> all that its test cells may import (modules and names)
TEST_CELL_IMPORTS = {
    "a4_convnets": {"torch", "math", "numpy", "dlcourse", "ast", "student", "assert_close", "assert_equal",
                    "assert_shape", "assert_no_forbidden", "random_tensor", "rng", "no_warnings",
                    "assert_same_model", "assert_same_trajectory", "STEP_RECORDER", "TRAINING_MISTAKES",
                    "check_epochs", "replay_training"},
}
# A release must not hold these anywhere: the regions' markers, and the rubrics' words.
RELEASE_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN", "END HIDDEN", "Rubric", "point, ",
                   "Half a point")
SECRET_LINE_MIN_CHARS = 21  # a shorter secret line (`root.grad = 1.0`, `optimizer.step()`) gives nothing away
PROBE_MIN_CHARS = 26  # every hidden part needs a line this long that its cell's public part does not show
REGIONS = {"solution": ("### BEGIN SOLUTION", "### END SOLUTION"),
           "hidden test": ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")}
# assignment -> per-cell timeout of its grading-mode runs, where 120 s is too short: VGG trains on CIFAR-10
CELL_TIMEOUT_S = {"a4_convnets": 300}
# master -> what its grading-mode run must print: it trains on the shrunk data set
GRADING_MODE_PRINTS = {"a4_vgg_cifar": ("(shortened: the notebook is being graded)", "training images (64, 3, 32, 32)")}


@functools.cache
def _notebook(path: Path):
    return nbformat.read(str(path), as_version=4)


def _answer_cells(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code" and nbgrader_meta(c).get("solution")]


def _test_cells(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code" and nbgrader_meta(c).get("grade")]


def _top_level_names(source: str) -> list[str]:
    """The names a cell defines at its top level: functions, classes and variables."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [target.id for target in node.targets if isinstance(target, ast.Name)]
    return names


def _definitions(source: str) -> list[str]:
    return [node.name for node in ast.parse(source).body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]


def _assignment_names(assignment: str) -> set[str]:
    """The curriculum's names of all the assignment's masters (a test cell of one must not use another's)."""
    return {name for master in SOURCE.glob(f"{assignment}/*.ipynb")
            for name in CURRICULUM_NAMES[master.stem].values()}


# --------------------------------------------------------------------------
# Structure of the masters


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_every_answer_cell_defines_its_curriculum_name_and_has_tests_with_hidden_parts(master):
    notebook, assignment = _notebook(master), master.parent.name
    names = CURRICULUM_NAMES[master.stem]
    answers = _answer_cells(notebook)
    assert [nbgrader_meta(c)["grade_id"] for c in answers] == list(names)
    tests = {nbgrader_meta(c)["grade_id"]: c for c in _test_cells(notebook)}
    public_checks = PUBLIC_CHECKS.get(assignment, ("student.",))
    for cell in answers:
        grade_id = nbgrader_meta(cell)["grade_id"]
        defined = _top_level_names(cell.source)
        assert defined == [names[grade_id]], f"answer cell {grade_id} should define {names[grade_id]}: {defined}"
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, grade_id
        own = [t for t in tests if t == f"test_{grade_id}" or t.startswith(f"test_{grade_id}_")]
        assert own, f"no test cell for {grade_id}"
        for test_id in own:
            source = tests[test_id].source
            assert nbgrader_meta(tests[test_id]).get("points", 0) > 0, test_id
            public = _outside(source, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
            assert any(call in public for call in public_checks), f"{test_id} has no public check"
            if test_id not in NO_HIDDEN_PART.get(master.stem, ()):
                assert "### BEGIN HIDDEN TESTS" in source and "### END HIDDEN TESTS" in source, test_id
    if master.stem in TOTAL_POINTS:
        assert sum(nbgrader_meta(c)["points"] for c in tests.values()) == TOTAL_POINTS[master.stem][0]


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_test_cells_reach_student_code_only_through_student(master):
    assignment = master.parent.name
    student_names = _assignment_names(assignment) | NOTEBOOK_NAMES.get(assignment, set())
    for cell in _test_cells(_notebook(master)):
        tree = ast.parse(cell.source)
        bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        bound |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        bound |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        leaked = used & student_names - (bound & OWN_LOCALS.get(assignment, set()))
        assert not leaked, f"{nbgrader_meta(cell)['grade_id']} uses {leaked} directly instead of through student"
        if assignment in TEST_CELL_IMPORTS:
            imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                        if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
            imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                         if isinstance(node, ast.ImportFrom) and node.module}
            assert imported <= TEST_CELL_IMPORTS[assignment], imported - TEST_CELL_IMPORTS[assignment]


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_a_failed_test_cell_costs_no_points_in_later_ones(master):
    """What a test cell takes from an earlier one (helpers, data) is bound before that cell's first check:
    a student who fails one item must not lose the items after it because a helper was never defined."""
    late = {test_id: sorted(names) for test_id, (_, names) in dependencies_between_test_cells(master).items() if names}
    assert not late, f"test cells use names that an earlier test cell binds only after a check could fail: {late}"


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_written_answers_have_rubrics_and_points(master):
    notebook = _notebook(master)
    written = [c for c in notebook.cells if c.cell_type == "markdown" and nbgrader_meta(c).get("grade")]
    assert {nbgrader_meta(c)["grade_id"] for c in written} == WRITTEN[master.stem]
    word = RUBRIC_WORD.get(master.parent.name, "Rubric")
    for cell in written:
        grade_id = nbgrader_meta(cell)["grade_id"]
        assert nbgrader_meta(cell)["solution"] and nbgrader_meta(cell)["points"] > 0, grade_id
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, grade_id
        rubric = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        assert word in rubric and len(rubric) > RUBRIC_MIN_CHARS, grade_id
    if master.stem in TOTAL_POINTS:
        assert sum(nbgrader_meta(c)["points"] for c in written) == TOTAL_POINTS[master.stem][1]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_mutants_cover_every_answer_cell_and_define_its_name(assignment):
    """tests/mutants/aN.py names the assignment's masters, has at least three mutants and one alternative for
    every answer cell and none for anything else, and each variant defines what its answer cell defines.
    (Importing the module fails if a mutant's anchor is no longer in its master.)"""
    module = mutant_modules()[assignment.split("_")[0]]
    masters = sorted(SOURCE.glob(f"{assignment}/*.ipynb"))
    assert list(getattr(module, "NOTEBOOKS", [module.NOTEBOOK])) == [f"{assignment}/{m.name}" for m in masters]
    assert module.NOTEBOOK == f"{assignment}/{masters[0].name}"
    references = {nbgrader_meta(c)["grade_id"]: c.source for m in masters for c in _answer_cells(_notebook(m))}
    names = {grade_id: name for m in masters for grade_id, name in CURRICULUM_NAMES[m.stem].items()}
    for answer_id in references:
        assert sum(m[0] == answer_id for m in module.MUTANTS) >= 3, answer_id
        assert sum(a[0] == answer_id for a in module.ALTERNATIVES) >= 1, answer_id
    assert {variant[0] for variant in module.MUTANTS + module.ALTERNATIVES} <= set(references)
    for answer_id, description, source in module.MUTANTS + module.ALTERNATIVES:
        assert names[answer_id] in _top_level_names(source), f"{answer_id} ({description}) does not define it"
        assert _definitions(source) == _definitions(references[answer_id]), f"{answer_id} ({description})"


# --------------------------------------------------------------------------
# The release


def _outside(source: str, begin: str, end: str) -> str:
    """The part of a cell outside its secret regions: what students see of it (a cell may have several)."""
    parts = source.split(begin)
    return "\n".join([parts[0]] + [part.split(end, 1)[1] if end in part else "" for part in parts[1:]])


def _secret_lines(source: str, begin: str, end: str) -> list[str]:
    return [line.strip() for region in source.split(begin)[1:] for line in region.split(end)[0].splitlines()
            if len(line.strip()) >= SECRET_LINE_MIN_CHARS]


def _leaks(master, release) -> list[str]:
    """Where a solution or hidden-test line of ``master`` shows in ``release``.

    A line counts as given away only where students see it anyway, and each way of looking has its own
    narrow idea of "anyway": inside the release's text, unless the cells that students get whole hold it;
    as a whole line of the release, unless the master shows it before a cell's secret part; in its own
    cell's release, unless that cell shows it before the secret part. A line leaks if any of them finds it.
    """
    text = "\n".join(c.source for c in release.cells)
    provided = "\n".join(c.source for c in release.cells if not nbgrader_meta(c).get("solution"))
    release_lines = {line.strip() for line in text.splitlines()}
    public_lines = {line.strip() for c in master.cells for line in
                    _outside(_outside(c.source, *REGIONS["solution"]), *REGIONS["hidden test"]).splitlines()}
    released = {nbgrader_meta(c)["grade_id"]: c.source for c in release.cells if nbgrader_meta(c).get("grade_id")}
    leaks = []
    for cell in master.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        own_release = released.get(grade_id, "") if grade_id else ""
        for kind, (begin, end) in REGIONS.items():
            outside = _outside(cell.source, begin, end)
            for line in _secret_lines(cell.source, begin, end):
                if (line in text and line not in provided) or (line in release_lines and line not in public_lines) \
                        or (line in own_release and line not in outside):
                    leaks.append(f"{kind} line of {grade_id} in the release: {line!r}")
    return leaks


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_release_has_no_solution_and_no_hidden_test(master):
    notebook = _notebook(master)
    release = _notebook(RELEASE / master.parent.name / master.name)
    # the Colab set-up cell that `dlcourse release` puts first is the release's own (it has no master cell)
    release.cells = [c for c in release.cells if "colab-setup" not in c.metadata.get("tags", [])]
    assert [nbgrader_meta(c).get("grade_id") for c in release.cells] == [
        nbgrader_meta(c).get("grade_id") for c in notebook.cells]
    text = "\n".join(c.source for c in release.cells)
    for marker in RELEASE_MARKERS:
        assert marker not in text, f"{marker!r} in the release"
    released = {nbgrader_meta(c).get("grade_id"): c.source for c in release.cells}
    for cell in _answer_cells(notebook):
        assert "raise NotImplementedError()" in released[nbgrader_meta(cell)["grade_id"]]
    begin, end = REGIONS["hidden test"]
    for cell in _test_cells(notebook):
        public = _outside(cell.source, begin, end)
        for region in cell.source.split(begin)[1:]:
            probes = [line.strip() for line in region.split(end)[0].splitlines()
                      if len(line.strip()) >= PROBE_MIN_CHARS and line.strip() not in public]
            assert probes, f"{nbgrader_meta(cell)['grade_id']}: a hidden part holds nothing the public one lacks"
    leaks = _leaks(notebook, release)
    assert not leaks, "\n".join(leaks[:20])


# --------------------------------------------------------------------------
# The whole master, executed as the grader would (one kernel, grading mode)


@pytest.mark.slow
@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_master_runs_without_errors_or_stderr_in_grading_mode(master, course_data, tmp_path, monkeypatch):
    """No error and nothing on stderr, with the grader's environment (NBGRADER_EXECUTION, the Agg backend) and
    the stand-in data sets, in a scratch folder. The wall-clock and the kernel's CPU time are printed, not
    asserted: machines are noisy (bench/notebook_times.py measures the time budget)."""
    from nbclient import NotebookClient

    notebook = nbformat.read(str(master), as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import os as _os\n_t = _os.times()\n"
        "print('KERNEL_CPU_SECONDS', _t.user + _t.system + _t.children_user + _t.children_system)"))
    # The kernel runs in tmp_path: it must find dlcourse whether or not the package is installed.
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    started = time.monotonic()
    NotebookClient(notebook, timeout=CELL_TIMEOUT_S.get(master.parent.name, 120), kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.monotonic() - started
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            grade_id = nbgrader_meta(cell).get("grade_id")
            assert output.output_type != "error", f"{grade_id}: {output.get('ename')}: {output.get('evalue')}"
            assert not (output.output_type == "stream" and output.name == "stderr"), f"{grade_id}: {output.text}"
    printed = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
                      if output.output_type == "stream")
    for expected in GRADING_MODE_PRINTS.get(master.stem, ()):
        assert expected in printed, expected
    cpu_seconds = float(printed.split("KERNEL_CPU_SECONDS")[1].split()[0])
    print("timing (not asserted: machines are noisy):",
          f"{master.name}: {seconds:.0f} s wall, kernel CPU {cpu_seconds:.0f} s, load {os.getloadavg()[0]:.1f}")
