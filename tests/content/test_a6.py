"""A6 (autoencoders): the master's reference solutions against independent formulas, a short training run on
real images through dlcourse.data, the mutants' reference code against the master's, and what only A6's master
must say (a training cell that shrinks while grading, the GAN rubric). The rest of the notebook's structure,
the release and the grading-mode run: test_masters.py. ``solutions`` is the master's reference namespace
(conftest.py)."""

from __future__ import annotations

import time

import nbformat
import pytest
import torch

from dlcourse import data
from dlcourse.core.notebook import nbgrader_meta
from helpers import SOURCE, mutant_modules

MASTER = SOURCE / "a6_autoencoders" / "a6_autoencoders.ipynb"


@pytest.fixture(scope="module")
def master():
    return nbformat.read(str(MASTER), as_version=4)


def _mlp_parameters(sizes) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


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
# The mutants' reference code, and what only A6's master must say


def test_mutant_references_are_the_masters_solutions(solutions):
    """The mutants are edits of reference code that must behave as the master's solution does."""
    module = mutant_modules()["a6"]
    namespace = dict(solutions)
    for source in (module.ENCODER, module.DECODER, module.AUTOENCODER):
        exec(source, namespace)
    torch.manual_seed(0)
    ours, theirs = namespace["Autoencoder"](3, 6, [10, 5]), solutions["Autoencoder"](3, 6, [10, 5])
    theirs.load_state_dict(ours.state_dict())
    x = torch.rand(4, 1, 6, 6)
    torch.testing.assert_close(ours(x), theirs(x))


def test_training_cell_takes_its_budget_and_picks_the_device(master):
    cells = ("a6_setup", "train_mnist")
    source = "\n".join(c.source for c in master.cells if nbgrader_meta(c).get("grade_id") in cells)
    assert "pick_device()" in source and "first(BUDGET.train_images, x_train, y_train)" in source
    assert 'budget("a6_autoencoders", epochs=10, train_images=None' in source and "epochs = BUDGET.epochs" in source
    assert "plot_reconstructions(" in source


def test_gan_rubric_states_the_optimal_discriminator(master):
    cell = next(c for c in master.cells
                if c.cell_type == "markdown" and nbgrader_meta(c).get("grade_id") == "gan_objective")
    rubric = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
    assert "D^*(x)" in rubric
