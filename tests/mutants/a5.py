"""Mutants and alternatives for A5 (recurrent networks and attention); format in tests/mutants/README.md.

Mutants are anchored edits of the master's reference solutions (tests/mutants/derive.py).
"""

from __future__ import annotations

from mutants.derive import Reference

NOTEBOOK = "a5_rnn_attention/a5_rnn_attention.ipynb"

_REFERENCE = Reference(NOTEBOOK)
_edit, _body = _REFERENCE.edit, _REFERENCE.with_body

# The reference solutions the mutants are edits of (tests/test_a5_content.py runs them against the master).
RNN, ATTENTION, CAUSAL, MULTIHEAD = (_REFERENCE[name] for name in (
    "VanillaRNN", "SelfAttention", "CausalSelfAttention", "MultiHeadSelfAttention"))

_RNN_STEP = "h = torch.tanh(x[:, t] @ self.weight_xh.T + self.bias_xh + h @ self.weight_hh.T + self.bias_hh)"
_RNN_H0 = "h = x.new_zeros(batch, self.hidden_size)"
_RNN_BIAS_HH = "        self.bias_hh = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))\n"
_RNN_RESULT = "return torch.stack(states, dim=1)"
_ATTENTION_END = '''        scores = queries @ keys.transpose(1, 2) / math.sqrt(self.d)
        weights = torch.softmax(scores, dim=-1)
        return weights @ values
'''
_CAUSAL_WEIGHTS = 'weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)'
_HEADS_SPLIT = "return z.reshape(batch, steps, self.heads, self.d_head).transpose(1, 2)"
_HEADS_MERGE = "heads = (weights @ values).transpose(1, 2).reshape(batch, steps, self.d)"

