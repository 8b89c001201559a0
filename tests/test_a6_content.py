"""A6 (autoencoders): the master's reference solutions against independent formulas, a short training run
on real images through dlcourse.data, the notebook's structure, the mutants' coverage, a release without
solutions or hidden tests, and the master executed as the grader would."""

from __future__ import annotations

import ast
import importlib.util
import os
import time
from pathlib import Path

import nbformat
import pytest
import torch

from dlcourse import data

ROOT = Path(__file__).resolve().parent.parent
MASTER = ROOT / "source" / "a6_autoencoders" / "a6_autoencoders.ipynb"
RELEASE = ROOT / "release" / "a6_autoencoders" / "a6_autoencoders.ipynb"
ANSWERS = ["Encoder", "Decoder", "Autoencoder", "train_autoencoder", "plot_reconstructions"]


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _mlp_parameters(sizes) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


@pytest.fixture(scope="module")
def master():
    return nbformat.read(MASTER, as_version=4)


@pytest.fixture(scope="module")
def solutions(master):
    """The set-up and answer cells of the master (reference solutions in place), run in-process."""
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "a6_reference"}
    for cell in master.cells:
        if cell.cell_type == "code" and (_meta(cell).get("solution") or _meta(cell).get("grade_id") == "a6_setup"):
            exec(compile(cell.source, _meta(cell)["grade_id"], "exec"), namespace)
    return namespace


