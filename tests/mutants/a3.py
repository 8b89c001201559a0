"""Mutants and alternatives for A3 (layers, MLP on MNIST); format in tests/mutants/README.md.

A3 has two notebooks; each answer id belongs to one of them (a3_layers:
linear ... grad_w1; a3_mnist: mlp ... plot_history).
"""

NOTEBOOK = "a3_layers/a3_layers.ipynb"
NOTEBOOKS = ("a3_layers/a3_layers.ipynb", "a3_layers/a3_mnist.ipynb")


# --------------------------------------------------------------------------- Linear

def _linear(init: str, forward: str, backward: str) -> str:
    return f'''class Linear:
    def __init__(self, in_feat, out_feat):
        self.in_feat = in_feat
        self.out_feat = out_feat
        self.init_params()

    def init_params(self):
{init}

    def forward(self, x):
{forward}

    def backward(self, dupstream):
{backward}
'''


_INIT = '''        self.weight = torch.randn(self.in_feat, self.out_feat)
        self.bias = torch.rand(self.out_feat)'''
_FORWARD = '''        self.x = x
        return x @ self.weight + self.bias'''
_BACKWARD = '''        self.dW = self.x.T @ dupstream
        self.db = dupstream.sum(dim=0)
        return dupstream @ self.weight.T'''

# --------------------------------------------------------------------------- activations

_RELU_ALT = '''class ReLU:
    def forward(self, x):
        self.out = x.clamp(min=0)      # cache the output: it is > 0 exactly where x > 0
        return self.out

    def backward(self, dupstream):
        return dupstream * (self.out > 0).to(dupstream.dtype)
'''

_SIGMOID_ALT = '''class Sigmoid:
    def forward(self, x):
        self.out = 1.0 / (1.0 + torch.exp(-x))   # cache the output instead of the input
        return self.out

    def backward(self, dupstream):
        return dupstream * self.out * (1.0 - self.out)
'''

# --------------------------------------------------------------------------- Dropout


def _dropout(forward: str, backward: str = '''        if not self.training:
            return dupstream
        return dupstream * self.scale''') -> str:
    return f'''class Dropout:
    def __init__(self, p=0.5):
        self.p = p
        self.training = True

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def forward(self, x):
{forward}

    def backward(self, dupstream):
{backward}
'''


# --------------------------------------------------------------------------- FCNet_do


def _fcnet(forward: str, dropout: str = "nn.Dropout(p)", relu_layer: str = "nn.ReLU()") -> str:
    return f'''class FCNet_do(nn.Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 32)
        self.fc3 = nn.Linear(32, 64)
        self.relu = {relu_layer}
        self.dropout = {dropout}

    def forward(self, x):
{forward}
'''


# --------------------------------------------------------------------------- TwoLayerNet


def _two_layer(forward: str, backward: str, step: str) -> str:
    return f'''class TwoLayerNet:
    def __init__(self, in_feat, hidden, out_feat):
        self.fc1 = Linear(in_feat, hidden)
        self.relu = ReLU()
        self.fc2 = Linear(hidden, out_feat)

    def forward(self, x):
{forward}

    def backward(self, dscores):
{backward}

    def step(self, lr):
{step}
'''


_TL_FORWARD = "        return self.fc2.forward(self.relu.forward(self.fc1.forward(x)))"
_TL_BACKWARD = "        return self.fc1.backward(self.relu.backward(self.fc2.backward(dscores)))"
_TL_STEP = '''        for layer in (self.fc1, self.fc2):
            layer.weight = layer.weight - lr * layer.dW
            layer.bias = layer.bias - lr * layer.db'''

# --------------------------------------------------------------------------- grad_w1


def _grad_w1(local: str, result: str = "zbar2 * w2 * local * x + 2.0 * lam * w1", z1: str = "w1 * x + b1") -> str:
    return f'''def grad_w1(x, w1, b1, w2, lam, zbar2, activation="sigmoid"):
    z1 = {z1}
{local}
    return {result}
'''


_LOCAL = '''    if activation == "sigmoid":
        a1 = 1.0 / (1.0 + math.exp(-z1))
        local = a1 * (1.0 - a1)
    else:
        local = 1.0 - math.tanh(z1) ** 2'''

# --------------------------------------------------------------------------- MLP


