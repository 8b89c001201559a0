"""A5 (recurrent networks and attention): the master's reference solutions against torch's own layers, the
mutants' reference code against the master's, and the recurrent test cell's ban on torch's recurrent layers.
``solutions`` is the master's reference namespace (conftest.py). The rest of the notebook's structure, the
release and the grading-mode run: test_masters.py."""

from __future__ import annotations

import math

import nbformat
import pytest
import torch

from dlcourse.core.notebook import nbgrader_meta
from helpers import SOURCE, mutant_modules

MASTER = SOURCE / "a5_rnn_attention" / "a5_rnn_attention.ipynb"


@pytest.fixture(scope="module")
def master():
    return nbformat.read(str(MASTER), as_version=4)


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
# The mutants' reference code, and the recurrent test cell


def test_rnn_test_forbids_torch_recurrent_layers(master):
    source = next(c.source for c in master.cells if c.cell_type == "code" and nbgrader_meta(c).get("grade")
                  and nbgrader_meta(c)["grade_id"] == "test_VanillaRNN_structure")
    assert "assert_no_forbidden" in source and "torch.rnn_tanh" in source and '"RNN"' in source


def test_mutant_references_are_the_masters_solutions(solutions):
    """The mutants are edits of reference code that must behave as the master's solution does."""
    module = mutant_modules()["a5"]
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
