"""Mutants and alternatives for A3 (layers, MLP on MNIST); format in tests/mutants/README.md.

A3 has two notebooks; each answer id belongs to one of them (a3_layers:
linear ... grad_w1; a3_mnist: mlp ... plot_history). Mutants are anchored
edits of the masters' reference solutions (tests/mutants/derive.py).
"""

from __future__ import annotations

from mutants.derive import Reference

NOTEBOOK = "a3_layers/a3_layers.ipynb"
NOTEBOOKS = ("a3_layers/a3_layers.ipynb", "a3_layers/a3_mnist.ipynb")

_REFERENCE = Reference(*NOTEBOOKS)
_edit, _body, _regions = _REFERENCE.edit, _REFERENCE.with_body, _REFERENCE.with_regions

_LINEAR_FORWARD = "return x @ self.weight + self.bias"
_LINEAR_DX = "return dupstream @ self.weight.T"
_RELU_FORWARD = "torch.where(self.positive, x, torch.zeros_like(x))"
_RELU_BACKWARD = "torch.where(self.positive, dupstream, torch.zeros_like(dupstream))"
_SIGMOID_BACKWARD = "return dupstream * s * (1.0 - s)"
_DROPOUT_SCALE = "self.scale = keep / (1.0 - self.p)"
_FC_BRANCH = "h2 = self.dropout(self.relu(self.fc2(h1)))"
_TL_FORWARD = "self.fc2.forward(self.relu.forward(self.fc1.forward(x)))"
_TL_BACKWARD = "self.fc1.backward(self.relu.backward(self.fc2.backward(dscores)))"
_SIGMOID_LOCAL = ('    if activation == "sigmoid":\n'
                  "        a1 = 1.0 / (1.0 + math.exp(-z1))\n"
                  "        local = a1 * (1.0 - a1)\n")
_TANH_LOCAL = ('    elif activation == "tanh":\n'
               "        local = 1.0 - math.tanh(z1) ** 2\n"
               "    else:\n"
               '        raise ValueError(f"unknown activation {activation!r}")\n')
_MLP_OUT = "            nn.Linear(256, 10),\n"
_TRAIN_LOSS = "total += loss.item() * len(batch)"
_EVAL_RESULT = "return total_loss / len(x), correct / len(x)"

