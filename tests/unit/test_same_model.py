"""``assert_same_model``: a student's model is graded by what it computes on the reference's weights.

Kernel-free: the "student's" classes are defined in ``__main__`` by the ``notebook`` fixture and reached
through the in-process backend, as a hidden test reaches them in a kernel.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlcourse.grading.model_checks import assert_same_model


class ReferenceNet(nn.Module):
    """8 -> 16 -> BN -> ReLU -> dropout -> 4: batch norm and dropout make the mode matter."""

    def __init__(self, p=0.3):
        super().__init__()
        self.fc1, self.bn, self.drop, self.fc2 = nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Dropout(p), nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(self.drop(torch.relu(self.bn(self.fc1(x)))))


PRELUDE = "import torch\nfrom torch import nn\n"
EQUIVALENT = {
    "the reference's own code": "class Net(nn.Module):\n    def __init__(self, p=0.3):\n        super().__init__()\n"
    "        self.fc1, self.bn, self.drop, self.fc2 = nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Dropout(p), "
    "nn.Linear(16, 4)\n    def forward(self, x):\n        return self.fc2(self.drop(torch.relu(self.bn(self.fc1(x)))))\n",
    "nn.Sequential with other names": "class Net(nn.Module):\n    def __init__(self, p=0.3):\n"
    "        super().__init__()\n        self.body = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(),"
    " nn.Dropout(p), nn.Linear(16, 4))\n    def forward(self, x):\n        return self.body(x)\n",
    "functional dropout with self.training": "import torch.nn.functional as F\nclass Net(nn.Module):\n"
    "    def __init__(self, p=0.3):\n        super().__init__()\n        self.p = p\n"
    "        self.a, self.norm, self.b = nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Linear(16, 4)\n"
    "    def forward(self, x):\n        h = F.relu(self.norm(self.a(x)))\n"
    "        return self.b(F.dropout(h, self.p, training=self.training))\n",
}
WRONG = {
    "ReLU forgotten": ("torch.relu(self.bn(self.fc1(x)))", "self.bn(self.fc1(x))", "its output"),
    "ReLU before batch norm": ("torch.relu(self.bn(self.fc1(x)))", "self.bn(torch.relu(self.fc1(x)))", "its output"),
    "dropout that never switches off": ("self.drop(", "torch.nn.functional.dropout(training=True, input=",
                                        "in eval mode: its output"),
    "a detached hidden layer": ("self.fc1(x)", "self.fc1(x).detach()", "got no gradient"),
    "a detached input": ("self.fc1(x)", "self.fc1(x.detach())", "no gradient reaches input 0"),
    "batch norm with another momentum": ("nn.BatchNorm1d(16)", "nn.BatchNorm1d(16, momentum=0.5)",
                                         "running statistic"),
}


def inputs(count=2):
    generator = torch.Generator().manual_seed(7)
    return [(torch.randn(5 + k, 8, generator=generator, dtype=torch.float64),) for k in range(count)]


@pytest.mark.parametrize("source", EQUIVALENT.values(), ids=EQUIVALENT.keys())
def test_an_equivalent_construction_on_the_reference_weights_passes(notebook, source):
    notebook(PRELUDE + source)
    assert_same_model("Net(0.3)", ReferenceNet(0.3), inputs(), name="Net")


@pytest.mark.parametrize(("old", "new", "message"), WRONG.values(), ids=WRONG.keys())
def test_a_model_that_computes_something_else_fails_and_the_message_says_where(notebook, old, new, message):
    source = EQUIVALENT["the reference's own code"]
    assert old in source
    notebook(PRELUDE + source.replace(old, new, 1))
    with pytest.raises(AssertionError) as raised:
        assert_same_model("Net(0.3)", ReferenceNet(0.3), inputs(), name="Net")
    assert message in str(raised.value)
    assert str(raised.value).startswith("Net in ")


def test_layers_that_cannot_be_matched_by_shape_are_named_in_the_message(notebook):
    notebook(PRELUDE + EQUIVALENT["the reference's own code"].replace("nn.Linear(16, 4)", "nn.Linear(16, 5)"))
    with pytest.raises(AssertionError) as raised:
        assert_same_model("Net(0.3)", ReferenceNet(0.3), inputs(1), name="Net")
    text = str(raised.value)
    assert "cannot be matched with the reference's by shape" in text
    assert "(5, 16)" in text and "(4, 16)" in text


def test_layers_of_different_shapes_declared_in_another_order_than_used_still_match(notebook):
    notebook(PRELUDE + EQUIVALENT["the reference's own code"].replace(
        "self.fc1, self.bn, self.drop, self.fc2 = nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Dropout(p), nn.Linear(16, 4)",
        "self.fc2, self.bn, self.drop, self.fc1 = nn.Linear(16, 4), nn.BatchNorm1d(16), nn.Dropout(p), nn.Linear(8, 16)"))
    assert_same_model("Net(0.3)", ReferenceNet(0.3), inputs(), name="Net")


class TwoHidden(nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(6, 6), nn.Linear(6, 6)

    def forward(self, x):
        return self.second(torch.tanh(self.first(x)))


def test_layers_of_one_shape_are_matched_in_declaration_order_so_a_swapped_use_fails(notebook):
    notebook(PRELUDE + "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
             "        self.first, self.second = nn.Linear(6, 6), nn.Linear(6, 6)\n"
             "    def forward(self, x):\n        return self.first(torch.tanh(self.second(x)))\n")
    x = [(torch.randn(4, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64),)]
    with pytest.raises(AssertionError, match="its output on the same weights"):
        assert_same_model("Net()", TwoHidden(), x, name="Net")


def test_models_with_several_outputs_and_integer_inputs_are_compared_output_by_output(notebook):
    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.rnn = nn.Embedding(11, 6), nn.GRU(6, 5, batch_first=True)

        def forward(self, tokens):
            return self.rnn(self.embed(tokens))

    notebook(PRELUDE + "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
             "        self.e, self.r = nn.Embedding(11, 6), nn.GRU(6, 5, batch_first=True)\n"
             "    def forward(self, tokens):\n        out, h = self.r(self.e(tokens))\n        return out, 2 * h\n")
    tokens = [(torch.randint(0, 11, (3, 4), generator=torch.Generator().manual_seed(k)),) for k in range(2)]
    with pytest.raises(AssertionError, match="its output 1 on the same weights"):
        assert_same_model("Net()", Reference(), tokens, name="Net", modes=("eval",))