def _mlp(layers: str, forward: str = "        return self.layers(x)") -> str:
    return f'''class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
{layers}
        )

    def forward(self, x):
{forward}
'''


_MLP_LAYERS = '''            nn.Flatten(),
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 256),
            nn.ReLU(),
            nn.Linear(256, 10),'''

# --------------------------------------------------------------------------- train_one_epoch / evaluate


def _train(step: str, total: str = "total += loss.item() * len(batch)", result: str = "total / count",
           order: str = "torch.randperm(len(x), device=x.device)") -> str:
    return f'''def train_one_epoch(model, optimizer, x, y, batch_size=100):
    device = next(model.parameters()).device
    loss_function = nn.CrossEntropyLoss()
    model.train()
    order = {order}
    total, count = 0.0, 0
    for start in range(0, len(x), batch_size):
        batch = order[start:start + batch_size]
        xb, yb = x[batch].to(device), y[batch].to(device)
{step}
        {total}
        count += len(batch)
    return {result}
'''


_STEP = '''        optimizer.zero_grad()
        loss = loss_function(model(xb), yb)
        loss.backward()
        optimizer.step()'''


def _evaluate(loss: str = 'nn.functional.cross_entropy(logits, yb, reduction="sum").item()',
              correct: str = "(logits.argmax(dim=1) == yb).sum().item()",
              result: str = "total_loss / len(x), correct / len(x)") -> str:
    return f'''def evaluate(model, x, y, batch_size=1000):
    device = next(model.parameters()).device
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
            logits = model(xb)
            total_loss += {loss}
            correct += {correct}
    return {result}
'''


def _plot(body: str) -> str:
    return "def plot_history(history):\n    epochs = range(1, len(history['train_loss']) + 1)\n" + body


