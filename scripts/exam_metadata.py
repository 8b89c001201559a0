"""Writes the exam's split of the course's items into the masters (``metadata["dlcourse"]["exam"]``).

The masters are the one source of truth for what an exam asks (see docs/exam.md); this script is how
that metadata was first put there, and how it is changed without a hand edit of the JSON: it reads
each master with nbformat, sets the exam metadata of the named cells only, and writes the notebook
back with nbformat (so the file's formatting is nbformat's, and a diff shows only those cells).
Running it again changes nothing.

    .venv/bin/python scripts/exam_metadata.py          # write
    .venv/bin/python scripts/exam_metadata.py --check  # exit 1 if a master differs from this table

An answer cell's entry: ``item`` (the exam item it belongs to; an item may span several cells, in
notebook order), ``title`` (on the item's first cell), ``parts`` (the lettered sub-questions: the
methods whose solution regions the student writes, the points, the task, what earns partial credit)
and ``tests`` (the master's test cells that grade the item in a computer-based sitting, each with the
exam's points and the parts it checks). A written cell's entry ``{"open": true}`` makes it one of the
default open questions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def part(methods, points, task, partial):
    return {"methods": list(methods), "points": points, "task": task, "partial": partial}


def test(cell, points, parts):
    return {"cell": cell, "points": points, "parts": list(parts)}


ITEMS = {
    "a3_layers/a3_layers.ipynb": {
        "linear": {
            "item": "linear", "title": "A fully connected layer",
            "parts": [
                part(["init_params"], 1, "Complete `init_params`: weight ~ N(0, 1) of shape (in_feat, out_feat), "
                                         "bias ~ U[0, 1) of shape (out_feat,).",
                     "1: both draws with the right shapes; 0.5: one of them right."),
                part(["forward"], 2, "Complete `forward`: return y = x W + b for a batch x and keep what "
                                     "`backward` needs.",
                     "1: the product x @ weight right but the bias missing or the input not kept; 2: both."),
                part(["backward"], 2, "Complete `backward`: store dW and db, return dL/dx.",
                     "0.5 each for dW = x^T G and db = sum of G over the batch, 1 for dx = G W^T."),
            ],
            "tests": [test("test_linear_init", 1, [0]), test("test_linear_forward", 2, [1]),
                      test("test_linear_backward", 2, [2])],
        },
        "relu": {
            "item": "activations", "title": "ReLU and Sigmoid, forward and backward",
            "parts": [
                part(["forward"], 1, "Complete `ReLU.forward` (keep what backward needs).",
                     "1: max(x, 0) and a mask or the input kept; 0.5: the output only."),
                part(["backward"], 1, "Complete `ReLU.backward` without changing `dupstream` in place.",
                     "1: dupstream where x > 0, else 0, as a new tensor; 0.5: right values but in place."),
            ],
            "tests": [test("test_relu", 2, [0, 1])],
        },
        "sigmoid": {
            "item": "activations",
            "parts": [
                part(["forward"], 1, "Complete `Sigmoid.forward` (keep what backward needs).",
                     "1: 1 / (1 + exp(-x)) and what backward needs kept; 0.5: the output only."),
                part(["backward"], 1, "Complete `Sigmoid.backward`: dupstream times sigma(x)(1 - sigma(x)).",
                     "1: the local derivative times dupstream; 0.5: the derivative alone."),
            ],
            "tests": [test("test_sigmoid", 2, [0, 1])],
        },
        "fcnet_do": {
            "item": "fcnet_do", "title": "A network with dropout on a residual branch (FCNet_do)",
            "parts": [
                part(["__init__"], 1, "Complete `__init__`: the three linear layers fc1, fc2, fc3, the ReLU and "
                                      "the dropout with probability p.",
                     "1: all layers with the sizes 16 -> 32 -> 32 -> 64 and Dropout(p); 0.5: one size wrong."),
                part(["forward"], 2, "Complete `forward`: out = fc3(h1 + Dropout(h2)) with h1 = ReLU(fc1(x)), "
                                     "h2 = ReLU(fc2(h1)).",
                     "1: the residual sum right but the dropout on the wrong branch or missing; 2: all of it."),
            ],
            "tests": [test("test_fcnet_do", 3, [0, 1])],
        },
    },
    "a4_convnets/a4_convnets.ipynb": {
        "Conv2d": {
            "item": "conv2d", "title": "Conv2d forward by loops over the input window",
            "parts": [
                part(["__init__"], 1, "Complete `__init__`: weight of shape (out_channels, in_channels, k, k) "
                                      "and bias of shape (out_channels,) as nn.Parameter, uniform in +-1/sqrt(C k k).",
                     "1: shapes and nn.Parameter right; 0.5: shapes right, not parameters."),
                part(["forward"], 4, "Complete `forward`: pad, loop over the output positions, multiply each "
                                     "window with the weights and add the bias.",
                     "1 each: the padding, the output size with stride, the window's slice, the sum over "
                     "(C, k, k) plus the bias."),
            ],
            "tests": [test("test_Conv2d", 4, [0, 1]), test("test_Conv2d_elementary", 1, [1])],
        },
    },
    "a2_optimisers/a2_optimisers.ipynb": {
        "sgd_momentum": {
            "item": "sgd_momentum", "title": "SGD with momentum in EWMA form",
            "parts": [
                part(["__init__", "zero_grad"], 1, "Complete `__init__` (a velocity per parameter, zero at "
                                                    "the start) and `zero_grad`.",
                     "0.5 each: the zero velocities, the gradients reset."),
                part(["step"], 3, "Complete `step`: v = rho v + (1 - rho) g, then p = p - lr v, without "
                                  "autograd recording it.",
                     "1: the EWMA of the velocity; 1: the update of the parameters in place; 1: under no_grad, "
                     "a parameter without gradient skipped."),
            ],
            "tests": [test("test_sgd_momentum", 4, [0, 1])],
        },
    },
    "a5_rnn_attention/a5_rnn_attention.ipynb": {
        "VanillaRNN": {
            "item": "rnn", "title": "A vanilla RNN",
            "parts": [
                part(["__init__"], 2, "Complete `__init__`: the four parameters weight_xh, weight_hh, bias_xh, "
                                      "bias_hh as nn.Parameter, uniform in +-1/sqrt(hidden_size).",
                     "0.5 per parameter with its shape."),
                part(["forward"], 3, "Complete `forward`: h_0 = 0, h_t = tanh(W_xh x_t + b_xh + W_hh h_(t-1) + "
                                     "b_hh), return every h_t as (N, T, H).",
                     "1: the loop over time with h_0 = 0; 1: the update; 1: the states stacked to (N, T, H)."),
            ],
            "tests": [test("test_VanillaRNN_structure", 1, [0]), test("test_VanillaRNN", 3, [1]),
                      test("test_VanillaRNN_grad", 1, [0, 1])],
        },
        "SelfAttention": {
            "item": "self_attention", "title": "Self-attention",
            "parts": [
                part(["__init__"], 1, "Complete `__init__`: the query, key and value maps, d x d, without biases.",
                     "1: three nn.Linear(d, d, bias=False); 0.5: with biases."),
                part(["forward"], 3, "Complete `forward`: softmax(Q K^T / sqrt(d)) V.",
                     "1: the scores with the scaling; 1: the softmax over the keys (last dimension); "
                     "1: the weighted sum of the values."),
            ],
            "tests": [test("test_SelfAttention", 3, [0, 1]), test("test_SelfAttention_params", 1, [0])],
        },
    },
    "a6_autoencoders/a6_autoencoders.ipynb": {
        "Encoder": {
            "item": "autoencoder", "title": "An autoencoder",
            "parts": [
                part(["__init__"], 2, "Complete `Encoder.__init__`: s*s -> h_dim[0] -> h_dim[1] -> l_dim, ReLU "
                                      "between, none at the code.",
                     "1: the sizes; 1: the activations (no ReLU at the latent)."),
                part(["forward"], 1, "Complete `Encoder.forward`.", "1: flattens the image and applies the layers."),
            ],
            "tests": [test("test_Encoder", 3, [0, 1])],
        },
        "Decoder": {
            "item": "autoencoder",
            "parts": [
                part(["__init__"], 2, "Complete `Decoder.__init__`: l_dim -> h_dim[1] -> h_dim[0] -> s*s, ReLU "
                                      "between, a sigmoid at the end.",
                     "1: the sizes in reverse; 1: the activations with the final sigmoid."),
                part(["forward"], 1, "Complete `Decoder.forward`: images of shape (N, 1, s, s).",
                     "1: applies the layers and reshapes."),
            ],
            "tests": [test("test_Decoder", 3, [0, 1])],
        },
        "Autoencoder": {
            "item": "autoencoder",
            "parts": [
                part(["__init__", "forward"], 2, "Complete `Autoencoder`: an encoder and a decoder, and "
                                                 "decoder(encoder(x)).",
                     "1: both parts built with the same sizes; 1: forward composes them."),
            ],
            "tests": [test("test_Autoencoder", 2, [0])],
        },
    },
}

OPEN = {
    "a2_optimisers/a2_optimisers.ipynb": ["warmup_written", "adamw_written", "ewma_written"],
    "a4_convnets/a4_vgg_cifar.ipynb": ["batchnorm_written"],
    "a5_rnn_attention/a5_rnn_attention.ipynb": ["vanishing_exploding", "attention_vs_recurrence", "why_heads"],
    "a6_autoencoders/a6_autoencoders.ipynb": ["gan_objective"],
}


def wanted() -> dict[str, dict[str, dict]]:
    table: dict[str, dict[str, dict]] = {}
    for master, cells in ITEMS.items():
        table.setdefault(master, {}).update(cells)
    for master, ids in OPEN.items():
        table.setdefault(master, {}).update({grade_id: {"open": True} for grade_id in ids})
    return table


def apply(root: Path = ROOT, *, check: bool = False) -> list[str]:
    """Sets the table's entries; returns the masters that changed (with ``check``: that would change)."""
    changed = []
    for master, cells in wanted().items():
        path = root / "source" / master
        notebook = nbformat.read(str(path), as_version=4)
        found = set()
        dirty = False
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in cells:
                found.add(grade_id)
                if cell.metadata.get("dlcourse", {}).get("exam") != cells[grade_id]:
                    cell.metadata.setdefault("dlcourse", {})["exam"] = cells[grade_id]
                    dirty = True
        missing = set(cells) - found
        if missing:
            raise SystemExit(f"{master}: no cell with grade_id {sorted(missing)}")
        if dirty:
            changed.append(master)
            if not check:
                nbformat.write(notebook, str(path))
    return changed


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    changed = apply(check=check)
    for master in changed:
        print(("differs: " if check else "wrote ") + master)
    sys.exit(1 if check and changed else 0)
