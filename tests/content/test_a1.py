"""A1 (reverse-mode autodiff): the master's reference solutions against the curriculum's truth numbers and
torch's autograd (``solutions``: the master's reference namespace, from conftest.py). The notebook's
structure, release and grading-mode run: test_masters.py."""

from __future__ import annotations

import math

import torch


# --------------------------------------------------------------------------
# Truth numbers of the curriculum


def test_item1_truth(solutions):
    trace = solutions["forward_trace"](3.0, 5.0)
    adjoints = solutions["reverse_trace"](3.0, 5.0)
    assert round(trace["f"], 4) == 42.1114
    assert round(adjoints["x_bar"], 4) == 48.7569
    assert round(adjoints["c_bar"], 4) == -10.0


def test_item1_symbolic_formula_in_the_rubric_matches(solutions):
    # df/dx = 2x³(2 log x − 1)/(log x)³ and df/dc = −2c, as the rubric states.
    for x, c in [(3.0, 5.0), (1.7, -2.0), (5.5, 0.3)]:
        adjoints = solutions["reverse_trace"](x, c)
        assert math.isclose(adjoints["x_bar"], 2 * x ** 3 * (2 * math.log(x) - 1) / math.log(x) ** 3, rel_tol=1e-12)
        assert math.isclose(adjoints["c_bar"], -2 * c, rel_tol=1e-12, abs_tol=1e-12)


def test_item2_truth(solutions):
    dfdx, dfdc = solutions["autograd_gradients"](3.0, 5.0)
    assert round(float(dfdx), 4) == 48.7569 and round(float(dfdc), 4) == -10.0


def test_item3_truth(solutions):
    trace = solutions["gw_forward_trace"](1.5, 0.5)
    adjoints = solutions["gw_reverse_trace"](1.5, 0.5)
    assert round(trace["v6"], 5) == 2.01665
    assert round(adjoints["v-1_bar"], 5) == 3.01184
    assert round(adjoints["v0_bar"], 5) == -13.72396


def test_item4_sin_affine_has_shape_m_by_n(solutions):
    A = torch.randn(4, 3, dtype=torch.float64)
    b, x = torch.randn(4, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    J = solutions["jacobian_sin_affine"](A, b, x)
    assert J.shape == (4, 3)
    assert torch.allclose(J, torch.diag(torch.cos(A @ x + b)) @ A)


def test_item5_engine_matches_torch_on_A_and_B(solutions):
    Var = solutions["Var"]
    a, b, c = Var(1.0), Var(2.0), Var(0.5)
    A = solutions["build_A"](a, b, c)
    A.backward()
    ta, tb, tc = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.0, 2.0, 0.5))
    s = ta + tb + tc ** 2
    tA = s.sqrt() + s.log() + s / (tb * tc ** 2)
    tA.backward()
    assert math.isclose(A.value, tA.item(), rel_tol=1e-12)
    for mine, theirs in zip((a, b, c), (ta, tb, tc)):
        assert math.isclose(mine.grad, theirs.grad.item(), rel_tol=1e-10)

    w0, w1 = Var(0.5), Var(2.0)
    B = solutions["build_B"](w0, w1, [1.0, 2.0, 3.0], [2.0, 4.5, 7.0])
    B.backward()
    # residuals 0.5, 0, -0.5: B = 0.5, dB/dw0 = 2·Σr = 0, dB/dw1 = 2·Σ r x = 2·(0.5 − 1.5) = −2
    assert math.isclose(B.value, 0.5) and abs(w0.grad) < 1e-12 and math.isclose(w1.grad, -2.0)


def test_item5_backward_accumulates_where_a_node_fans_out(solutions):
    Var = solutions["Var"]
    x = Var(0.7)
    u = x * x
    w = (u + x) + u  # u is used twice, x three times
    w.backward()
    assert math.isclose(x.grad, 4 * 0.7 + 1) and math.isclose(u.grad, 2.0)