MUTANTS = [
    # ---- Linear
    ("linear", "bias forgotten in forward", _linear(_INIT, '''        self.x = x
        return x @ self.weight''', _BACKWARD)),
    ("linear", "weight stored transposed, (out_feat, in_feat)", _linear('''        self.weight = torch.randn(self.out_feat, self.in_feat)
        self.bias = torch.rand(self.out_feat)''', '''        self.x = x
        return x @ self.weight.T + self.bias''', '''        self.dW = dupstream.T @ self.x
        self.db = dupstream.sum(dim=0)
        return dupstream @ self.weight''')),
    ("linear", "bias drawn from a normal distribution", _linear('''        self.weight = torch.randn(self.in_feat, self.out_feat)
        self.bias = torch.randn(self.out_feat)''', _FORWARD, _BACKWARD)),
    ("linear", "db averaged over the batch instead of summed", _linear(_INIT, _FORWARD, '''        self.dW = self.x.T @ dupstream
        self.db = dupstream.mean(dim=0)
        return dupstream @ self.weight.T''')),
    ("linear", "dx without the transpose of the weight", _linear(_INIT, _FORWARD, '''        self.dW = self.x.T @ dupstream
        self.db = dupstream.sum(dim=0)
        return dupstream @ self.weight''')),
    ("linear", "dW as the outer product of the first sample only", _linear(_INIT, _FORWARD, '''        self.dW = self.x[:1].T @ dupstream[:1]
        self.db = dupstream.sum(dim=0)
        return dupstream @ self.weight.T''')),
    ("linear", "forward with torch.nn.functional.linear", _linear(_INIT, '''        self.x = x
        return torch.nn.functional.linear(x, self.weight.T, self.bias)''', _BACKWARD)),
    ("linear", "backward by autograd", _linear(_INIT, '''        self.x = x
        return x @ self.weight + self.bias''', '''        x = self.x.detach().requires_grad_(True)
        weight = self.weight.detach().requires_grad_(True)
        bias = self.bias.detach().requires_grad_(True)
        (x @ weight + bias).backward(dupstream)
        self.dW, self.db = weight.grad, bias.grad
        return x.grad''')),
    ("linear", "init_params keeps the same values (fixed seed)", _linear('''        torch.manual_seed(0)
        self.weight = torch.randn(self.in_feat, self.out_feat)
        self.bias = torch.rand(self.out_feat)''', _FORWARD, _BACKWARD)),
    # ---- ReLU
    ("relu", "backward changes dupstream in place", '''class ReLU:
    def forward(self, x):
        self.x = x
        return x.clamp(min=0)

    def backward(self, dupstream):
        dupstream[self.x <= 0] = 0
        return dupstream
'''),
    ("relu", "forward changes its input in place", '''class ReLU:
    def forward(self, x):
        self.mask = x > 0
        x[~self.mask] = 0
        return x

    def backward(self, dupstream):
        return dupstream * self.mask
'''),
    ("relu", "backward returns the mask, ignoring dupstream", '''class ReLU:
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dupstream):
        return self.mask.to(dupstream.dtype)
'''),
    ("relu", "leaky slope 0.01 for negative inputs", '''class ReLU:
    def forward(self, x):
        self.x = x
        return torch.where(x > 0, x, 0.01 * x)

    def backward(self, dupstream):
        return torch.where(self.x > 0, dupstream, 0.01 * dupstream)
'''),
    ("relu", "uses torch.nn.functional.relu", '''class ReLU:
    def forward(self, x):
        self.x = x
        return torch.nn.functional.relu(x)

    def backward(self, dupstream):
        return dupstream * (self.x > 0)
'''),
    # ---- Sigmoid
    ("sigmoid", "backward multiplies dupstream in place", '''class Sigmoid:
    def forward(self, x):
        self.out = 1.0 / (1.0 + torch.exp(-x))
        return self.out

    def backward(self, dupstream):
        dupstream *= self.out * (1.0 - self.out)
        return dupstream
'''),
    ("sigmoid", "derivative s * (1 - s) taken of the input, not of sigma", '''class Sigmoid:
    def forward(self, x):
        self.x = x
        return 1.0 / (1.0 + torch.exp(-x))

    def backward(self, dupstream):
        return dupstream * self.x * (1.0 - self.x)
'''),
    ("sigmoid", "tanh instead of the sigmoid", '''class Sigmoid:
    def forward(self, x):
        self.out = torch.tanh(x)
        return self.out

    def backward(self, dupstream):
        return dupstream * (1.0 - self.out ** 2)
'''),
    ("sigmoid", "exp(x) instead of exp(-x)", '''class Sigmoid:
    def forward(self, x):
        self.out = 1.0 / (1.0 + torch.exp(x))
        return self.out

    def backward(self, dupstream):
        return dupstream * self.out * (1.0 - self.out)
'''),
    ("sigmoid", "backward by autograd", '''class Sigmoid:
    def forward(self, x):
        self.x = x
        return 1.0 / (1.0 + torch.exp(-x))

    def backward(self, dupstream):
        x = self.x.detach().requires_grad_(True)
        (1.0 / (1.0 + torch.exp(-x))).backward(dupstream)
        return x.grad
'''),
    # ---- Dropout
    ("dropout", "kept entries not rescaled", _dropout('''        if not self.training:
            return x
        self.scale = (torch.rand(x.shape) >= self.p).to(x.dtype)
        return x * self.scale''')),
    ("dropout", "kept entries scaled by 1/p instead of 1/(1-p)", _dropout('''        if not self.training:
            return x
        self.scale = (torch.rand(x.shape) >= self.p).to(x.dtype) / self.p
        return x * self.scale''')),
    ("dropout", "keeps with probability p (drops with 1 - p)", _dropout('''        if not self.training:
            return x
        self.scale = (torch.rand(x.shape) < self.p).to(x.dtype) / (1 - self.p)
        return x * self.scale''')),
    ("dropout", "still drops in eval mode", _dropout('''        self.scale = (torch.rand(x.shape) >= self.p).to(x.dtype) / (1 - self.p)
        return x * self.scale''', '''        return dupstream * self.scale''')),
    ("dropout", "classic dropout: no scaling in training, times (1 - p) in eval", _dropout('''        if not self.training:
            return x * (1 - self.p)
        self.scale = (torch.rand(x.shape) >= self.p).to(x.dtype)
        return x * self.scale''')),
    ("dropout", "same mask at every call (seed reset)", _dropout('''        if not self.training:
            return x
        generator = torch.Generator().manual_seed(0)
        self.scale = (torch.rand(x.shape, generator=generator) >= self.p).to(x.dtype) / (1 - self.p)
        return x * self.scale''')),
    ("dropout", "backward ignores the mask", _dropout('''        if not self.training:
            return x
        self.scale = (torch.rand(x.shape) >= self.p).to(x.dtype) / (1 - self.p)
        return x * self.scale''', '''        return dupstream / (1 - self.p) if self.training else dupstream''')),
    ("dropout", "uses torch.nn.functional.dropout", _dropout('''        if not self.training:
            return x
        out = torch.nn.functional.dropout(x, self.p, True)
        self.scale = (out != 0).to(x.dtype) / (1 - self.p)
        return out''')),
    # ---- FCNet_do
    ("fcnet_do", "residual sum forgotten", _fcnet('''        h1 = self.relu(self.fc1(x))
        h2 = self.dropout(self.relu(self.fc2(h1)))
        return self.fc3(h2)''')),
    ("fcnet_do", "ReLU after fc3", _fcnet('''        h1 = self.relu(self.fc1(x))
        h2 = self.dropout(self.relu(self.fc2(h1)))
        return self.relu(self.fc3(h1 + h2))''')),
    ("fcnet_do", "dropout on the sum instead of the branch", _fcnet('''        h1 = self.relu(self.fc1(x))
        h2 = self.relu(self.fc2(h1))
        return self.fc3(self.dropout(h1 + h2))''')),
    ("fcnet_do", "dropout probability fixed at 0.5", _fcnet('''        h1 = self.relu(self.fc1(x))
        h2 = self.dropout(self.relu(self.fc2(h1)))
        return self.fc3(h1 + h2)''', dropout="nn.Dropout(0.5)")),
    ("fcnet_do", "no dropout at all", _fcnet('''        h1 = self.relu(self.fc1(x))
        h2 = self.relu(self.fc2(h1))
        return self.fc3(h1 + h2)''')),
    ("fcnet_do", "residual taken before the first ReLU", _fcnet('''        z1 = self.fc1(x)
        h2 = self.dropout(self.relu(self.fc2(self.relu(z1))))
        return self.fc3(z1 + h2)''')),
    # ---- TwoLayerNet
    ("two_layer_net", "ReLU forgotten in forward", _two_layer(
        "        return self.fc2.forward(self.fc1.forward(x))",
        "        return self.fc1.backward(self.fc2.backward(dscores))", _TL_STEP)),
    ("two_layer_net", "step moves along the gradient", _two_layer(_TL_FORWARD, _TL_BACKWARD, '''        for layer in (self.fc1, self.fc2):
            layer.weight = layer.weight + lr * layer.dW
            layer.bias = layer.bias + lr * layer.db''')),
    ("two_layer_net", "step forgets the biases", _two_layer(_TL_FORWARD, _TL_BACKWARD, '''        for layer in (self.fc1, self.fc2):
            layer.weight = layer.weight - lr * layer.dW''')),
    ("two_layer_net", "backward skips the ReLU", _two_layer(_TL_FORWARD,
        "        return self.fc1.backward(self.fc2.backward(dscores))", _TL_STEP)),
    ("two_layer_net", "step updates only the last layer", _two_layer(_TL_FORWARD, _TL_BACKWARD, '''        self.fc2.weight = self.fc2.weight - lr * self.fc2.dW
        self.fc2.bias = self.fc2.bias - lr * self.fc2.db''')),
    ("two_layer_net", "backward by autograd on a rebuilt graph", _two_layer('''        self.x = x
        return self.fc2.forward(self.relu.forward(self.fc1.forward(x)))''', '''        x = self.x.detach().requires_grad_(True)
        params = [t.detach().requires_grad_(True) for t in (self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias)]
        scores = ((x @ params[0] + params[1]).clamp(min=0)) @ params[2] + params[3]
        scores.backward(dscores)
        self.fc1.dW, self.fc1.db, self.fc2.dW, self.fc2.db = (p.grad for p in params)
        return x.grad''', _TL_STEP)),
    # ---- grad_w1
    ("grad_w1", "regulariser term forgotten", _grad_w1(_LOCAL, "zbar2 * w2 * local * x")),
    ("grad_w1", "lam * w1 instead of 2 lam w1", _grad_w1(_LOCAL, "zbar2 * w2 * local * x + lam * w1")),
    ("grad_w1", "a0 = x forgotten", _grad_w1(_LOCAL, "zbar2 * w2 * local + 2.0 * lam * w1")),
    ("grad_w1", "w2 forgotten", _grad_w1(_LOCAL, "zbar2 * local * x + 2.0 * lam * w1")),
    ("grad_w1", "sigmoid derivative used for tanh too", _grad_w1('''    a1 = 1.0 / (1.0 + math.exp(-z1))
    local = a1 * (1.0 - a1)''')),
    ("grad_w1", "tanh derivative as 1 - tanh (not squared)", _grad_w1('''    if activation == "sigmoid":
        a1 = 1.0 / (1.0 + math.exp(-z1))
        local = a1 * (1.0 - a1)
    else:
        local = 1.0 - math.tanh(z1)''')),
    ("grad_w1", "derivative taken at the activation a1 instead of z1", _grad_w1('''    if activation == "sigmoid":
        a1 = 1.0 / (1.0 + math.exp(-z1))
        s = 1.0 / (1.0 + math.exp(-a1))
        local = s * (1.0 - s)
    else:
        local = 1.0 - math.tanh(math.tanh(z1)) ** 2''')),
    ("grad_w1", "bias left out of z1", _grad_w1(_LOCAL, z1="w1 * x")),
    # ---- MLP
    ("mlp", "second ReLU forgotten", _mlp('''            nn.Flatten(),
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 256),
            nn.Linear(256, 10),''')),
    ("mlp", "softmax at the end", _mlp(_MLP_LAYERS + "\n            nn.Softmax(dim=1),")),
    ("mlp", "hidden sizes swapped (256, then 512)", _mlp('''            nn.Flatten(),
            nn.Linear(28 * 28, 256),
            nn.ReLU(),
            nn.Linear(256, 512),
            nn.ReLU(),
            nn.Linear(512, 10),''')),
    ("mlp", "no biases", _mlp('''            nn.Flatten(),
            nn.Linear(28 * 28, 512, bias=False),
            nn.ReLU(),
            nn.Linear(512, 256, bias=False),
            nn.ReLU(),
            nn.Linear(256, 10, bias=False),''')),
    ("mlp", "ReLU after the output layer", _mlp(_MLP_LAYERS + "\n            nn.ReLU(),")),
    ("mlp", "sigmoid instead of ReLU", _mlp('''            nn.Flatten(),
            nn.Linear(28 * 28, 512),
            nn.Sigmoid(),
            nn.Linear(512, 256),
            nn.Sigmoid(),
            nn.Linear(256, 10),''')),
    # ---- train_one_epoch
    ("train_one_epoch", "gradients never cleared", _train('''        loss = loss_function(model(xb), yb)
        loss.backward()
        optimizer.step()''')),
    ("train_one_epoch", "optimizer.step() forgotten", _train('''        optimizer.zero_grad()
        loss = loss_function(model(xb), yb)
        loss.backward()''')),
    ("train_one_epoch", "returns the loss of the last batch", _train(_STEP, result="loss.item()")),
    ("train_one_epoch", "mean of the batch means (last batch overweighted)", _train(
        _STEP, total="total += loss.item()", result="total / len(range(0, len(x), batch_size))")),
    ("train_one_epoch", "summed loss instead of the mean", _train('''        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb, reduction="sum")
        loss.backward()
        optimizer.step()''', total="total += loss.item()")),
    ("train_one_epoch", "trains on the first batch only, again and again", _train(_STEP,
        order="torch.zeros(len(x), dtype=torch.long, device=x.device)")),
    # ---- evaluate
    ("evaluate", "accuracy as a count", _evaluate(result="total_loss / len(x), correct")),
    ("evaluate", "mean of batch means", _evaluate(loss="nn.functional.cross_entropy(logits, yb).item()",
                                                  result="total_loss / len(range(0, len(x), batch_size)), correct / len(x)")),
    ("evaluate", "argmax over the batch dimension", _evaluate(correct="(logits.argmax(dim=0)[:len(yb)] == yb).sum().item()")),
    ("evaluate", "loss of the softmax probabilities (softmax applied twice)", _evaluate(
        loss='nn.functional.cross_entropy(logits.softmax(dim=1), yb, reduction="sum").item()')),
    ("evaluate", "accuracy in percent", _evaluate(result="total_loss / len(x), 100.0 * correct / len(x)")),
    # ---- plot_history
    ("plot_history", "returns nothing (only shows the figure)", _plot('''    fig, (ax_loss, ax_acc) = plt.subplots(1, 2)
    ax_loss.plot(epochs, history["train_loss"], label="train")
    ax_loss.plot(epochs, history["test_loss"], label="test")
    ax_acc.plot(epochs, history["train_acc"], label="train")
    ax_acc.plot(epochs, history["test_acc"], label="test")
    plt.show()
''')),
    ("plot_history", "test curves forgotten", _plot('''    fig, (ax_loss, ax_acc) = plt.subplots(1, 2)
    ax_loss.plot(epochs, history["train_loss"], label="train")
    ax_acc.plot(epochs, history["train_acc"], label="train")
    return fig
''')),
    ("plot_history", "training loss drawn twice, test loss missing", _plot('''    fig, (ax_loss, ax_acc) = plt.subplots(1, 2)
    ax_loss.plot(epochs, history["train_loss"], label="train")
    ax_loss.plot(epochs, history["train_loss"], label="test")
    ax_acc.plot(epochs, history["train_acc"], label="train")
    ax_acc.plot(epochs, history["test_acc"], label="test")
    return fig
''')),
    ("plot_history", "returns the axes instead of the figure", _plot('''    fig, axes = plt.subplots(1, 2)
    axes[0].plot(epochs, history["train_loss"])
    axes[0].plot(epochs, history["test_loss"])
    axes[1].plot(epochs, history["train_acc"])
    axes[1].plot(epochs, history["test_acc"])
    return axes
''')),
]

