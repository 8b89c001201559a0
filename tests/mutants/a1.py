"""Mutants and alternatives for A1 (reverse-mode automatic differentiation); format in tests/mutants/README.md.

Mutants are anchored edits of the master's reference solutions (tests/mutants/derive.py), so they stay
in step with it: an edit whose anchor is no longer in the master fails loudly at import.
"""

from __future__ import annotations

from mutants.derive import Reference

NOTEBOOK = "a1_autodiff/a1_autodiff.ipynb"

_REFERENCE = Reference(NOTEBOOK)
_edit, _body, _regions = _REFERENCE.edit, _REFERENCE.with_body, _REFERENCE.with_regions


MUTANTS = [
    # ---------------------------------------------------------------- item 1
    ("forward_trace", "log10 instead of the natural log", _edit("forward_trace", ("math.log(x)", "math.log10(x)"))),
    ("forward_trace", "v5 = c - v3 (sign)", _edit("forward_trace", ("v5 = v3 - c", "v5 = c - v3"))),
    ("forward_trace", "f as a sum of the factors", _edit("forward_trace", ("f = v4 * v5", "f = v4 + v5"))),
    ("forward_trace", "v3 = v1 * v2", _edit("forward_trace", ("v3 = v1 / v2", "v3 = v1 * v2"))),
    ("reverse_trace", "fan-out ignored: v3_bar only from v4",
     _edit("reverse_trace", ("v3_bar = v4_bar + v5_bar", "v3_bar = v4_bar"))),
    ("reverse_trace", "sign of c_bar", _edit("reverse_trace", ("c_bar = v4_bar - v5_bar", "c_bar = v5_bar - v4_bar"))),
    ("reverse_trace", "quotient rule without the minus sign",
     _edit("reverse_trace", ('v2_bar = -v3_bar * v["v1"]', 'v2_bar = v3_bar * v["v1"]'))),
    ("reverse_trace", "x_bar forgets the path through log x",
     _edit("reverse_trace", ("x_bar = v1_bar * 2 * x + v2_bar / x", "x_bar = v1_bar * 2 * x"))),
    # ---------------------------------------------------------------- item 2
    ("autograd_gradients", "gradients returned in the wrong order",
     _edit("autograd_gradients", ("return x.grad.item(), c.grad.item()", "return c.grad.item(), x.grad.item()"))),
    ("autograd_gradients", "log10", _edit("autograd_gradients", ("torch.log(x)", "torch.log10(x)"))),
    ("autograd_gradients", "backward called twice: gradients accumulate",
     _edit("autograd_gradients", ("    f.backward()\n", "    f.backward(retain_graph=True)\n    f.backward()\n"))),
    ("autograd_gradients", "c does not require grad",
     _edit("autograd_gradients", ("c = torch.tensor(c, dtype=torch.float64, requires_grad=True)",
                                  "c = torch.tensor(c, dtype=torch.float64)"))),
    ("autograd_gradients", "closed form instead of autograd", _body("autograd_gradients", autograd_gradients='''
        log_x = math.log(x)
        return 2 * x ** 3 * (2 * log_x - 1) / log_x ** 3, -2 * c''')),
    # ---------------------------------------------------------------- item 3
    ("gw_forward_trace", "v3 = exp(x1)", _edit("gw_forward_trace", ('math.exp(v["v0"])', 'math.exp(v["v-1"])'))),
    ("gw_forward_trace", "v1 = x2 / x1", _edit("gw_forward_trace", ('v["v-1"] / v["v0"]', 'v["v0"] / v["v-1"]'))),
    ("gw_forward_trace", "v6 = v5 + v4", _edit("gw_forward_trace", ('v["v5"] * v["v4"]', 'v["v5"] + v["v4"]'))),
    ("gw_forward_trace", "v4 = v3 - v1", _edit("gw_forward_trace", ('v["v1"] - v["v3"]', 'v["v3"] - v["v1"]'))),
    ("gw_reverse_trace", "fan-out of v4 ignored", _edit("gw_reverse_trace", ('    bar["v4_bar"] += bar["v5_bar"]\n', ""))),
    ("gw_reverse_trace", "fan-out of v0 ignored (only the path through v3)",
     _edit("gw_reverse_trace", (' - bar["v1_bar"] * v["v1"] / v["v0"]', ""))),
    ("gw_reverse_trace", "derivative of sin taken as sin",
     _edit("gw_reverse_trace", ('math.cos(v["v1"])', 'math.sin(v["v1"])'))),
    ("gw_reverse_trace", "v-1_bar multiplied by v0 instead of divided",
     _edit("gw_reverse_trace", ('bar["v1_bar"] / v["v0"]', 'bar["v1_bar"] * v["v0"]'))),
    # ---------------------------------------------------------------- item 4
    ("d_cos_log", "inner derivative 3x² of cos(x³) forgotten",
     _edit("d_cos_log", ("-3 * x ** 2 * torch.sin", "-torch.sin"))),
    ("d_cos_log", "d/dx ln(x⁴/11) taken as 1/x", _edit("d_cos_log", ("4 * torch.cos(x ** 3) / x", "torch.cos(x ** 3) / x"))),
    ("d_cos_log", "sign of the cos derivative", _edit("d_cos_log", ("-3 * x ** 2", "3 * x ** 2"))),
    ("d_cos_log", "autograd instead of the closed form", _body("d_cos_log", d_cos_log='''
        x = x.clone().requires_grad_(True)
        (torch.cos(x ** 3) * torch.log(x ** 4 / 11)).sum().backward()
        return x.grad''')),
    ("d_gaussian", "1/sigma² forgotten", _edit("d_gaussian", ("-(x - mu) / sigma ** 2 *", "-(x - mu) *"))),
    ("d_gaussian", "sign", _edit("d_gaussian", ("-(x - mu) / sigma ** 2", "(x - mu) / sigma ** 2"))),
    ("d_gaussian", "sigma instead of sigma²", _edit("d_gaussian", ("/ sigma ** 2 *", "/ sigma *"))),
    ("d_sigmoid", "tanh's derivative 1 - s²", _edit("d_sigmoid", ("return s * (1 - s)", "return 1 - s ** 2"))),
    ("d_sigmoid", "σ(x)(1 - x)", _edit("d_sigmoid", ("return s * (1 - s)", "return s * (1 - x)"))),
    ("d_sigmoid", "quotient rule without the square",
     _body("d_sigmoid", d_sigmoid="return torch.exp(-x) / (1 + torch.exp(-x))")),
    ("d_sigmoid", "autograd.grad instead of the closed form", _body("d_sigmoid", d_sigmoid='''
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.sigmoid(x).sum(), x)
        return grad''')),
    ("jacobian_f", "transposed (3x2)", _edit("jacobian_f", ("return torch.stack([row1, row2])",
                                                          "return torch.stack([row1, row2]).T"))),
    ("jacobian_f", "1/2 of the square root's derivative forgotten", _edit("jacobian_f", ("-1 / (2 * root)", "-1 / root"))),
    ("jacobian_f", "inner factor 4 of sin(4 x3) forgotten",
     _edit("jacobian_f", ("-4 * torch.exp(x2) * torch.sin(4 * x3)", "-torch.exp(x2) * torch.sin(4 * x3)"))),
    ("jacobian_f", "d sqrt(x1² - x3)/dx1 without the inner derivative",
     _edit("jacobian_f", ("x1 / root, zero", "1 / (2 * root), zero"))),
    ("jacobian_sigmoid", "the diagonal as a vector", _edit("jacobian_sigmoid", ("torch.diag(s * (1 - s))", "s * (1 - s)"))),
    ("jacobian_sigmoid", "an outer product instead of a diagonal",
     _edit("jacobian_sigmoid", ("torch.diag(s * (1 - s))", "torch.outer(s, 1 - s)"))),
    ("jacobian_sigmoid", "σ instead of σ' on the diagonal", _edit("jacobian_sigmoid", ("torch.diag(s * (1 - s))", "torch.diag(s)"))),
    ("grad_sin_cos", "sign of the second entry", _edit("grad_sin_cos", ("-torch.sin(x[0])", "torch.sin(x[0])"))),
    ("grad_sin_cos", "entries swapped",
     _edit("grad_sin_cos", ("[torch.cos(x[0]) * torch.cos(x[1]), -torch.sin(x[0]) * torch.sin(x[1])]",
                            "[-torch.sin(x[0]) * torch.sin(x[1]), torch.cos(x[0]) * torch.cos(x[1])]"))),
    ("grad_sin_cos", "the partial derivatives summed to a scalar",
     _edit("grad_sin_cos", ("torch.stack([torch.cos(x[0]) * torch.cos(x[1]), -torch.sin(x[0]) * torch.sin(x[1])])",
                            "torch.cos(x[0]) * torch.cos(x[1]) - torch.sin(x[0]) * torch.sin(x[1])"))),
    ("grad_dot", "returns x", _edit("grad_dot", ("return y.clone()", "return x.clone()"))),
    ("grad_dot", "returns x * y", _edit("grad_dot", ("return y.clone()", "return x * y"))),
    ("grad_dot", "returns the scalar xᵀy", _edit("grad_dot", ("return y.clone()", "return x @ y"))),
    ("grad_sin_log", "factor 2 forgotten", _edit("grad_sin_log", ("* 2 * x /", "* x /"))),
    ("grad_sin_log", "derivative of log forgotten", _edit("grad_sin_log", ("* 2 * x / squared_norm", "* 2 * x"))),
    ("grad_sin_log", "sin instead of cos", _edit("grad_sin_log", ("torch.cos(torch.log(squared_norm))",
                                                                 "torch.sin(torch.log(squared_norm))"))),
    ("jacobian_sin_affine", "transposed (N x M)", _edit("jacobian_sin_affine", ("return torch.cos(A @ x + b)[:, None] * A",
                                                                                "return (torch.cos(A @ x + b)[:, None] * A).T"))),
    ("jacobian_sin_affine", "sin instead of cos", _edit("jacobian_sin_affine", ("torch.cos(", "torch.sin("))),
    ("jacobian_sin_affine", "b forgotten", _edit("jacobian_sin_affine", ("A @ x + b", "A @ x"))),
    ("jacobian_sin_affine", "columns scaled instead of rows",
     _edit("jacobian_sin_affine", ("torch.cos(A @ x + b)[:, None] * A", "A * torch.cos(A @ x + b).sum()"))),
    # ---------------------------------------------------------------- item 5: operations
    ("add", "gradient overwritten instead of accumulated",
     _edit("add", ("a.grad += out.grad\n        b.grad += out.grad", "a.grad = out.grad\n        b.grad = out.grad"))),
    ("add", "upstream gradient ignored", _edit("add", ("a.grad += out.grad\n        b.grad += out.grad",
                                                       "a.grad += 1.0\n        b.grad += 1.0"))),
    ("add", "parents not recorded", _edit("add", ('(a, b), "+"', '(), "+"'))),
    ("sub", "d(a-b)/db = +1", _edit("sub", ("b.grad -= out.grad", "b.grad += out.grad"))),
    ("sub", "gradient of a overwritten", _edit("sub", ("a.grad += out.grad", "a.grad = out.grad"))),
    ("sub", "forward value b - a", _edit("sub", ("a.value - b.value", "b.value - a.value"))),
    ("mul", "d(ab)/da taken as a", _edit("mul", ("a.grad += b.value * out.grad\n        b.grad += a.value * out.grad",
                                                 "a.grad += a.value * out.grad\n        b.grad += b.value * out.grad"))),
    ("mul", "gradients overwritten", _edit("mul", ("a.grad += b.value * out.grad\n        b.grad += a.value * out.grad",
                                                   "a.grad = b.value * out.grad\n        b.grad = a.value * out.grad"))),
    ("mul", "upstream gradient ignored", _edit("mul", ("a.grad += b.value * out.grad\n        b.grad += a.value * out.grad",
                                                       "a.grad += b.value\n        b.grad += a.value"))),
    ("div", "d(a/b)/db with the wrong sign", _edit("div", ("b.grad -= ", "b.grad += "))),
    ("div", "d(a/b)/db = -1/b²", _edit("div", ("out.grad * a.value / b.value ** 2", "out.grad / b.value ** 2"))),
    ("div", "d(a/b)/da = b", _edit("div", ("a.grad += out.grad / b.value", "a.grad += out.grad * b.value"))),
    ("power", "p·a^p", _edit("power", ("p * a.value ** (p - 1)", "p * a.value ** p"))),
    ("power", "factor p forgotten", _edit("power", ("p * a.value ** (p - 1)", "a.value ** (p - 1)"))),
    ("power", "gradient overwritten", _edit("power", ("a.grad += p", "a.grad = p"))),
    ("sqrt", "factor 1/2 forgotten", _edit("sqrt", ("out.grad / (2 * out.value)", "out.grad / out.value"))),
    ("sqrt", "1/(2a) instead of 1/(2 sqrt a)", _edit("sqrt", ("out.grad / (2 * out.value)", "out.grad / (2 * a.value)"))),
    ("sqrt", "gradient overwritten", _edit("sqrt", ("a.grad += ", "a.grad = "))),
    ("log", "d log a/da = a", _edit("log", ("out.grad / a.value", "out.grad * a.value"))),
    ("log", "gradient overwritten", _edit("log", ("a.grad += ", "a.grad = "))),
    ("log", "log10 in the forward pass", _edit("log", ("math.log(a.value)", "math.log10(a.value)"))),
    ("exp", "d e^a/da = a", _edit("exp", ("out.value * out.grad", "a.value * out.grad"))),
    ("exp", "gradient overwritten", _edit("exp", ("a.grad += ", "a.grad = "))),
    ("exp", "upstream gradient ignored", _edit("exp", ("a.grad += out.value * out.grad", "a.grad += out.value"))),
    ("sin", "d sin/da = -cos", _edit("sin", ("math.cos(a.value) * out.grad", "-math.cos(a.value) * out.grad"))),
    ("sin", "d sin/da = sin", _edit("sin", ("math.cos(a.value) * out.grad", "math.sin(a.value) * out.grad"))),
    ("sin", "gradient overwritten", _edit("sin", ("a.grad += ", "a.grad = "))),
    ("cos", "d cos/da = +sin", _edit("cos", ("a.grad -= ", "a.grad += "))),
    ("cos", "d cos/da = -cos", _edit("cos", ("a.grad -= math.sin(a.value)", "a.grad -= math.cos(a.value)"))),
    ("cos", "gradient overwritten", _edit("cos", ("a.grad -= math.sin(a.value) * out.grad",
                                                  "a.grad = -math.sin(a.value) * out.grad"))),
    ("sum_vars", "gradient overwritten", _edit("sum_vars", ("t.grad += out.grad", "t.grad = out.grad"))),
    ("sum_vars", "parents not recorded", _edit("sum_vars", ('terms, "sum"', '(), "sum"'))),
    ("sum_vars", "a term listed twice gets its gradient once", _edit("sum_vars", ("for t in terms:", "for t in set(terms):"))),
    # ---------------------------------------------------------------- item 5: engine
    ("backward", "steps in forward order", _edit("backward", ("for node in reversed(order):", "for node in order:"))),
    ("backward", "no visited set: shared nodes stepped several times",
     _edit("backward", ("        if id(node) in visited:\n            return\n", ""))),
    ("backward", "root.grad not set to 1", _edit("backward", ("    root.grad = 1.0\n", ""))),
    ("backward", "breadth-first from the root instead of a topological order", _body("backward", backward='''
        root.grad = 1.0
        queue, seen = [root], set()
        while queue:
            node = queue.pop(0)
            if id(node) in seen:
                continue
            seen.add(id(node))
            node.backward_step()
            queue.extend(node.parents)''')),
    ("build_A", "s recomputed for every use (no reuse, same value)", _body(
        "build_A",
        build_A="return (a + b + c ** 2).sqrt() + (a + b + c ** 2).log() + (a + b + c ** 2) / (b * c ** 2)")),
    ("build_A", "b + c² in the denominator", _edit("build_A", ("bc2 = b * c2", "bc2 = b + c2"))),
    ("build_A", "a fresh leaf for c: no gradient reaches c", _edit("build_A", ("c2 = c ** 2", "c2 = Var(c.value) ** 2"))),
    ("build_A", "quotient upside down", _edit("build_A", ("ratio = s / bc2", "ratio = bc2 / s"))),
    ("build_B", "always three data points", _edit("build_B", ("for x, y in zip(xs, ys):",
                                                               "for i in range(3):\n        x, y = xs[i], ys[i]"))),
    ("build_B", "residual with + y", _edit("build_B", ("residual = prediction - y", "residual = prediction + y"))),
    ("build_B", "residuals not squared", _edit("build_B", ("squares.append(residual * residual)", "squares.append(residual)"))),
]

