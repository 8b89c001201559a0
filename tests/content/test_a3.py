"""A3 (layers; MLP on MNIST): the masters' reference solutions against the curriculum's truth numbers, an
end-to-end training run on real images through dlcourse.data, and what only A3's masters must say (layers
from elementary operations, a training cell that shrinks while grading). The rest of the notebooks'
structure, the releases and the grading-mode runs: test_masters.py. ``layers`` and ``mnist`` are the
masters' reference namespaces (conftest.py)."""

from __future__ import annotations

import time

import nbformat
import pytest
import torch

from dlcourse import data
from dlcourse.core.notebook import nbgrader_meta
from dlcourse.testing import forbidden_names_in
from helpers import SOURCE

MASTERS = SOURCE / "a3_layers"


def _read(path):
    return nbformat.read(str(path), as_version=4)


# --------------------------------------------------------------------------
# Truth numbers and the reference solutions


def test_mlp_has_the_truth_number_of_parameters(mnist):
    model = mnist["MLP"]()
    assert sum(p.numel() for p in model.parameters()) == 535_818
    assert 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10 == 535_818


def test_fcnet_do_parameter_count_matches_its_figure(layers):
    assert sum(p.numel() for p in layers["FCNet_do"]().parameters()) == (16 + 1) * 32 + (32 + 1) * 32 + (32 + 1) * 64


def test_grad_w1_formula_against_autograd(layers):
    # dL_reg/dw1 = zbar2 * w2 * sigma'(z1) * a0 + 2 lam w1, for sigmoid and tanh at random points.
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        x, y, w1, b1, w2, b2 = (torch.rand(6, generator=generator, dtype=torch.float64) * 4 - 2).tolist()
        lam = float(torch.rand((), generator=generator))
        for sigma in (torch.sigmoid, torch.tanh):
            w1_ = torch.tensor(w1, dtype=torch.float64, requires_grad=True)
            z2 = w2 * sigma(w1_ * x + b1) + b2
            z2.retain_grad()
            loss = (sigma(z2) - y) ** 2 + lam * (w1_ ** 2 + w2 ** 2)
            loss.backward()
            got = layers["grad_w1"](x, w1, b1, w2, lam, float(z2.grad), sigma.__name__)
            assert abs(got - float(w1_.grad)) < 1e-10


def test_two_layer_net_gradient_check(layers):
    net = layers["TwoLayerNet"](3, 5, 2)
    for layer in (net.fc1, net.fc2):
        layer.weight, layer.bias = layer.weight.double(), layer.bias.double()
    x = torch.randn(4, 3, dtype=torch.float64)
    dscores = torch.randn(4, 2, dtype=torch.float64)
    net.forward(x)
    dx = net.backward(dscores)
    leaves = [t.clone().requires_grad_(True) for t in (x, net.fc1.weight, net.fc1.bias, net.fc2.weight, net.fc2.bias)]
    (torch.relu(leaves[0] @ leaves[1] + leaves[2]) @ leaves[3] + leaves[4]).backward(dscores)
    for mine, leaf in zip((dx, net.fc1.dW, net.fc1.db, net.fc2.dW, net.fc2.db), leaves):
        torch.testing.assert_close(mine, leaf.grad)


@pytest.mark.slow
def test_reference_mlp_reaches_85_percent_on_real_images_in_two_epochs(mnist, course_data):
    """End to end: dlcourse.data (torchvision's MNIST loader, here on Fashion-MNIST's real images),
    the master's MLP, train_one_epoch and evaluate, Adam lr 1e-3, batch 100. Fashion-MNIST is harder
    than MNIST (about 88% after two epochs where MNIST gives about 97%)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy 2-core machine one thread is several times faster than two
    try:
        start = time.monotonic()
        x_train, y_train = data.mnist_tensors(train=True)
        x_test, y_test = data.mnist_tensors(train=False)
        assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
        torch.manual_seed(0)
        model = mnist["MLP"]()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = [mnist["train_one_epoch"](model, optimizer, x_train, y_train, batch_size=100) for _ in range(2)]
        test_loss, test_accuracy = mnist["evaluate"](model, x_test, y_test)
        seconds = time.monotonic() - start
    finally:
        torch.set_num_threads(threads)
    print(f"Fashion-MNIST, reference MLP, 2 epochs: test accuracy {test_accuracy:.4f}, loss {test_loss:.4f}, "
          f"{seconds:.0f} s")
    assert losses[1] < losses[0]
    assert test_accuracy >= 0.85, f"test accuracy {test_accuracy:.3f} after two epochs"
    # About 45 s on an idle 2-core machine.
    print("timing (not asserted: machines are noisy):", f"two epochs took {seconds:.0f} s")


# --------------------------------------------------------------------------
# What only A3's masters must say


def test_layer_solutions_use_elementary_operations_only():
    master = _read(MASTERS / "a3_layers.ipynb")
    for cell in master.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code" and meta["grade_id"] in (
                "linear", "relu", "sigmoid", "dropout", "two_layer_net"):
            assert not forbidden_names_in(cell.source, ["nn", "functional", "autograd"]), meta["grade_id"]


def test_training_cell_takes_its_budget_and_picks_the_device():
    source = "\n".join(c.source for c in _read(MASTERS / "a3_mnist.ipynb").cells if c.cell_type == "code")
    assert "pick_device()" in source and "first(BUDGET.train_images" in source and "epochs = BUDGET.epochs" in source
    assert "lr=1e-3" in source and "batch_size=100" in source and 'budget("a3_mnist", epochs=10' in source
