"""A4 (convolutional networks): the masters' reference solutions against the curriculum's truth numbers and
torch / torchvision, and what only A4's masters must say (Conv2d from elementary operations, training cells
as the curriculum sets them). The rest of the notebooks' structure, the mutant module, the releases and the
grading-mode runs on small stand-in CIFAR-10 files: test_masters.py. ``convnets`` and ``vgg_cifar`` are
the masters' reference namespaces (conftest.py)."""

from __future__ import annotations

import math

import nbformat
import torch

from dlcourse.core.notebook import nbgrader_meta
from dlcourse.testing import forbidden_names_in
from helpers import SOURCE

MASTERS = SOURCE / "a4_convnets"
VGG16_LAYERS = [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2)] + [(3, 1)] * 3 + [(2, 2)] \
    + ([(3, 1)] * 3 + [(2, 2)]) * 2
VGG16_CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def _read(path):
    return nbformat.read(str(path), as_version=4)


# --------------------------------------------------------------------------
# Truth numbers of the curriculum


def test_item1_conv2d_matches_torch_on_a_grid(convnets):
    conv2d = convnets["Conv2d"]
    for k, s, p, c_in, c_out, h, w in [(3, 1, 0, 2, 3, 5, 6), (3, 2, 1, 1, 2, 7, 5), (5, 3, 2, 3, 1, 9, 8),
                                       (1, 1, 0, 4, 2, 3, 3), (4, 2, 3, 2, 2, 4, 6)]:
        layer = conv2d(c_in, c_out, k, stride=s, padding=p)
        x = torch.randn(2, c_in, h, w)
        expected = torch.nn.functional.conv2d(x, layer.weight, layer.bias, stride=s, padding=p)
        assert layer.weight.shape == (c_out, c_in, k, k) and layer.bias.shape == (c_out,)
        assert expected.shape[2] == 1 + (h + 2 * p - k) // s
        torch.testing.assert_close(layer.forward(x), expected, rtol=1e-4, atol=1e-5)


def test_item2_truth(convnets):
    out = convnets["averaged_image"](convnets["X_EXAMPLE"])
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.5]],
                                                 dtype=torch.float64))
    kernel = convnets["averaging_kernel"](2, 3)
    assert kernel.shape == (1, 2, 3, 3) and math.isclose(float(kernel.sum()), 1.0)
    # The kernel applied as a convolution gives the same output.
    via_conv = torch.nn.functional.conv2d(convnets["X_EXAMPLE"][None], kernel)[0, 0]
    torch.testing.assert_close(via_conv, out)


def test_item3_truth(convnets):
    assert convnets["count_parameters"](3, 5, 3, 1, 16, 2) == 2702


def test_item4_truth(convnets):
    assert convnets["receptive_field"](VGG16_LAYERS) == 212
    counts = convnets["vgg_parameter_counts"](VGG16_CONFIG)
    assert counts == {"conv": 14714688, "fc": 123642856, "total": 138357544}
    assert round(counts["conv"] / counts["fc"], 4) == 0.1190
    assert round(convnets["conv_fc_ratio"](counts), 4) == 0.1190


def test_item4_counts_agree_with_torchvision_vgg16():
    from torchvision.models import vgg16

    model = vgg16(weights=None)
    assert sum(p.numel() for p in model.features.parameters()) == 14714688
    assert sum(p.numel() for p in model.classifier.parameters()) == 123642856


def test_item5_truth(vgg_cifar):
    model = vgg_cifar["VGG16"]()
    assert sum(p.numel() for p in model.parameters()) == 15245130
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    features = model.features(torch.randn(1, 3, 32, 32))
    assert features.shape == (1, 512, 1, 1)
    bn = vgg_cifar["VGG16"](batch_norm=True)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in bn.modules()) == 13
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in bn.modules()) == 2


def test_item5_channel_stats_and_training_step(vgg_cifar):
    x = torch.rand(50, 3, 8, 8) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    mean, std = vgg_cifar["channel_stats"](x)
    torch.testing.assert_close(mean, x.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(std, x.std(dim=(0, 2, 3)))
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 10))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.arange(50) % 10), batch_size=10)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = vgg_cifar["train_one_epoch"](net, loader, optimizer, torch.device("cpu"))
    for _ in range(5):
        last = vgg_cifar["train_one_epoch"](net, loader, optimizer, torch.device("cpu"))
    assert len(first) == 5 and sum(last) < sum(first)
    probs, labels = vgg_cifar["predict"](net, loader, torch.device("cpu"))
    assert probs.shape == (50, 10) and torch.allclose(probs.sum(dim=1), torch.ones(50))
    correct, wrong = vgg_cifar["pick_examples"](probs, labels, 3)
    fig = vgg_cifar["plot_examples"](x[:, :, :8, :8].clamp(0, 1), probs, labels, correct + wrong,
                                     [str(i) for i in range(10)])
    assert len(fig.axes) == 2 * len(correct + wrong)


# --------------------------------------------------------------------------
# What only A4's masters must say


def test_item1_reference_uses_elementary_operations_only():
    master = _read(MASTERS / "a4_convnets.ipynb")
    cell = next(c for c in master.cells if nbgrader_meta(c).get("grade_id") == "Conv2d")
    assert not forbidden_names_in(cell.source, ["conv2d", "unfold", "Unfold", "as_strided", "functional", "F"])


def test_training_cells_follow_the_curriculum():
    source = "\n".join(c.source for c in _read(MASTERS / "a4_vgg_cifar.ipynb").cells if c.cell_type == "code")
    for needle in ("pick_device()", "first(BUDGET.train_images", "lr=1e-4", "weight_decay=1e-3",
                   "batch_size=256", "epochs=10", "channel_stats(x_train)", "VGG16(batch_norm=True)", "plot_examples(",
                   'Checkpoint(checkpoint_file', '"vgg16.pt"', '"vgg16_bn.pt"'):
        assert needle in source, needle