ALTERNATIVES = [
    ("forward_trace", "torch scalars, built in a dict", '''def forward_trace(x, c):
    x = torch.tensor(x, dtype=torch.float64)
    trace = {"v1": x * x}
    trace["v2"] = torch.log(x)
    trace["v3"] = trace["v1"] / trace["v2"]
    trace["v4"] = trace["v3"] + c
    trace["v5"] = trace["v3"] - c
    trace["f"] = trace["v4"] * trace["v5"]
    return trace
'''),
    ("reverse_trace", "self-contained, adjoints simplified with u = x²/log x", '''def reverse_trace(x, c):
    log_x = math.log(x)
    u = x * x / log_x
    bars = {"f_bar": 1.0, "v4_bar": u - c, "v5_bar": u + c, "v3_bar": 2 * u, "c_bar": -2 * c}
    bars["v1_bar"] = 2 * u / log_x
    bars["v2_bar"] = -2 * u * u / log_x
    bars["x_bar"] = bars["v1_bar"] * 2 * x + bars["v2_bar"] / x
    return bars
'''),
    ("autograd_gradients", "one tensor for both inputs, torch.autograd.grad", '''def autograd_gradients(x, c):
    inputs = torch.tensor([x, c], dtype=torch.float64, requires_grad=True)
    u = inputs[0] ** 2 / inputs[0].log()
    f = (u + inputs[1]) * (u - inputs[1])
    (grad,) = torch.autograd.grad(f, inputs)
    return grad[0], grad[1]
'''),
    ("autograd_gradients", "float32 tensors, gradients returned as tensors", '''def autograd_gradients(x, c):
    x = torch.tensor(float(x), requires_grad=True)
    c = torch.tensor(float(c), requires_grad=True)
    f = (x ** 2 / torch.log(x) + c) * (x ** 2 / torch.log(x) - c)
    f.backward()
    return x.grad, c.grad
'''),
    ("gw_forward_trace", "local variables, torch scalars", '''def gw_forward_trace(x1, x2):
    vm1, v0 = torch.tensor(x1, dtype=torch.float64), torch.tensor(x2, dtype=torch.float64)
    v1 = vm1 / v0
    v2 = torch.sin(v1)
    v3 = torch.exp(v0)
    v4 = v1 - v3
    v5 = v2 + v4
    v6 = v5 * v4
    return {"v-1": vm1, "v0": v0, "v1": v1, "v2": v2, "v3": v3, "v4": v4, "v5": v5, "v6": v6}
'''),
    ("gw_reverse_trace", "self-contained, contributions accumulated in a dict", '''def gw_reverse_trace(x1, x2):
    v1 = x1 / x2
    v3 = math.exp(x2)
    v4 = v1 - v3
    v5 = math.sin(v1) + v4
    bar = {k: 0.0 for k in ["v6_bar", "v5_bar", "v4_bar", "v3_bar", "v2_bar", "v1_bar", "v0_bar", "v-1_bar"]}
    bar["v6_bar"] = 1.0
    bar["v5_bar"] += v4 * bar["v6_bar"]
    bar["v4_bar"] += v5 * bar["v6_bar"]
    bar["v2_bar"] += bar["v5_bar"]
    bar["v4_bar"] += bar["v5_bar"]
    bar["v1_bar"] += bar["v4_bar"]
    bar["v3_bar"] -= bar["v4_bar"]
    bar["v0_bar"] += v3 * bar["v3_bar"]
    bar["v1_bar"] += math.cos(v1) * bar["v2_bar"]
    bar["v-1_bar"] += bar["v1_bar"] / x2
    bar["v0_bar"] -= bar["v1_bar"] * x1 / x2 ** 2
    return bar
'''),
    ("d_cos_log", "log split up, common subexpressions named", '''def d_cos_log(x):
    cube = x ** 3
    log_term = 4 * torch.log(x.abs()) - math.log(11.0)
    return 4 * torch.cos(cube) / x - 3 * x * x * torch.sin(cube) * log_term
'''),
    ("d_gaussian", "standardised variable", '''def d_gaussian(x, mu, sigma):
    z = (x - mu) / sigma
    return -z / sigma * torch.exp(-0.5 * z * z)
'''),
    ("d_sigmoid", "quotient rule, exp(-x)/(1+exp(-x))²", '''def d_sigmoid(x):
    e = torch.exp(-x)
    return e / (1 + e) ** 2
'''),
    ("d_sigmoid", "torch.sigmoid", '''def d_sigmoid(x):
    return torch.sigmoid(x) * torch.sigmoid(-x)
'''),
    ("jacobian_f", "filled entry by entry", '''def jacobian_f(x):
    J = torch.zeros(2, 3, dtype=x.dtype)
    r = (x[0] ** 2 - x[2]).sqrt()
    J[0, 0] = x[0] / r
    J[0, 2] = -0.5 / r
    e = x[1].exp()
    J[1, 1] = e * (4 * x[2]).cos()
    J[1, 2] = -4 * e * (4 * x[2]).sin()
    return J
'''),
    ("jacobian_sigmoid", "identity matrix scaled column-wise", '''def jacobian_sigmoid(x):
    s = 1 / (1 + torch.exp(-x))
    return torch.eye(x.shape[0], dtype=x.dtype) * (s * (1 - s))
'''),
    ("grad_sin_cos", "cos and sin of the whole vector first", '''def grad_sin_cos(x):
    c, s = torch.cos(x), torch.sin(x)
    return torch.stack((c[0] * c[1], -s[0] * s[1]))
'''),
    ("grad_dot", "ones times y", '''def grad_dot(x, y):
    return torch.ones_like(x) * y
'''),
    ("grad_sin_log", "squared norm by a sum, factors reordered", '''def grad_sin_log(x):
    n = (x * x).sum()
    return 2 * torch.cos(n.log()) / n * x
'''),
    ("jacobian_sin_affine", "explicit diag(cos(Ax+b)) @ A", '''def jacobian_sin_affine(A, b, x):
    return torch.diag(torch.cos(A @ x + b)) @ A
'''),
    ("add", "loop over the recorded parents", _regions("add", '''    out = Var(a.value + b.value, [a, b], "add")

    def backward_step():
        for parent in out.parents:
            parent.grad += 1.0 * out.grad''')),
    ("sub", "via -1 times the upstream gradient",
     _regions("sub", '''    out = Var(a.value + (-b.value), (a, b), "sub")

    def backward_step():
        b.grad += -1 * out.grad
        a.grad += 1 * out.grad''')),
    ("mul", "operand values captured at creation", _regions("mul", '''    av, bv = a.value, b.value
    out = Var(av * bv, (a, b), "*")

    def backward_step():
        g = out.grad
        a.grad += g * bv
        b.grad += g * av''')),
    ("div", "uses the output value", _regions("div", '''    out = Var(a.value / b.value, (a, b), "/")

    def backward_step():
        b.grad -= out.grad * out.value / b.value
        a.grad += out.grad / b.value''')),
    ("power", "p·out/a", _regions("power", '''    out = Var(a.value ** p, (a,), "pow")

    def backward_step():
        a.grad += p * out.value / a.value * out.grad''')),
    ("sqrt", "a ** -0.5 / 2", _regions("sqrt", '''    out = Var(a.value ** 0.5, (a,), "sqrt")

    def backward_step():
        a.grad += 0.5 * a.value ** -0.5 * out.grad''')),
    ("log", "torch for the number, reciprocal",
     _regions("log", '''    out = Var(torch.log(torch.tensor(a.value, dtype=torch.float64)).item(), (a,), "ln")

    def backward_step():
        a.grad += (1.0 / a.value) * out.grad''')),
    ("exp", "recomputes e^a", _regions("exp", '''    out = Var(math.e ** a.value, (a,), "exp")

    def backward_step():
        a.grad += math.exp(a.value) * out.grad''')),
    ("sin", "cos a = sin(a + pi/2)", _regions("sin", '''    out = Var(math.sin(a.value), (a,), "sin")

    def backward_step():
        a.grad += math.sin(a.value + math.pi / 2) * out.grad''')),
    ("cos", "adds a negative product", _regions("cos", '''    out = Var(math.cos(a.value), (a,), "cos")

    def backward_step():
        a.grad += -math.sin(a.value) * out.grad''')),
    ("sum_vars", "fsum, tuple parents, index loop",
     _regions("sum_vars", '''    out = Var(math.fsum(t.value for t in terms), tuple(terms), "sum")

    def backward_step():
        for i in range(len(terms)):
            terms[i].grad += out.grad''')),
    ("backward", "Kahn's algorithm with counts of users", '''def backward(root):
    users, stack, seen = {}, [root], {id(root)}
    while stack:
        node = stack.pop()
        for parent in node.parents:
            users[id(parent)] = users.get(id(parent), 0) + 1
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    root.grad = 1.0
    ready = [root]
    while ready:
        node = ready.pop()
        node.backward_step()
        for parent in node.parents:
            users[id(parent)] -= 1
            if users[id(parent)] == 0:
                ready.append(parent)
'''),
    ("backward", "iterative depth-first order, grads zeroed first", '''def backward(root):
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node.parents:
            if id(parent) not in visited:
                stack.append((parent, False))
    for node in order:
        node.grad = 0.0
    root.grad = 1.0
    for node in order[::-1]:
        node.backward_step()
'''),
    ("build_A", "sum_vars and c*c", '''def build_A(a, b, c):
    c_squared = c * c
    s = sum_vars([a, b, c_squared])
    return sum_vars([s.sqrt(), s.log(), s / (b * c_squared)])
'''),
    ("build_A", "module functions instead of operators", '''def build_A(a, b, c):
    c2 = power(c, 2)
    s = add(add(a, b), c2)
    return add(add(sqrt(s), log(s)), div(s, mul(b, c2)))
'''),
    ("build_B", "running total with ** 2", '''def build_B(w0, w1, xs, ys):
    total = 0.0
    for x, y in zip(xs, ys):
        total = total + (w0 + w1 * x - y) ** 2
    return total
'''),
    ("build_B", "Python's sum over a generator", '''def build_B(w0, w1, xs, ys):
    return sum((w0 + w1 * x - y) * (w0 + w1 * x - y) for x, y in zip(xs, ys))
'''),
]