def _test_cells(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code" and _meta(c).get("grade")]


# --------------------------------------------------------------------------
# The reference solutions


def test_parameter_counts_follow_the_layer_sizes(solutions):
    assert sum(p.numel() for p in solutions["Autoencoder"](2, 28).parameters()) == 469_010
    assert _mlp_parameters([784, 256, 128, 2]) + _mlp_parameters([2, 128, 256, 784]) == 469_010
    for l_dim, s_img, h_dim in [(1, 3, [4, 2]), (16, 28, [256, 128]), (7, 10, [20, 30])]:
        encoder = solutions["Encoder"](l_dim, s_img, h_dim)
        decoder = solutions["Decoder"](l_dim, s_img, h_dim)
        assert sum(p.numel() for p in encoder.parameters()) == _mlp_parameters([s_img ** 2, *h_dim, l_dim])
        assert sum(p.numel() for p in decoder.parameters()) == _mlp_parameters([l_dim, *h_dim[::-1], s_img ** 2])


def test_encoder_is_affine_in_its_last_hidden_layer_and_decoder_is_an_image_in_the_unit_interval(solutions):
    torch.manual_seed(0)
    encoder = solutions["Encoder"](3, 5, [8, 6])
    x = torch.randn(40, 1, 5, 5)
    z = encoder(x)
    assert z.shape == (40, 3) and (z < 0).any()
    decoder = solutions["Decoder"](3, 5, [8, 6])
    images = decoder(torch.randn(40, 3) * 20)
    assert images.shape == (40, 1, 5, 5)
    assert images.min() >= 0 and images.max() <= 1 and images.min() < 0.01 and images.max() > 0.99


def test_training_reduces_the_loss_and_returns_one_float_per_epoch(solutions):
    torch.manual_seed(0)
    prototypes = torch.rand(3, 1, 6, 6)
    images = prototypes[torch.arange(60) % 3]
    model = solutions["Autoencoder"](3, 6, [16, 8])
    losses = solutions["train_autoencoder"](model, images, epochs=15, batch_size=16, lr=1e-2)
    assert len(losses) == 15 and all(type(v) is float for v in losses)
    assert losses[-1] < 0.3 * losses[0]


def test_reconstruction_figure_has_inputs_above_outputs(solutions):
    import matplotlib.figure

    model = solutions["Autoencoder"](2, 4, [8, 4])
    images = torch.rand(3, 1, 4, 4)
    fig = solutions["plot_reconstructions"](model, images)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 6
    first_input = fig.axes[0].get_images()[0].get_array()
    assert torch.allclose(torch.as_tensor(first_input.data, dtype=torch.float32), images[0, 0])


@pytest.mark.slow
def test_reference_autoencoder_beats_the_mean_image_on_real_images_in_grading_mode_budget(solutions, course_data):
    """End to end through dlcourse.data (torchvision's MNIST loader, here on Fashion-MNIST's real images) with
    the notebook's grading-mode budget: 4000 images, 3 epochs, batch 128, Adam lr 1e-3."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy 2-core machine one thread is several times faster than two
    try:
        x_train, _ = data.mnist_tensors(train=True)
        x_test, _ = data.mnist_tensors(train=False)
        torch.manual_seed(0)
        model = solutions["Autoencoder"](16, 28)
        started = time.monotonic()
        losses = solutions["train_autoencoder"](model, x_train[:4000], epochs=3, batch_size=128, lr=1e-3)
        seconds = time.monotonic() - started
        with torch.no_grad():
            x = x_test[:500]
            mse = ((model(x) - x) ** 2).mean().item()
    finally:
        torch.set_num_threads(threads)
    best_constant = ((x - x.mean(dim=0)) ** 2).mean().item()
    assert losses == sorted(losses, reverse=True)
    assert mse < 0.8 * best_constant, (mse, best_constant)
    print("timing (not asserted: machines are noisy):", f"the grading-mode training took {seconds:.0f} s")


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
            assert "student." in source.split("### BEGIN HIDDEN TESTS")[0], f"{test_id} has no public check"
            if test_id != "test_train_autoencoder_mnist":  # that one's bar is public on purpose
                assert "### BEGIN HIDDEN TESTS" in source and "### END HIDDEN TESTS" in source, test_id
    assert sum(_meta(c)["points"] for c in _test_cells(master)) == 12


def test_test_cells_reach_student_code_only_through_student(master):
    student_names = set(ANSWERS) | {"autoencoder", "train_losses", "x_train", "x_test"}
    for cell in _test_cells(master):
        tree = ast.parse(cell.source)
        assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        leaked = (used - assigned) & student_names
        assert not leaked, f"{_meta(cell)['grade_id']} uses {leaked} directly"


def test_training_cell_shrinks_while_grading_and_picks_the_device(master):
    source = "\n".join(c.source for c in master.cells if c.cell_type == "code" and not _meta(c))
    assert "pick_device()" in source and "shrink(x_train, y_train, 4000)" in source
    assert "3 if grading_mode() else 10" in source and "plot_reconstructions(" in source


def test_written_gan_question_has_a_rubric(master):
    written = [c for c in master.cells if c.cell_type == "markdown" and _meta(c).get("grade")]
    assert [_meta(c)["grade_id"] for c in written] == ["gan_objective"]
    rubric = written[0].source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
    assert "Rubric" in rubric and "D^*(x)" in rubric and _meta(written[0])["points"] == 3


def test_mutant_module_covers_every_answer_cell(master, solutions):
    spec = importlib.util.spec_from_file_location("a6_mutants", ROOT / "tests" / "mutants" / "a6.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # fails if a mutant's anchor is no longer in its reference
    assert module.NOTEBOOK == "a6_autoencoders/a6_autoencoders.ipynb"
    for answer_id in ANSWERS:
        assert sum(m[0] == answer_id for m in module.MUTANTS) >= 3, answer_id
        assert sum(a[0] == answer_id for a in module.ALTERNATIVES) >= 1, answer_id
    # the mutants' reference code is the master's solution
    namespace = dict(solutions)
    for source in (module.ENCODER, module.DECODER, module.AUTOENCODER):
        exec(source, namespace)
    torch.manual_seed(0)
    ours, theirs = namespace["Autoencoder"](3, 6, [10, 5]), solutions["Autoencoder"](3, 6, [10, 5])
    theirs.load_state_dict(ours.state_dict())
    x = torch.rand(4, 1, 6, 6)
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
        if meta.get("grade") and cell.cell_type == "code" and "### BEGIN HIDDEN TESTS" in cell.source:
            hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            for line in hidden.splitlines():
                line = line.strip()
                if len(line) > 30 and line not in provided:
                    assert line not in text, f"hidden test line of {meta['grade_id']} in the release: {line}"


# --------------------------------------------------------------------------
# The whole master, executed as the grader would (one kernel, grading mode)


@pytest.mark.slow
def test_master_executes_cleanly_and_fast_in_grading_mode(course_data, tmp_path):
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
