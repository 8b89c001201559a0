"""Mutants and alternatives for A2 (optimisers); format in tests/mutants/README.md.

Mutants are anchored edits of the master's reference solutions (tests/mutants/derive.py).
"""

from __future__ import annotations

from mutants.derive import Reference

NOTEBOOK = "a2_optimisers/a2_optimisers.ipynb"

_REFERENCE = Reference(NOTEBOOK)
_edit, _body = _REFERENCE.edit, _REFERENCE.with_body

_ADAM_MOMENTS = ("                m.mul_(self.beta1).add_((1 - self.beta1) * g)\n"
                 "                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)\n")
_ADAM_CORRECTION = ("m_hat = m / (1 - self.beta1 ** self.t)\n                v_hat = v / (1 - self.beta2 ** self.t)")
_ADAMW_DECAY = "                p.mul_(1 - self.lr * self.weight_decay)\n"
_ADAM_UPDATE = "p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)"
_SGD_VELOCITY = "v.mul_(self.rho).add_((1 - self.rho) * p.grad)"
_EWMA_STORE = "averages[t] = s / (1 - rho ** (t + 1)) if bias_correction else s"

MUTANTS = [
    # ---- Adam
    ("adam", "bias correction forgotten",
     _edit("adam", ("m_hat = m / (1 - self.beta1 ** self.t)", "m_hat = m"),
           ("v_hat = v / (1 - self.beta2 ** self.t)", "v_hat = v"))),
    ("adam", "beta1 and beta2 swapped",
     _edit("adam", (_ADAM_MOMENTS, "                m.mul_(self.beta2).add_((1 - self.beta2) * g)\n"
                                   "                v.mul_(self.beta1).add_((1 - self.beta1) * g * g)\n"),
           (_ADAM_CORRECTION, "m_hat = m / (1 - self.beta2 ** self.t)\n"
                              "                v_hat = v / (1 - self.beta1 ** self.t)"))),
    ("adam", "eps inside the square root",
     _edit("adam", ("(v_hat.sqrt() + self.eps)", "torch.sqrt(v_hat + self.eps)"))),
    ("adam", "step count t advanced once per parameter tensor",
     _edit("adam", ("        self.t += 1\n", ""), ("                g = p.grad\n",
                                                     "                self.t += 1\n                g = p.grad\n"))),
    ("adam", "second moment of |g| instead of g squared",
     _edit("adam", ("(1 - self.beta2) * g * g", "(1 - self.beta2) * g.abs()"), ("v_hat.sqrt()", "v_hat"))),
    ("adam", "bias correction off by one step (t + 1)",
     _edit("adam", (_ADAM_CORRECTION, "m_hat = m / (1 - self.beta1 ** (self.t + 1))\n"
                                      "                v_hat = v / (1 - self.beta2 ** (self.t + 1))"))),
    ("adam", "wraps torch.optim.Adam", _body(
        "adam", __init__="self.inner = torch.optim.Adam(list(params), lr=lr, betas=betas, eps=eps)",
        zero_grad="self.inner.zero_grad()", step="self.inner.step()")),
    ("adam", "wrong default learning rate", _edit("adam", ("lr=1e-3", "lr=1e-2"))),
    # ---- first step
    ("step1_update", "bias correction forgotten", _body("step1_update", adam_step1_update='''
        beta1, beta2 = betas
        m = (1 - beta1) * g
        v = (1 - beta2) * g ** 2
        return -lr * m / (v.sqrt() + eps)''')),
    ("step1_update", "plain sign, eps ignored", _edit("step1_update", ("g / (g.abs() + eps)", "torch.sign(g)"))),
    ("step1_update", "eps inside the square root",
     _edit("step1_update", ("g / (g.abs() + eps)", "g / torch.sqrt(g ** 2 + eps)"))),
    ("step1_update", "wrong sign of the update", _edit("step1_update", ("return -lr * g", "return lr * g"))),
    # ---- second step
    ("step2_update", "bias correction of step 1 used at step 2", _body("step2_update", adam_step2_update='''
        beta1, beta2 = betas
        m = beta1 * (1 - beta1) * g1 + (1 - beta1) * g2
        v = beta2 * (1 - beta2) * g1 ** 2 + (1 - beta2) * g2 ** 2
        return -lr * (m / (1 - beta1)) / ((v / (1 - beta2)).sqrt() + eps)''')),
    ("step2_update", "beta1 and beta2 swapped",
     _edit("step2_update", ("beta1, beta2 = betas", "beta2, beta1 = betas"))),
    ("step2_update", "plain average of the two gradients",
     _edit("step2_update", ("(beta1 * g1 + g2) / (1 + beta1)", "(g1 + g2) / 2"),
           ("(beta2 * g1 ** 2 + g2 ** 2) / (1 + beta2)", "(g1 ** 2 + g2 ** 2) / 2"))),
    ("step2_update", "no bias correction", _body("step2_update", adam_step2_update='''
        beta1, beta2 = betas
        m = beta1 * (1 - beta1) * g1 + (1 - beta1) * g2
        v = beta2 * (1 - beta2) * g1 ** 2 + (1 - beta2) * g2 ** 2
        return -lr * m / (v.sqrt() + eps)''')),
    ("step2_update", "the total update of both steps",
     _edit("step2_update", ("(v_hat.sqrt() + eps)", "(v_hat.sqrt() + eps) - lr * g1 / (g1.abs() + eps)"))),
    # ---- AdamW
    ("adamw", "weight decay applied as an L2 term in the gradient",
     _edit("adamw", (_ADAMW_DECAY, ""), ("g = p.grad\n", "g = p.grad + self.weight_decay * p\n"))),
    ("adamw", "decay not scaled by the learning rate",
     _edit("adamw", ("p.mul_(1 - self.lr * self.weight_decay)", "p.mul_(1 - self.weight_decay)"))),
    ("adamw", "decay added inside the normalised update",
     _edit("adamw", (_ADAMW_DECAY, ""), (_ADAM_UPDATE, "p -= self.lr * (m_hat + self.weight_decay * p) / "
                                                       "(v_hat.sqrt() + self.eps)"))),
    ("adamw", "no weight decay at all", _edit("adamw", (_ADAMW_DECAY, ""))),
    # ---- L2 penalty
    ("l2_penalty", "factor 1/2 missing", _edit("l2_penalty", ("0.5 * weight_decay", "weight_decay"))),
    ("l2_penalty", "only the first tensor",
     _edit("l2_penalty", ("sum((p ** 2).sum() for p in params)", "(params[0] ** 2).sum()"))),
    ("l2_penalty", "detached: returns a Python number",
     _edit("l2_penalty", ("sum((p ** 2).sum() for p in params)", "sum(float((p ** 2).sum()) for p in params)"))),
    ("l2_penalty", "norm instead of squared norm",
     _edit("l2_penalty", ("sum((p ** 2).sum() for p in params)", "torch.sqrt(sum((p ** 2).sum() for p in params))"))),
    # ---- SGD with momentum
    ("sgd_momentum", "torch.optim.SGD's form v = rho v + g",
     _edit("sgd_momentum", (_SGD_VELOCITY, "v.mul_(self.rho).add_(p.grad)"))),
    ("sgd_momentum", "torch.optim.SGD with dampening (first step undamped)", _body(
        "sgd_momentum", __init__="self.inner = torch.optim.SGD(list(params), lr=lr, momentum=rho, dampening=rho)",
        zero_grad="self.inner.zero_grad()", step="self.inner.step()")),
    ("sgd_momentum", "torch's form, hand written: first velocity is the gradient, then damped",
     _edit("sgd_momentum", (_SGD_VELOCITY, '''if getattr(self, "started", False):
                    v.mul_(self.rho).add_((1 - self.rho) * p.grad)
                else:
                    v.copy_(p.grad)'''), ("                p -= self.lr * v\n",
                                         "                p -= self.lr * v\n            self.started = True\n"))),
    ("sgd_momentum", "weights rho and 1 - rho swapped",
     _edit("sgd_momentum", (_SGD_VELOCITY, "v.mul_(1 - self.rho).add_(self.rho * p.grad)"))),
    ("sgd_momentum", "steps along the gradient, velocity unused",
     _edit("sgd_momentum", ("p -= self.lr * v", "p -= self.lr * p.grad"))),
    # ---- EWMA
    ("ewma", "starts from S_0 = y_1", _edit("ewma", ("s = 0.0", "s = y[0]"))),
    ("ewma", "rho and 1 - rho swapped",
     _edit("ewma", ("s = rho * s + (1 - rho) * y[t]", "s = (1 - rho) * s + rho * y[t]"))),
    ("ewma", "bias correction with rho**(t-1) (off by one)", _edit("ewma", ("rho ** (t + 1)", "rho ** (t + 2)"))),
    ("ewma", "bias correction ignored", _edit("ewma", (_EWMA_STORE, "averages[t] = s"))),
    ("ewma", "overwrites y in place", _edit("ewma", ("averages = torch.zeros_like(y)", "averages = y"))),
]