MUTANTS = [
    # ---- VanillaRNN
    ("VanillaRNN", "relu instead of tanh", _edit("VanillaRNN", ("h = torch.tanh(", "h = torch.relu("))),
    ("VanillaRNN", "sigmoid instead of tanh", _edit("VanillaRNN", ("h = torch.tanh(", "h = torch.sigmoid("))),
    ("VanillaRNN", "bias_hh left out of the update", _edit("VanillaRNN", (" + self.bias_hh)", ")"))),
    ("VanillaRNN", "both biases left out of the update",
     _edit("VanillaRNN", (_RNN_STEP, "h = torch.tanh(x[:, t] @ self.weight_xh.T + h @ self.weight_hh.T)"))),
    ("VanillaRNN", "h0 = ones instead of zeros",
     _edit("VanillaRNN", (_RNN_H0, "h = x.new_ones(batch, self.hidden_size)"))),
    ("VanillaRNN", "state not carried: every step starts from zero",
     _edit("VanillaRNN", (_RNN_STEP, "h = torch.tanh(x[:, t] @ self.weight_xh.T + self.bias_xh + "
                                     "x.new_zeros(batch, self.hidden_size) @ self.weight_hh.T + self.bias_hh)"))),
    ("VanillaRNN", "state kept between calls instead of h0 = 0 at every call",
     _edit("VanillaRNN", (_RNN_H0, "h = getattr(self, 'last', None)\n        h = x.new_zeros(batch, self.hidden_size) "
                                   "if h is None or h.shape[0] != batch else h"),
           (_RNN_RESULT, "self.last = h.detach()\n        " + _RNN_RESULT))),
    ("VanillaRNN", "weight_hh used transposed", _edit("VanillaRNN", ("h @ self.weight_hh.T", "h @ self.weight_hh"))),
    ("VanillaRNN", "weight_xh stored as (D, H)",
     _edit("VanillaRNN", ("torch.empty(hidden_size, input_size)", "torch.empty(input_size, hidden_size)"),
           ("x[:, t] @ self.weight_xh.T", "x[:, t] @ self.weight_xh"))),
    ("VanillaRNN", "output off by one: h_0 ... h_{T-1} instead of h_1 ... h_T",
     _edit("VanillaRNN", ("            h = torch.tanh(x[:, t]",
                          "            states.append(h)\n            h = torch.tanh(x[:, t]"),
           ("            states.append(h)\n        return", "        return"))),
    ("VanillaRNN", "returns only the last hidden state", _edit("VanillaRNN", (_RNN_RESULT, "return h"))),
    ("VanillaRNN", "hidden state detached between steps (no gradient through time)",
     _edit("VanillaRNN", ("            states.append(h)\n",
                          "            states.append(h)\n            h = h.detach()\n"))),
    ("VanillaRNN", "calls torch.nn.RNN (correct values, forbidden)", _body("VanillaRNN", forward='''
        rnn = nn.RNN(x.shape[2], self.hidden_size, batch_first=True)
        rnn.weight_ih_l0 = self.weight_xh
        rnn.weight_hh_l0 = self.weight_hh
        rnn.bias_ih_l0 = self.bias_xh
        rnn.bias_hh_l0 = self.bias_hh
        return rnn(x)[0]''')),
    ("VanillaRNN", "extra learnable initial state (a fifth parameter)",
     _edit("VanillaRNN",
           (_RNN_BIAS_HH, _RNN_BIAS_HH + "        self.h0 = nn.Parameter(torch.zeros(hidden_size))\n"))),
    # ---- SelfAttention
    ("SelfAttention", "no 1/sqrt(d) scaling", _edit("SelfAttention", (" / math.sqrt(self.d)", ""))),
    ("SelfAttention", "scaled by 1/d instead of 1/sqrt(d)",
     _edit("SelfAttention", (" / math.sqrt(self.d)", " / self.d"))),
    ("SelfAttention", "softmax over the queries (wrong axis)",
     _edit("SelfAttention", ("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=1)"))),
    ("SelfAttention", "keys used as values",
     _edit("SelfAttention", ("return weights @ values", "return weights @ keys"))),
    ("SelfAttention", "queries and keys swapped in the scores (weights transposed)",
     _edit("SelfAttention", ("scores = queries @ keys.transpose(1, 2)", "scores = keys @ queries.transpose(1, 2)"))),
    ("SelfAttention", "weight matrix applied untransposed (x @ W instead of W x)",
     _edit("SelfAttention", ("queries, keys, values = self.q(x), self.k(x), self.v(x)",
                             "queries, keys, values = x @ self.q.weight, x @ self.k.weight, x @ self.v.weight"))),
    ("SelfAttention", "returns the values without attention",
     _edit("SelfAttention", ("return weights @ values", "return values"))),
    ("SelfAttention", "linear maps with biases",
     _edit("SelfAttention", *((f"self.{m} = nn.Linear(d, d, bias=False)", f"self.{m} = nn.Linear(d, d, bias=True)")
                              for m in "qkv"))),
    ("SelfAttention", "a learned position table that grows with the sequence length",
     _edit("SelfAttention", ("        queries, keys, values = self.q(x), self.k(x), self.v(x)\n",
                             "        if not hasattr(self, 'position') or self.position.shape[0] < x.shape[1]:\n"
                             "            self.position = nn.Parameter(torch.zeros(x.shape[1], self.d))\n"
                             "        x = x + self.position[: x.shape[1]]\n"
                             "        queries, keys, values = self.q(x), self.k(x), self.v(x)\n"))),
    ("SelfAttention", "calls F.scaled_dot_product_attention (correct values, forbidden)",
     _edit("SelfAttention", (_ATTENTION_END,
                             "        return nn.functional.scaled_dot_product_attention(queries, keys, values)\n"))),
    # ---- CausalSelfAttention
    ("CausalSelfAttention", "calls F.scaled_dot_product_attention(is_causal=True) (correct values, forbidden)",
     _edit("CausalSelfAttention", (f"        {_CAUSAL_WEIGHTS}\n        return weights @ values\n",
                                   "        return nn.functional.scaled_dot_product_attention(queries, keys, values, "
                                   "is_causal=True)\n"))),
    ("CausalSelfAttention", "no mask at all",
     _edit("CausalSelfAttention", ('scores.masked_fill(future, float("-inf"))', "scores"))),
    ("CausalSelfAttention", "mask off by one: the diagonal is masked too",
     _edit("CausalSelfAttention", (".triu(diagonal=1)", ".triu(diagonal=0)"))),
    ("CausalSelfAttention", "mask off by one: the next position is allowed",
     _edit("CausalSelfAttention", (".triu(diagonal=1)", ".triu(diagonal=2)"))),
    ("CausalSelfAttention", "the wrong triangle is masked (the past instead of the future)",
     _edit("CausalSelfAttention", (".triu(diagonal=1)", ".tril(diagonal=-1)"))),
    ("CausalSelfAttention", "masked scores set to 0 instead of -inf",
     _edit("CausalSelfAttention", ('float("-inf")', "0.0"))),
    ("CausalSelfAttention", "mask applied after the softmax without renormalising",
     _edit("CausalSelfAttention",
           (_CAUSAL_WEIGHTS, "weights = torch.softmax(scores, dim=-1).masked_fill(future, 0.0)"))),
    ("CausalSelfAttention", "no 1/sqrt(d) scaling", _edit("CausalSelfAttention", (" / math.sqrt(self.d)", ""))),
    # ---- MultiHeadSelfAttention
    ("MultiHeadSelfAttention", "scaled by sqrt(d) instead of sqrt(d_head)",
     _edit("MultiHeadSelfAttention", ("math.sqrt(self.d_head)", "math.sqrt(self.d)"))),
    ("MultiHeadSelfAttention", "no output map o",
     _edit("MultiHeadSelfAttention", ("return self.o(heads)", "return heads"))),
    ("MultiHeadSelfAttention", "heads split by a view without moving the head axis",
     _edit("MultiHeadSelfAttention", (_HEADS_SPLIT, "return z.reshape(batch, self.heads, steps, self.d_head)"))),
    ("MultiHeadSelfAttention", "heads taken as strided features (h, h + heads, ...) instead of slices",
     _edit("MultiHeadSelfAttention",
           (_HEADS_SPLIT, "return z.reshape(batch, steps, self.d_head, self.heads).permute(0, 3, 1, 2)"))),
    ("MultiHeadSelfAttention", "heads concatenated without moving the head axis back",
     _edit("MultiHeadSelfAttention", ("(weights @ values).transpose(1, 2).reshape(batch, steps, self.d)",
                                      "(weights @ values).reshape(batch, steps, self.d)"))),
    ("MultiHeadSelfAttention", "softmax over the queries", _edit("MultiHeadSelfAttention", ("dim=-1)", "dim=-2)"))),
    ("MultiHeadSelfAttention", "delegates to nn.MultiheadAttention with the same weights (correct values, forbidden)",
     _edit("MultiHeadSelfAttention", ("        batch, steps, _ = x.shape\n", '''\
        attention = nn.MultiheadAttention(self.d, self.heads, bias=False, batch_first=True, dtype=x.dtype)
        attention.in_proj_weight = nn.Parameter(torch.cat([self.q.weight, self.k.weight, self.v.weight]))
        attention.out_proj.weight = self.o.weight
        return attention(x, x, x, need_weights=False)[0]
        batch, steps, _ = x.shape
'''))),
    ("MultiHeadSelfAttention", "only the first head used, repeated",
     _edit("MultiHeadSelfAttention", (_HEADS_MERGE, "heads = (weights @ values)[:, :1].expand(-1, self.heads, -1, -1)"
                                                    ".transpose(1, 2).reshape(batch, steps, self.d)"))),
]