MUTANTS = [
    # ---- Linear
    ("linear", "bias forgotten in forward", _edit("linear", (_LINEAR_FORWARD, "return x @ self.weight"))),
    ("linear", "weight stored transposed, (out_feat, in_feat)", _edit(
        "linear", ("torch.randn(self.in_feat, self.out_feat)", "torch.randn(self.out_feat, self.in_feat)"),
        (_LINEAR_FORWARD, "return x @ self.weight.T + self.bias"),
        ("self.dW = self.x.T @ dupstream", "self.dW = dupstream.T @ self.x"),
        (_LINEAR_DX, "return dupstream @ self.weight"))),
    ("linear", "bias drawn from a normal distribution",
     _edit("linear", ("self.bias = torch.rand(", "self.bias = torch.randn("))),
    ("linear", "db averaged over the batch instead of summed",
     _edit("linear", ("dupstream.sum(dim=0)", "dupstream.mean(dim=0)"))),
    ("linear", "dx without the transpose of the weight",
     _edit("linear", (_LINEAR_DX, "return dupstream @ self.weight"))),
    ("linear", "dW as the outer product of the first sample only",
     _edit("linear", ("self.x.T @ dupstream", "self.x[:1].T @ dupstream[:1]"))),
    ("linear", "forward with torch.nn.functional.linear",
     _edit("linear", (_LINEAR_FORWARD, "return torch.nn.functional.linear(x, self.weight.T, self.bias)"))),
    ("linear", "backward by autograd", _body("linear", backward='''
        x = self.x.detach().requires_grad_(True)
        weight = self.weight.detach().requires_grad_(True)
        bias = self.bias.detach().requires_grad_(True)
        (x @ weight + bias).backward(dupstream)
        self.dW, self.db = weight.grad, bias.grad
        return x.grad''')),
    ("linear", "init_params keeps the same values (fixed seed)",
     _edit("linear", ("        self.weight = torch.randn(",
                      "        torch.manual_seed(0)\n        self.weight = torch.randn("))),
    # ---- ReLU
    ("relu", "backward changes dupstream in place",
     _edit("relu", (f"return {_RELU_BACKWARD}", "dupstream[~self.positive] = 0\n        return dupstream"))),
    ("relu", "forward changes its input in place",
     _edit("relu", (f"return {_RELU_FORWARD}", "x[~self.positive] = 0\n        return x"))),
    ("relu", "backward returns the mask, ignoring dupstream",
     _edit("relu", (_RELU_BACKWARD, "self.positive.to(dupstream.dtype)"))),
    ("relu", "leaky slope 0.01 for negative inputs",
     _edit("relu", (_RELU_FORWARD, "torch.where(self.positive, x, 0.01 * x)"),
           (_RELU_BACKWARD, "torch.where(self.positive, dupstream, 0.01 * dupstream)"))),
    ("relu", "uses torch.nn.functional.relu", _edit("relu", (_RELU_FORWARD, "torch.nn.functional.relu(x)"))),
    # ---- Sigmoid
    ("sigmoid", "backward multiplies dupstream in place",
     _edit("sigmoid", (_SIGMOID_BACKWARD, "dupstream *= s * (1.0 - s)\n        return dupstream"))),
    ("sigmoid", "derivative s * (1 - s) taken of the input, not of sigma",
     _edit("sigmoid", (_SIGMOID_BACKWARD, "return dupstream * self.x * (1.0 - self.x)"))),
    ("sigmoid", "tanh instead of the sigmoid",
     _edit("sigmoid", ("return 1.0 / (1.0 + torch.exp(-x))", "return torch.tanh(x)"),
           ("s = 1.0 / (1.0 + torch.exp(-self.x))\n        " + _SIGMOID_BACKWARD,
            "return dupstream * (1.0 - torch.tanh(self.x) ** 2)"))),
    ("sigmoid", "exp(x) instead of exp(-x)",
     _edit("sigmoid", ("torch.exp(-x)", "torch.exp(x)"), ("torch.exp(-self.x)", "torch.exp(self.x)"))),
    ("sigmoid", "backward uses the derivative at 0, dupstream * 0.25, everywhere",
     _edit("sigmoid", (_SIGMOID_BACKWARD, "return dupstream * 0.25"))),
    ("sigmoid", "backward by autograd", _body("sigmoid", backward='''
        x = self.x.detach().requires_grad_(True)
        (1.0 / (1.0 + torch.exp(-x))).backward(dupstream)
        return x.grad''')),
    # ---- Dropout
    ("dropout", "kept entries not rescaled", _edit("dropout", (_DROPOUT_SCALE, "self.scale = keep"))),
    ("dropout", "kept entries scaled by 1/p instead of 1/(1-p)",
     _edit("dropout", (_DROPOUT_SCALE, "self.scale = keep / self.p"))),
    ("dropout", "keeps with probability p (drops with 1 - p)",
     _edit("dropout", ("torch.rand(x.shape) >= self.p", "torch.rand(x.shape) < self.p"))),
    ("dropout", "still drops in eval mode",
     _edit("dropout", ("        if not self.training:\n            self.scale = None\n            return x\n", ""))),
    ("dropout", "classic dropout: no scaling in training, times (1 - p) in eval",
     _edit("dropout", ("            return x\n", "            return x * (1 - self.p)\n"),
           (_DROPOUT_SCALE, "self.scale = keep"))),
    ("dropout", "same mask at every call (seed reset)",
     _edit("dropout", ("        keep = (torch.rand(x.shape) >= self.p)",
                       "        generator = torch.Generator().manual_seed(0)\n"
                       "        keep = (torch.rand(x.shape, generator=generator) >= self.p)"))),
    ("dropout", "backward ignores the mask",
     _edit("dropout", ("return dupstream * self.scale", "return dupstream / (1 - self.p)"))),
    ("dropout", "uses torch.nn.functional.dropout",
     _edit("dropout", (f"keep = (torch.rand(x.shape) >= self.p).to(x.dtype)\n        {_DROPOUT_SCALE}\n"
                       "        return x * self.scale",
                       "out = torch.nn.functional.dropout(x, self.p, True)\n"
                       "        self.scale = (out != 0).to(x.dtype) / (1 - self.p)\n        return out"))),
    # ---- FCNet_do
    ("fcnet_do", "residual sum forgotten", _edit("fcnet_do", ("self.fc3(h1 + h2)", "self.fc3(h2)"))),
    ("fcnet_do", "ReLU after fc3", _edit("fcnet_do", ("self.fc3(h1 + h2)", "self.relu(self.fc3(h1 + h2))"))),
    ("fcnet_do", "dropout on the sum instead of the branch",
     _edit("fcnet_do", (_FC_BRANCH, "h2 = self.relu(self.fc2(h1))"),
           ("self.fc3(h1 + h2)", "self.fc3(self.dropout(h1 + h2))"))),
    ("fcnet_do", "dropout probability fixed at 0.5", _edit("fcnet_do", ("nn.Dropout(p)", "nn.Dropout(0.5)"))),
    ("fcnet_do", "functional dropout without training=self.training (drops in eval mode too)",
     _edit("fcnet_do", (_FC_BRANCH, "h2 = nn.functional.dropout(self.relu(self.fc2(h1)), self.dropout.p)"))),
    ("fcnet_do", "no dropout at all", _edit("fcnet_do", (_FC_BRANCH, "h2 = self.relu(self.fc2(h1))"))),
    ("fcnet_do", "residual taken before the first ReLU",
     _edit("fcnet_do", ("h1 = self.relu(self.fc1(x))", "z1 = self.fc1(x)"),
           ("self.fc2(h1)", "self.fc2(self.relu(z1))"), ("self.fc3(h1 + h2)", "self.fc3(z1 + h2)"))),
    # ---- TwoLayerNet
    ("two_layer_net", "ReLU forgotten in forward",
     _edit("two_layer_net", (_TL_FORWARD, "self.fc2.forward(self.fc1.forward(x))"),
           (_TL_BACKWARD, "self.fc1.backward(self.fc2.backward(dscores))"))),
    ("two_layer_net", "step moves along the gradient",
     _edit("two_layer_net", ("layer.weight - lr", "layer.weight + lr"), ("layer.bias - lr", "layer.bias + lr"))),
    ("two_layer_net", "step forgets the biases",
     _edit("two_layer_net", ("            layer.bias = layer.bias - lr * layer.db\n", ""))),
    ("two_layer_net", "backward skips the ReLU",
     _edit("two_layer_net", (_TL_BACKWARD, "self.fc1.backward(self.fc2.backward(dscores))"))),
    ("two_layer_net", "step updates only the last layer",
     _edit("two_layer_net", ("for layer in (self.fc1, self.fc2):", "for layer in (self.fc2,):"))),
    ("two_layer_net", "backward by autograd on a rebuilt graph", _edit(
        "two_layer_net", (f"return {_TL_FORWARD}", f"self.x = x\n        return {_TL_FORWARD}"),
        base=_body("two_layer_net", backward='''
        x = self.x.detach().requires_grad_(True)
        params = [t.detach().requires_grad_(True) for t in (self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias)]
        scores = ((x @ params[0] + params[1]).clamp(min=0)) @ params[2] + params[3]
        scores.backward(dscores)
        self.fc1.dW, self.fc1.db, self.fc2.dW, self.fc2.db = (p.grad for p in params)
        return x.grad'''))),
    ("two_layer_net", "forward reaches torch.nn.functional.linear through names built at run time "
     "(no forbidden name in the source: only the run-time trace sees it)", _edit(
        "two_layer_net", (f"return {_TL_FORWARD}", '''library = torch
        linear = getattr(getattr(getattr(library, "n" + "n"), "func" + "tional"), "lin" + "ear")
        self.fc1.x = x
        return self.fc2.forward(self.relu.forward(linear(x, self.fc1.weight.T, self.fc1.bias)))'''))),
    # ---- gradient_check
    ("gradient_check", "compares backward's gradient with itself (always 0)",
     _edit("gradient_check", ("relative_error(analytic, numerical)", "relative_error(analytic, analytic)"))),
    ("gradient_check", "loss without dscores: sum(net.forward(x))",
     _edit("gradient_check", ("float((dscores * net.forward(x)).sum())", "float(net.forward(x).sum())"))),
    ("gradient_check", "numerical gradient halved",
     _edit("gradient_check", ("numerical_gradient(loss_at, original, eps)", "numerical_gradient(loss_at, original, eps) / 2"))),
    ("gradient_check", "fc1 and fc2 under each other's names",
     _edit("gradient_check", ('errors[f"{layer_name}.{gradient}"]',
                              'errors[f"{\'fc2\' if layer_name == \'fc1\' else \'fc1\'}.{gradient}"]'))),
    ("gradient_check", "the perturbed copy left in the network",
     _edit("gradient_check", ("            setattr(layer, attribute, original)\n",
                              "            setattr(layer, attribute, original + eps)\n"))),
    # ---- grad_w1
    ("grad_w1", "regulariser term forgotten",
     _edit("grad_w1", ("return zbar1 * x + 2.0 * lam * w1", "return zbar1 * x"))),
    ("grad_w1", "lam * w1 instead of 2 lam w1", _edit("grad_w1", ("2.0 * lam * w1", "lam * w1"))),
    ("grad_w1", "a0 = x forgotten", _edit("grad_w1", ("return zbar1 * x + ", "return zbar1 + "))),
    ("grad_w1", "w2 forgotten", _edit("grad_w1", ("zbar1 = zbar2 * w2 * local", "zbar1 = zbar2 * local"))),
    ("grad_w1", "sigmoid derivative used for tanh too",
     _edit("grad_w1", (_SIGMOID_LOCAL + _TANH_LOCAL,
                       "    a1 = 1.0 / (1.0 + math.exp(-z1))\n    local = a1 * (1.0 - a1)\n"))),
    ("grad_w1", "tanh derivative as 1 - tanh (not squared)",
     _edit("grad_w1", ("1.0 - math.tanh(z1) ** 2", "1.0 - math.tanh(z1)"))),
    ("grad_w1", "derivative taken at the activation a1 instead of z1",
     _edit("grad_w1", ("local = a1 * (1.0 - a1)", "s = 1.0 / (1.0 + math.exp(-a1))\n        local = s * (1.0 - s)"),
           ("math.tanh(z1) ** 2", "math.tanh(math.tanh(z1)) ** 2"))),
    ("grad_w1", "bias left out of z1", _edit("grad_w1", ("z1 = w1 * x + b1", "z1 = w1 * x"))),
    # ---- MLP
    ("mlp", "second ReLU forgotten",
     _edit("mlp", ("nn.Linear(512, 256),\n            nn.ReLU(),\n", "nn.Linear(512, 256),\n"))),
    ("mlp", "softmax at the end", _edit("mlp", (_MLP_OUT, _MLP_OUT + "            nn.Softmax(dim=1),\n"))),
    ("mlp", "hidden sizes swapped (256, then 512)",
     _edit("mlp", ("nn.Linear(28 * 28, 512)", "nn.Linear(28 * 28, 256)"),
           ("nn.Linear(512, 256)", "nn.Linear(256, 512)"), ("nn.Linear(256, 10)", "nn.Linear(512, 10)"))),
    ("mlp", "no biases",
     _edit("mlp", *((f"nn.Linear({sizes})", f"nn.Linear({sizes}, bias=False)")
                    for sizes in ("28 * 28, 512", "512, 256", "256, 10")))),
    ("mlp", "ReLU after the output layer", _edit("mlp", (_MLP_OUT, _MLP_OUT + "            nn.ReLU(),\n"))),
    ("mlp", "sigmoid instead of ReLU",
     _edit("mlp", ("512),\n            nn.ReLU(),", "512),\n            nn.Sigmoid(),"),
           ("256),\n            nn.ReLU(),", "256),\n            nn.Sigmoid(),"))),
    # ---- train_one_epoch
    ("train_one_epoch", "gradients never cleared", _edit("train_one_epoch", ("        optimizer.zero_grad()\n", ""))),
    ("train_one_epoch", "optimizer.step() forgotten", _edit("train_one_epoch", ("        optimizer.step()\n", ""))),
    ("train_one_epoch", "returns the loss of the last batch",
     _edit("train_one_epoch", ("return total / count", "return loss.item()"))),
    ("train_one_epoch", "mean of the batch means (last batch overweighted)",
     _edit("train_one_epoch", (_TRAIN_LOSS, "total += loss.item()"),
           ("return total / count", "return total / len(range(0, len(x), batch_size))"))),
    ("train_one_epoch", "summed loss instead of the mean",
     _edit("train_one_epoch", ("loss = loss_function(model(xb), yb)",
                               'loss = nn.functional.cross_entropy(model(xb), yb, reduction="sum")'),
           (_TRAIN_LOSS, "total += loss.item()"))),
    ("train_one_epoch", "trains on the first batch only, again and again",
     _edit("train_one_epoch", ("torch.randperm(len(x), device=x.device)",
                               "torch.zeros(len(x), dtype=torch.long, device=x.device)"))),
    # Mistakes that a loss that falls does not reveal: caught step for step against the reference.
    ("train_one_epoch", "no shuffle: the samples in their given order every epoch",
     _edit("train_one_epoch", ("torch.randperm(len(x), device=x.device)", "torch.arange(len(x), device=x.device)"))),
    ("train_one_epoch", "the same random order every epoch (seeded inside the loop)",
     _edit("train_one_epoch", ("    order = torch.randperm(", "    torch.manual_seed(0)\n    order = torch.randperm("))),
    ("train_one_epoch", "model not put in training mode", _edit("train_one_epoch", ("    model.train()\n", ""))),
    ("train_one_epoch", "the given optimizer ignored: a new Adam with its default learning rate",
     _edit("train_one_epoch", ("    model.train()\n", "    model.train()\n"
                                                      "    optimizer = torch.optim.Adam(model.parameters())\n"))),
    # ---- evaluate
    ("evaluate", "accuracy as a count", _edit("evaluate", (_EVAL_RESULT, "return total_loss / len(x), correct"))),
    ("evaluate", "mean of batch means",
     _edit("evaluate", ('cross_entropy(logits, yb, reduction="sum")', "cross_entropy(logits, yb)"),
           (_EVAL_RESULT, "return total_loss / len(range(0, len(x), batch_size)), correct / len(x)"))),
    ("evaluate", "argmax over the batch dimension",
     _edit("evaluate", ("(logits.argmax(dim=1) == yb)", "(logits.argmax(dim=0)[:len(yb)] == yb)"))),
    ("evaluate", "loss of the softmax probabilities (softmax applied twice)",
     _edit("evaluate", ("cross_entropy(logits, yb,", "cross_entropy(logits.softmax(dim=1), yb,"))),
    ("evaluate", "accuracy in percent",
     _edit("evaluate", (_EVAL_RESULT, "return total_loss / len(x), 100.0 * correct / len(x)"))),
    # ---- plot_history
    ("plot_history", "returns nothing (only shows the figure)",
     _edit("plot_history", ("    return fig\n", "    plt.show()\n"))),
    ("plot_history", "test curves forgotten",
     _edit("plot_history", ('    ax_loss.plot(epochs, history["test_loss"], "o-", label="test")\n', ""),
           ('    ax_acc.plot(epochs, [100 * a for a in history["test_acc"]], "o-", label="test")\n', ""))),
    ("plot_history", "training loss drawn twice, test loss missing",
     _edit("plot_history", ('history["test_loss"]', 'history["train_loss"]'))),
    ("plot_history", "returns the axes instead of the figure",
     _edit("plot_history", ("    return fig\n", "    return ax_loss, ax_acc\n"))),
]