ALTERNATIVES = [
    ("adam", "torch-style in-place ops with a state dict and a step size", '''class Adam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.state = {}
        self.t = 0

    def zero_grad(self):
        for p in self.params:
            if p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self):
        self.t += 1
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if i not in self.state:
                self.state[i] = (torch.zeros_like(p), torch.zeros_like(p))
            exp_avg, exp_avg_sq = self.state[i]
            exp_avg.lerp_(p.grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            step_size = self.lr / (1 - beta1 ** self.t)
            denom = exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** self.t) + self.eps
            p.addcdiv_(exp_avg, denom, value=-step_size)
'''),
    ("adam", "functional style on p.data, rebinding the moment lists", '''class Adam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = [p for p in params]
        self.lr = lr
        self.b1 = betas[0]
        self.b2 = betas[1]
        self.eps = eps
        self.steps = 0
        self.m = [0.0 for _ in self.params]
        self.v = [0.0 for _ in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.steps = self.steps + 1
        for k in range(len(self.params)):
            p = self.params[k]
            g = p.grad.data
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g ** 2
            m_hat = self.m[k] / (1 - self.b1 ** self.steps)
            v_hat = self.v[k] / (1 - self.b2 ** self.steps)
            p.data = p.data - self.lr * m_hat / (torch.sqrt(v_hat) + self.eps)
'''),
    ("adam", "zero_grad zeroes the gradients in place (no None check)",
     _edit("adam", ("p.grad = None", "p.grad.zero_()"))),
    ("step1_update", "lines (2)-(6) written out with the betas", '''def adam_step1_update(g, lr, betas=(0.9, 0.999), eps=1e-8):
    beta1, beta2 = betas
    m_hat = ((1 - beta1) * g) / (1 - beta1)
    v_hat = ((1 - beta2) * g * g) / (1 - beta2)
    return -lr * m_hat / (torch.sqrt(v_hat) + eps)
'''),
    ("step1_update", "sign times a shrink factor", '''def adam_step1_update(g, lr, betas=(0.9, 0.999), eps=1e-8):
    return -lr * torch.sign(g) * g.abs() / (g.abs() + eps)
'''),
    ("step2_update", "both steps of the moments computed one after the other", '''def adam_step2_update(g1, g2, lr, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m, v = torch.zeros_like(g1), torch.zeros_like(g1)
    for g in (g1, g2):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
    return -lr * (m / (1 - b1 ** 2)) / (torch.sqrt(v / (1 - b2 ** 2)) + eps)
'''),
    ("adamw", "subclass of the student's own Adam", '''class AdamW(Adam):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        params = list(params)
        super().__init__(params, lr=lr, betas=betas, eps=eps)
        self.decayed = params
        self.decay_rate = lr * weight_decay

    def step(self):
        with torch.no_grad():
            for p in self.decayed:
                if p.grad is not None:
                    p -= self.decay_rate * p
        super().step()
'''),
    ("adamw", "decay folded into one update from the old theta",
     _edit("adamw", (_ADAMW_DECAY, ""),
           (_ADAM_UPDATE,
            "p.data = p.data - self.lr * (m_hat / (v_hat.sqrt() + self.eps) + self.weight_decay * p.data)"))),
    ("l2_penalty", "one flat vector and a dot product", '''def l2_penalty(params, weight_decay):
    flat = torch.cat([p.reshape(-1) for p in params])
    return weight_decay / 2 * torch.dot(flat, flat)
'''),
    ("l2_penalty", "a loop with norms", '''def l2_penalty(params, weight_decay):
    total = 0
    for p in params:
        total = total + torch.linalg.norm(p.flatten()) ** 2
    return total * weight_decay * 0.5
'''),
    ("sgd_momentum", "lerp and p.data", '''class SGDMomentum:
    def __init__(self, params, lr=1e-2, rho=0.9):
        self.params = list(params)
        self.lr = lr
        self.rho = rho
        self.v = {}

    def zero_grad(self):
        for p in self.params:
            if p.grad is not None:
                p.grad.detach_()
                p.grad.zero_()

    def step(self):
        for i, p in enumerate(self.params):
            if i not in self.v:
                self.v[i] = torch.zeros_like(p.data)
            self.v[i].lerp_(p.grad.data, 1 - self.rho)
            p.data.sub_(self.lr * self.v[i])
'''),
    ("ewma", "closed form with a matrix of powers", '''def ewma(y, rho, bias_correction=False):
    T = y.shape[0]
    t = torch.arange(1, T + 1, dtype=y.dtype)
    weights = torch.tril((1 - rho) * rho ** (t[:, None] - t[None, :]))
    s = weights @ y
    if bias_correction:
        s = s / (1 - rho ** t)
    return s
'''),
    ("ewma", "a Python list and torch.stack", '''def ewma(y, rho, bias_correction=False):
    values = []
    s = torch.zeros((), dtype=y.dtype)
    for t, y_t in enumerate(y, start=1):
        s = rho * s + (1 - rho) * y_t
        values.append(s / (1 - rho ** t) if bias_correction else s)
    return torch.stack(values)
'''),
]