ALTERNATIVES = [
    ("VanillaRNN", "einsum and a preallocated output written in place",
     _body("VanillaRNN", forward='''
        n, t_len, _ = x.shape
        out = torch.zeros(n, t_len, self.hidden_size, dtype=x.dtype)
        h = torch.zeros(n, self.hidden_size, dtype=x.dtype)
        for t in range(t_len):
            pre = torch.einsum("hd,nd->nh", self.weight_xh, x[:, t]) + torch.einsum("hk,nk->nh", self.weight_hh, h)
            h = torch.tanh(pre + self.bias_xh + self.bias_hh)
            out[:, t] = h
        return out''')),
    ("VanillaRNN", "input projections for all steps in one batched matmul, F.linear, float32 zeros",
     '''import torch.nn.functional as F


class VanillaRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.weight_xh = nn.Parameter(torch.randn(hidden_size, input_size) * 0.1)
        self.weight_hh = nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.1)
        self.bias_xh = nn.Parameter(torch.zeros(hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, x):
        projected = F.linear(x, self.weight_xh, self.bias_xh)          # (N, T, H) at once
        h = torch.zeros(x.shape[0], self.weight_hh.shape[0])
        outputs = []
        for step in projected.unbind(dim=1):
            h = torch.tanh(step + F.linear(h, self.weight_hh, self.bias_hh))
            outputs.append(h.unsqueeze(1))
        return torch.cat(outputs, dim=1)
'''),
    ("SelfAttention", "einsum and an explicit, stabilised softmax",
     _body("SelfAttention", forward='''
        d = x.shape[-1]
        scores = torch.einsum("bid,bjd->bij", self.q(x), self.k(x)) * d ** -0.5
        scores = scores - scores.max(dim=-1, keepdim=True).values
        weights = scores.exp() / scores.exp().sum(dim=-1, keepdim=True)
        return torch.einsum("bij,bjd->bid", weights, self.v(x))''')),
    ("SelfAttention", "a loop over the batch and bmm-free matrix products",
     '''class SelfAttention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.scale = 1 / math.sqrt(d)

    def forward(self, x):
        rows = []
        for sequence in x:                       # (t, d)
            w = torch.softmax(self.q(sequence) @ self.k(sequence).T * self.scale, dim=1)
            rows.append(w @ self.v(sequence))
        return torch.stack(rows)
'''),
    ("CausalSelfAttention", "subclass of SelfAttention with an additive -inf matrix",
     '''class CausalSelfAttention(SelfAttention):
    def forward(self, x):
        t, d = x.shape[1], x.shape[2]
        blocked = torch.full((t, t), float("-inf")).triu(1)
        scores = self.q(x) @ self.k(x).transpose(-1, -2) / math.sqrt(d) + blocked
        return torch.softmax(scores, dim=-1) @ self.v(x)
'''),
    ("CausalSelfAttention", "a loop over positions, each attending to its prefix",
     _body("CausalSelfAttention", forward='''
        queries, keys, values = self.q(x), self.k(x), self.v(x)
        outputs = []
        for i in range(x.shape[1]):
            scores = (keys[:, : i + 1] @ queries[:, i].unsqueeze(-1)).squeeze(-1) / math.sqrt(x.shape[2])
            weights = torch.softmax(scores, dim=1)                          # (b, i + 1)
            outputs.append((weights.unsqueeze(-1) * values[:, : i + 1]).sum(dim=1))
        return torch.stack(outputs, dim=1)''')),
    ("CausalSelfAttention", "exp, tril and renormalisation instead of -inf",
     _body("CausalSelfAttention", forward='''
        scores = self.q(x) @ self.k(x).transpose(1, 2) / math.sqrt(x.shape[-1])
        scores = scores - scores.amax(dim=-1, keepdim=True)
        kept = torch.tril(torch.exp(scores))
        return kept / kept.sum(dim=-1, keepdim=True) @ self.v(x)''')),
    ("MultiHeadSelfAttention", "a loop over heads with slices of the full projections",
     '''class MultiHeadSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        assert d % heads == 0
        self.heads = heads
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.o = nn.Linear(d, d, bias=False)

    def forward(self, x):
        width = x.shape[-1] // self.heads
        queries, keys, values = self.q(x), self.k(x), self.v(x)
        outputs = []
        for h in range(self.heads):
            part = slice(h * width, (h + 1) * width)
            scores = queries[..., part] @ keys[..., part].transpose(1, 2) / math.sqrt(width)
            outputs.append(torch.softmax(scores, dim=-1) @ values[..., part])
        return self.o(torch.cat(outputs, dim=-1))
'''),
    ("MultiHeadSelfAttention", "einsum over a (b, t, heads, d_head) view",
     '''class MultiHeadSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        n, w = self.heads, d // self.heads
        q, k, v = (layer(x).view(b, t, n, w) for layer in (self.q, self.k, self.v))
        weights = torch.einsum("bihe,bjhe->bhij", q, k).div(w ** 0.5).softmax(dim=-1)
        return self.o(torch.einsum("bhij,bjhe->bihe", weights, v).reshape(b, t, d))
'''),
]