ALTERNATIVES = [
    ("linear", "einsum, cached input under another name, weight via torch.normal", _regions("linear", '''
        self.weight = torch.normal(0.0, 1.0, size=(self.in_feat, self.out_feat))
        self.bias = torch.rand(self.out_feat)''', '''
        self.cached_input = x.clone()   # comment: not F.linear(x, W.T, b)
        return torch.einsum("ni,ij->nj", x, self.weight) + self.bias.unsqueeze(0)''', '''
        self.dW = torch.einsum("ni,nj->ij", self.cached_input, dupstream)
        self.db = torch.einsum("nj->j", dupstream)
        return torch.einsum("nj,ij->ni", dupstream, self.weight)''')),
    ("linear", "explicit loops over the batch", _regions("linear", None, '''
        self.x = x
        return torch.stack([row @ self.weight + self.bias for row in x])''', '''
        self.dW = sum(torch.outer(row, g) for row, g in zip(self.x, dupstream))
        self.db = sum(g for g in dupstream)
        return torch.stack([self.weight @ g for g in dupstream])''')),
    ("relu", "caches the output, clamp", '''class ReLU:
    def forward(self, x):
        self.out = x.clamp(min=0)      # cache the output: it is > 0 exactly where x > 0
        return self.out

    def backward(self, dupstream):
        return dupstream * (self.out > 0).to(dupstream.dtype)
'''),
    ("relu", "maximum with zero and a float mask", '''class ReLU:
    def forward(self, x):
        self.mask = (x > 0).to(x.dtype)
        return torch.maximum(x, torch.zeros_like(x))

    def backward(self, dupstream):
        grad = dupstream.clone()
        grad *= self.mask             # in place, but on a copy
        return grad
'''),
    ("sigmoid", "caches the output instead of the input", '''class Sigmoid:
    def forward(self, x):
        self.out = 1.0 / (1.0 + torch.exp(-x))   # cache the output instead of the input
        return self.out

    def backward(self, dupstream):
        return dupstream * self.out * (1.0 - self.out)
'''),
    ("sigmoid", "numerically stable form with torch.where", '''class Sigmoid:
    def forward(self, x):
        e = torch.exp(-x.abs())
        self.s = torch.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return self.s

    def backward(self, dupstream):
        return dupstream * (self.s - self.s ** 2)
'''),
    ("dropout", "bernoulli mask, stored mask and p", _regions("dropout", '''
        if self.training and self.p > 0:
            self.mask = torch.bernoulli(torch.full_like(x, 1 - self.p))
        else:
            self.mask = None
        return x if self.mask is None else x * self.mask / (1 - self.p)''', '''
        if self.mask is None:
            return dupstream
        return dupstream * self.mask / (1 - self.p)''')),
    ("fcnet_do", "functional ReLU and dropout with self.training", '''class FCNet_do(nn.Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.p = p
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 64)

    def forward(self, x):
        import torch.nn.functional as F
        h1 = F.relu(self.fc1(x))
        branch = F.dropout(F.relu(self.fc2(h1)), p=self.p, training=self.training)
        return self.fc3(branch + h1)
'''),
    ("fcnet_do", "dropout before the second ReLU",
     _edit("fcnet_do", (_FC_BRANCH, "h2 = self.relu(self.dropout(self.fc2(h1)))"))),
    ("two_layer_net", "layers in a list, walked backwards; in-place step", '''class TwoLayerNet:
    def __init__(self, in_feat, hidden, out_feat):
        self.fc1 = Linear(in_feat, hidden)
        self.relu = ReLU()
        self.fc2 = Linear(hidden, out_feat)
        self.layers = [self.fc1, self.relu, self.fc2]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dscores):
        grad = dscores
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def step(self, lr):
        for layer in (self.fc1, self.fc2):
            layer.weight -= lr * layer.dW
            layer.bias -= lr * layer.db
'''),
    ("two_layer_net", "layers reached and updated by name with getattr/setattr", _regions("two_layer_net", None, '''
        for name in ("fc1", "relu", "fc2"):
            x = getattr(self, name).forward(x)
        return x''', None, '''
        for layer_name in ("fc1", "fc2"):
            layer = getattr(self, layer_name)
            for name, grad_name in (("weight", "dW"), ("bias", "db")):
                setattr(layer, name, getattr(layer, name) - lr * getattr(layer, grad_name))''')),
    ("gradient_check", "its own central differences, in place, without dlcourse.testing", '''def gradient_check(net, x, dscores, eps=1e-6):
    net.forward(x)
    net.backward(dscores)
    errors = {}
    for key in ("fc1.dW", "fc1.db", "fc2.dW", "fc2.db"):
        layer_name, grad_name = key.split(".")
        layer = getattr(net, layer_name)
        param = layer.weight if grad_name == "dW" else layer.bias
        analytic = getattr(layer, grad_name).clone()
        numerical = torch.zeros_like(param)
        for i in range(param.numel()):
            old = param.view(-1)[i].item()
            param.view(-1)[i] = old + eps
            plus = (dscores * net.forward(x)).sum().item()
            param.view(-1)[i] = old - eps
            minus = (dscores * net.forward(x)).sum().item()
            param.view(-1)[i] = old
            numerical.view(-1)[i] = (plus - minus) / (2 * eps)
        errors[key] = ((analytic - numerical).abs().max() / (analytic.abs() + numerical.abs()).max()).item()
    return errors
'''),
    ("grad_w1", "torch instead of math, sigma' from a1, adjoints named", '''def grad_w1(x, w1, b1, w2, lam, zbar2, activation="sigmoid"):
    z1 = torch.tensor(w1 * x + b1, dtype=torch.float64)
    a1 = torch.sigmoid(z1) if activation == "sigmoid" else torch.tanh(z1)
    dsigma = a1 * (1 - a1) if activation == "sigmoid" else 1 - a1 * a1
    abar1 = zbar2 * w2
    zbar1 = abar1 * dsigma
    return zbar1 * x + lam * 2 * w1
'''),
    ("grad_w1", "float32 tensors (torch.tensor's default dtype)", '''def grad_w1(x, w1, b1, w2, lam, zbar2, activation="sigmoid"):
    z1 = torch.tensor(w1 * x + b1)
    if activation == "sigmoid":
        local = torch.sigmoid(z1) * (1 - torch.sigmoid(z1))
    else:
        local = 1 - torch.tanh(z1) ** 2
    return float(zbar2 * w2 * local * x + 2 * lam * w1)
'''),
    ("mlp", "named layers and an explicit reshape", '''class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.out = nn.Linear(256, 10)      # defined first: the order must not matter
        self.hidden1 = nn.Linear(784, 512)
        self.hidden2 = nn.Linear(512, 256)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        x = torch.relu(self.hidden1(x))
        x = torch.relu(self.hidden2(x))
        return self.out(x)
'''),
    ("train_one_epoch", "DataLoader over a TensorDataset, set_to_none=False", '''def train_one_epoch(model, optimizer, x, y, batch_size=100):
    from torch.utils.data import DataLoader, TensorDataset
    device = next(model.parameters()).device
    model.train()
    losses, sizes = [], []
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True):
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad(set_to_none=False)
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(len(yb))
    return sum(l * n for l, n in zip(losses, sizes)) / sum(sizes)
'''),
    ("evaluate", "collects all logits, then one loss; model.zero_grad not needed", '''def evaluate(model, x, y, batch_size=1000):
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
    loss = nn.CrossEntropyLoss()(logits, y.cpu()).item()
    accuracy = (logits.argmax(1) == y.cpu()).float().mean().item()
    return loss, accuracy
'''),
    ("plot_history", "one axis per curve, accuracy in percent, fig.add_subplot", '''def plot_history(history):
    epochs = range(1, len(history['train_loss']) + 1)
    fig = plt.figure(figsize=(12, 3))
    for i, key in enumerate(["train_loss", "test_loss", "train_acc", "test_acc"]):
        ax = fig.add_subplot(1, 4, i + 1)
        values = history[key]
        if key.endswith("acc"):
            values = [100 * v for v in values]
        ax.plot(list(epochs), values, marker="o")
        ax.set_title(key)
    return fig
'''),
]

