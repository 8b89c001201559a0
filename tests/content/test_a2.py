"""A2 (optimisers): the master's reference solutions against the curriculum's truth numbers and torch.optim.
``solutions`` is the master's reference namespace (conftest.py). The notebook's structure, release and
grading-mode run: test_masters.py."""

from __future__ import annotations

import torch


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
