"""Mutants and alternatives for A2 (optimisers); format in tests/mutants/README.md."""

NOTEBOOK = "a2_optimisers/a2_optimisers.ipynb"

_ADAM_INIT = '''
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None
'''


def _adam(step_body: str) -> str:
    return "class Adam:\n" + _ADAM_INIT + "\n    def step(self):\n" + step_body


_ADAMW_INIT = '''
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        self.params = list(params)
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None
'''


def _adamw(step_body: str) -> str:
    return "class AdamW:\n" + _ADAMW_INIT + "\n    def step(self):\n" + step_body


_SGD_INIT = '''
    def __init__(self, params, lr=1e-2, rho=0.9):
        self.params = list(params)
        self.lr = lr
        self.rho = rho
        self.velocity = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None
'''


def _sgd(step_body: str) -> str:
    return "class SGDMomentum:\n" + _SGD_INIT + "\n    def step(self):\n" + step_body


MUTANTS = [
    # ---- Adam
    ("adam", "bias correction forgotten", _adam('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                p -= self.lr * m / (v.sqrt() + self.eps)
''')),
    ("adam", "beta1 and beta2 swapped", _adam('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(self.beta2).add_((1 - self.beta2) * g)
                v.mul_(self.beta1).add_((1 - self.beta1) * g * g)
                m_hat = m / (1 - self.beta2 ** self.t)
                v_hat = v / (1 - self.beta1 ** self.t)
                p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
''')),
    ("adam", "eps inside the square root", _adam('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                m_hat = m / (1 - self.beta1 ** self.t)
                v_hat = v / (1 - self.beta2 ** self.t)
                p -= self.lr * m_hat / torch.sqrt(v_hat + self.eps)
''')),
    ("adam", "step count t advanced once per parameter tensor", _adam('''
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                self.t += 1
                g = p.grad
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                m_hat = m / (1 - self.beta1 ** self.t)
                v_hat = v / (1 - self.beta2 ** self.t)
                p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
''')),
    ("adam", "second moment of |g| instead of g squared", _adam('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g.abs())
                m_hat = m / (1 - self.beta1 ** self.t)
                v_hat = v / (1 - self.beta2 ** self.t)
                p -= self.lr * m_hat / (v_hat + self.eps)
''')),
    ("adam", "bias correction off by one step (t + 1)", _adam('''
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                m_hat = m / (1 - self.beta1 ** (self.t + 2))
                v_hat = v / (1 - self.beta2 ** (self.t + 2))
                p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
        self.t += 1
''')),
    ("adam", "wraps torch.optim.Adam", '''class Adam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.inner = torch.optim.Adam(list(params), lr=lr, betas=betas, eps=eps)

    def zero_grad(self):
        self.inner.zero_grad()

    def step(self):
        self.inner.step()
'''),
    ("adam", "wrong default learning rate", _adam('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                m_hat = m / (1 - self.beta1 ** self.t)
                v_hat = v / (1 - self.beta2 ** self.t)
                p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
''').replace("lr=1e-3", "lr=1e-2")),
    # ---- first step
    ("step1_update", "bias correction forgotten", '''def adam_step1_update(g, lr, betas=(0.9, 0.999), eps=1e-8):
    beta1, beta2 = betas
    m = (1 - beta1) * g
    v = (1 - beta2) * g ** 2
    return -lr * m / (v.sqrt() + eps)
'''),
    ("step1_update", "plain sign, eps ignored", '''def adam_step1_update(g, lr, betas=(0.9, 0.999), eps=1e-8):
    return -lr * torch.sign(g)
'''),
    ("step1_update", "eps inside the square root", '''def adam_step1_update(g, lr, betas=(0.9, 0.999), eps=1e-8):
    return -lr * g / torch.sqrt(g ** 2 + eps)
'''),
    ("step1_update", "wrong sign of the update", '''def adam_step1_update(g, lr, betas=(0.9, 0.999), eps=1e-8):
    return lr * g / (g.abs() + eps)
'''),
    # ---- second step
    ("step2_update", "bias correction of step 1 used at step 2", '''def adam_step2_update(g1, g2, lr, betas=(0.9, 0.999), eps=1e-8):
    beta1, beta2 = betas
    m = beta1 * (1 - beta1) * g1 + (1 - beta1) * g2
    v = beta2 * (1 - beta2) * g1 ** 2 + (1 - beta2) * g2 ** 2
    return -lr * (m / (1 - beta1)) / ((v / (1 - beta2)).sqrt() + eps)
'''),
    ("step2_update", "beta1 and beta2 swapped", '''def adam_step2_update(g1, g2, lr, betas=(0.9, 0.999), eps=1e-8):
    beta2, beta1 = betas
    m_hat = (beta1 * g1 + g2) / (1 + beta1)
    v_hat = (beta2 * g1 ** 2 + g2 ** 2) / (1 + beta2)
    return -lr * m_hat / (v_hat.sqrt() + eps)
'''),
    ("step2_update", "plain average of the two gradients", '''def adam_step2_update(g1, g2, lr, betas=(0.9, 0.999), eps=1e-8):
    m_hat = (g1 + g2) / 2
    v_hat = (g1 ** 2 + g2 ** 2) / 2
    return -lr * m_hat / (v_hat.sqrt() + eps)
'''),
    ("step2_update", "no bias correction", '''def adam_step2_update(g1, g2, lr, betas=(0.9, 0.999), eps=1e-8):
    beta1, beta2 = betas
    m = beta1 * (1 - beta1) * g1 + (1 - beta1) * g2
    v = beta2 * (1 - beta2) * g1 ** 2 + (1 - beta2) * g2 ** 2
    return -lr * m / (v.sqrt() + eps)
'''),
    ("step2_update", "the total update of both steps", '''def adam_step2_update(g1, g2, lr, betas=(0.9, 0.999), eps=1e-8):
    beta1, beta2 = betas
    m_hat = (beta1 * g1 + g2) / (1 + beta1)
    v_hat = (beta2 * g1 ** 2 + g2 ** 2) / (1 + beta2)
    return -lr * m_hat / (v_hat.sqrt() + eps) - lr * g1 / (g1.abs() + eps)
'''),
    # ---- AdamW
    ("adamw", "weight decay applied as an L2 term in the gradient", _adamw('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad + self.weight_decay * p
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                m_hat = m / (1 - self.beta1 ** self.t)
                v_hat = v / (1 - self.beta2 ** self.t)
                p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
''')),
    ("adamw", "decay not scaled by the learning rate", _adamw('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                p.mul_(1 - self.weight_decay)
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                m_hat = m / (1 - self.beta1 ** self.t)
                v_hat = v / (1 - self.beta2 ** self.t)
                p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
''')),
    ("adamw", "decay added inside the normalised update", _adamw('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                m_hat = m / (1 - self.beta1 ** self.t)
                v_hat = v / (1 - self.beta2 ** self.t)
                p -= self.lr * (m_hat + self.weight_decay * p) / (v_hat.sqrt() + self.eps)
''')),
    ("adamw", "no weight decay at all", _adamw('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                m_hat = m / (1 - self.beta1 ** self.t)
                v_hat = v / (1 - self.beta2 ** self.t)
                p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
''')),
    # ---- L2 penalty
    ("l2_penalty", "factor 1/2 missing", '''def l2_penalty(params, weight_decay):
    return weight_decay * sum((p ** 2).sum() for p in params)
'''),
    ("l2_penalty", "only the first tensor", '''def l2_penalty(params, weight_decay):
    return 0.5 * weight_decay * (params[0] ** 2).sum()
'''),
    ("l2_penalty", "detached: returns a Python number", '''def l2_penalty(params, weight_decay):
    return 0.5 * weight_decay * sum(float((p ** 2).sum()) for p in params)
'''),
    ("l2_penalty", "norm instead of squared norm", '''def l2_penalty(params, weight_decay):
    return 0.5 * weight_decay * torch.sqrt(sum((p ** 2).sum() for p in params))
'''),
    # ---- SGD with momentum
    ("sgd_momentum", "torch.optim.SGD's form v = rho v + g", _sgd('''
        with torch.no_grad():
            for p, v in zip(self.params, self.velocity):
                v.mul_(self.rho).add_(p.grad)
                p -= self.lr * v
''')),
    ("sgd_momentum", "torch.optim.SGD with dampening (first step undamped)", '''class SGDMomentum:
    def __init__(self, params, lr=1e-2, rho=0.9):
        self.inner = torch.optim.SGD(list(params), lr=lr, momentum=rho, dampening=rho)

    def zero_grad(self):
        self.inner.zero_grad()

    def step(self):
        self.inner.step()
'''),
    ("sgd_momentum", "torch's form, hand written: first velocity is the gradient, then damped", _sgd('''
        with torch.no_grad():
            for i, (p, v) in enumerate(zip(self.params, self.velocity)):
                if getattr(self, "started", False):
                    v.mul_(self.rho).add_((1 - self.rho) * p.grad)
                else:
                    v.copy_(p.grad)
                p -= self.lr * v
            self.started = True
''')),
    ("sgd_momentum", "weights rho and 1 - rho swapped", _sgd('''
        with torch.no_grad():
            for p, v in zip(self.params, self.velocity):
                v.mul_(1 - self.rho).add_(self.rho * p.grad)
                p -= self.lr * v
''')),
    ("sgd_momentum", "steps along the gradient, velocity unused", _sgd('''
        with torch.no_grad():
            for p, v in zip(self.params, self.velocity):
                v.mul_(self.rho).add_((1 - self.rho) * p.grad)
                p -= self.lr * p.grad
''')),
    # ---- EWMA
    ("ewma", "starts from S_0 = y_1", '''def ewma(y, rho, bias_correction=False):
    out = torch.zeros_like(y)
    s = y[0]
    for t in range(len(y)):
        s = rho * s + (1 - rho) * y[t]
        out[t] = s / (1 - rho ** (t + 1)) if bias_correction else s
    return out
'''),
    ("ewma", "rho and 1 - rho swapped", '''def ewma(y, rho, bias_correction=False):
    out = torch.zeros_like(y)
    s = 0.0
    for t in range(len(y)):
        s = (1 - rho) * s + rho * y[t]
        out[t] = s / (1 - rho ** (t + 1)) if bias_correction else s
    return out
'''),
    ("ewma", "bias correction with rho**(t-1) (off by one)", '''def ewma(y, rho, bias_correction=False):
    out = torch.zeros_like(y)
    s = 0.0
    for t in range(len(y)):
        s = rho * s + (1 - rho) * y[t]
        out[t] = s / (1 - rho ** (t + 2)) if bias_correction else s
    return out
'''),
    ("ewma", "bias correction ignored", '''def ewma(y, rho, bias_correction=False):
    out = torch.zeros_like(y)
    s = 0.0
    for t in range(len(y)):
        s = rho * s + (1 - rho) * y[t]
        out[t] = s
    return out
'''),
    ("ewma", "overwrites y in place", '''def ewma(y, rho, bias_correction=False):
    s = 0.0
    plain = y
    for t in range(len(y)):
        s = rho * s + (1 - rho) * y[t]
        plain[t] = s
    if bias_correction:
        return plain / (1 - rho ** torch.arange(1, len(y) + 1, dtype=y.dtype))
    return plain
'''),
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
    ("adam", "zero_grad zeroes the gradients in place (no None check)", _adam('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                m_hat = m / (1 - self.beta1 ** self.t)
                v_hat = v / (1 - self.beta2 ** self.t)
                p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
''').replace("            p.grad = None", "            p.grad.zero_()")),
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
    ("adamw", "decay folded into one update from the old theta", _adamw('''
        self.t += 1
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(self.beta1).add_((1 - self.beta1) * g)
                v.mul_(self.beta2).add_((1 - self.beta2) * g * g)
                m_hat = m / (1 - self.beta1 ** self.t)
                v_hat = v / (1 - self.beta2 ** self.t)
                p.data = p.data - self.lr * (m_hat / (v_hat.sqrt() + self.eps) + self.weight_decay * p.data)
''')),
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