# Mistakes the public checks alone must catch (tests/mutants/test_public_checks.py): the release shows a
# student a failing check before the hand-in, not only the hidden tests after it.
PUBLIC = [
    ("relu", "backward changes dupstream in place"),
    ("relu", "forward changes its input in place"),
    ("relu", "backward returns the mask, ignoring dupstream"),
    ("sigmoid", "backward multiplies dupstream in place"),
    ("sigmoid", "backward uses the derivative at 0, dupstream * 0.25, everywhere"),
    ("dropout", "still drops in eval mode"),
    ("dropout", "backward ignores the mask"),
    ("dropout", "same mask at every call (seed reset)"),
    ("fcnet_do", "functional dropout without training=self.training (drops in eval mode too)"),
    ("fcnet_do", "no dropout at all"),
    ("two_layer_net", "step moves along the gradient"),
    ("two_layer_net", "step updates only the last layer"),
    ("gradient_check", "compares backward's gradient with itself (always 0)"),
    ("gradient_check", "loss without dscores: sum(net.forward(x))"),
    ("gradient_check", "fc1 and fc2 under each other's names"),
    ("gradient_check", "the perturbed copy left in the network"),
]
PUBLIC += [
    ("mlp", "hidden sizes swapped (256, then 512)"),
    ("mlp", "no biases"),
]