ALTERNATIVES = [
    ("linear", "einsum, cached input under another name, weight via torch.normal", _linear('''        self.weight = torch.normal(0.0, 1.0, size=(self.in_feat, self.out_feat))
        self.bias = torch.rand(self.out_feat)''', '''        self.cached_input = x.clone()   # comment: not F.linear(x, W.T, b)
        return torch.einsum("ni,ij->nj", x, self.weight) + self.bias.unsqueeze(0)''', '''        self.dW = torch.einsum("ni,nj->ij", self.cached_input, dupstream)
        self.db = torch.einsum("nj->j", dupstream)
        return torch.einsum("nj,ij->ni", dupstream, self.weight)''')),
    ("linear", "explicit loops over the batch", _linear(_INIT, '''        self.x = x
        return torch.stack([row @ self.weight + self.bias for row in x])''', '''        self.dW = sum(torch.outer(row, g) for row, g in zip(self.x, dupstream))
        self.db = sum(g for g in dupstream)
        return torch.stack([self.weight @ g for g in dupstream])''')),
    ("relu", "caches the output, clamp", _RELU_ALT),
    ("relu", "maximum with zero and a float mask", '''class ReLU:
    def forward(self, x):
        self.mask = (x > 0).to(x.dtype)
        return torch.maximum(x, torch.zeros_like(x))

    def backward(self, dupstream):
        grad = dupstream.clone()
        grad *= self.mask             # in place, but on a copy
        return grad
'''),
    ("sigmoid", "caches the output instead of the input", _SIGMOID_ALT),
    ("sigmoid", "numerically stable form with torch.where", '''class Sigmoid:
    def forward(self, x):
        e = torch.exp(-x.abs())
        self.s = torch.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return self.s

    def backward(self, dupstream):
        return dupstream * (self.s - self.s ** 2)
'''),
    ("dropout", "bernoulli mask, stored mask and p", _dropout('''        if self.training and self.p > 0:
            self.mask = torch.bernoulli(torch.full_like(x, 1 - self.p))
        else:
            self.mask = None
        return x if self.mask is None else x * self.mask / (1 - self.p)''', '''        if self.mask is None:
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
    ("fcnet_do", "dropout before the second ReLU", _fcnet('''        h1 = self.relu(self.fc1(x))
        h2 = self.relu(self.dropout(self.fc2(h1)))
        return self.fc3(h1 + h2)''')),
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
    ("plot_history", "one axis per curve, accuracy in percent, fig.add_subplot", _plot('''    fig = plt.figure(figsize=(12, 3))
    for i, key in enumerate(["train_loss", "test_loss", "train_acc", "test_acc"]):
        ax = fig.add_subplot(1, 4, i + 1)
        values = history[key]
        if key.endswith("acc"):
            values = [100 * v for v in values]
        ax.plot(list(epochs), values, marker="o")
        ax.set_title(key)
    return fig
''')),
]
