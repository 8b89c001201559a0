"""What hidden tests use to grade what a network computes and how it trains (grader-only).

* :func:`assert_same_model`: the student's model and the reference on the same
  weights (matched by the order and shape of their parameters), in train and eval
  mode: outputs, running statistics, gradients of a random loss.
* :data:`STEP_RECORDER`, :func:`check_epochs`, :func:`replay_training`,
  :func:`assert_same_trajectory`: a training loop checked step for step against
  the reference loop replayed on the student's own batches, naming a common
  mistake (:data:`TRAINING_MISTAKES`) only when the student's trajectory is that
  mistake's.

These run in the grader's process, as every test cell does, and reach the
student's code through :data:`dlcourse.testing.student`. They live here, not in
:mod:`dlcourse.testing`, because a student kit ships ``testing.py`` and
:func:`replay_training` is a correct training loop: an answer of A3, A4 and A6.
Only hidden tests (in the masters) import this module; a kit never ships it
(``tests/unit/test_architecture.py``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..bridge import wire
from ..testing import _as_tensor, _assert_close_tensors, rng, student  # the test-cell API's own checks


#: Runs on either side, the very same steps: builds ``model`` from MAKE, matches its layers with the reference's by
#: the shapes of their parameters, in order (the first left of each shape: layers declared in another order than
#: they are used still match when their shapes tell them apart; single parameters, and the floating buffers, the
#: same way when whole layers cannot be matched), draws the weights from ``seed``, and records
#: one forward and one backward pass. The weights are drawn on each side, not sent, and the gradients come back as
#: every k-th entry: a VGG16 has 15 M weights.
_MODEL_RUN = """
model = (MAKE).to(dtype)


def matched(items, wanted, shape_of):
    # the items in the reference's order: each takes the first one left of its shape (declaration order aside)
    left, found = list(items), []
    for shape in wanted:
        match = next((item for item in left if shape_of(item) == shape), None)
        if match is None:
            return None
        found.append(match)
        left = [item for item in left if item is not match]
    return None if left else found


def by_layer(model, wanted_layers):
    # whole layers first (a layer's parameters together, matched by their shapes), then single parameters
    layers = [list(m.parameters(recurse=False)) for m in model.modules()]
    layers = [layer for layer in layers if layer]
    shapes = [[list(p.shape) for p in layer] for layer in layers]
    found = matched(range(len(layers)), wanted_layers, lambda i: shapes[i])
    if found is not None:
        return [p for i in found for p in layers[i]]
    return matched(list(model.parameters()), want_parameters, lambda p: list(p.shape)) or list(model.parameters())


params = by_layer(model, want_layers)
buffers = [b for b in model.buffers() if b.is_floating_point()]
buffers = matched(buffers, want_buffers, lambda b: list(b.shape)) or buffers
result = {"parameters": [list(p.shape) for p in params], "buffers": [list(b.shape) for b in buffers]}
sample = lambda t: t.detach().flatten()[::max(1, t.numel() // 4096)].clone()
if result["parameters"] == want_parameters and result["buffers"] == want_buffers:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in params:  # variance 1 / fan-in for weights, [-0.5, 0.5] for biases and scales
            scale = (3.0 / max(1, param[0].numel())) ** 0.5 if param.dim() > 1 else 0.5
            param.copy_(scale * (2 * torch.rand(param.shape, generator=generator, dtype=dtype) - 1))
        for b in buffers:  # running means and variances in [0.5, 1.5]: eval mode differs from train mode
            b.copy_(0.5 + torch.rand(b.shape, generator=generator, dtype=dtype))
    model.zero_grad(set_to_none=True)
    model.train(training)
    leaves = [x.detach().to(dtype).clone().requires_grad_(True) if isinstance(x, torch.Tensor) and x.is_floating_point()
              else x for x in inputs]
    torch.manual_seed(seed)
    out = model(*leaves)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    result["outputs"] = [o.detach() if isinstance(o, torch.Tensor) else o for o in outs]
    result["buffers_after"] = [sample(b) for b in buffers]
    if callable(grad_outputs):  # the reference's side draws the random loss from its own outputs
        grad_outputs = grad_outputs(result["outputs"])
    if grad_outputs is not None and len(outs) == len(grad_outputs) and all(
            isinstance(o, torch.Tensor) and list(o.shape) == list(g.shape) for o, g in zip(outs, grad_outputs)):
        sum((o * g).sum() for o, g in zip(outs, grad_outputs)).backward()
        result["gradients"] = [None if p.grad is None else sample(p.grad) for p in params]
        result["input_gradients"] = [None if x.grad is None else sample(x.grad) for x in leaves
                                     if isinstance(x, torch.Tensor) and x.requires_grad]
"""


def _run_model_here(model: torch.nn.Module, **inputs) -> dict:
    names = {"torch": torch, "reference_model": model}
    names.update(inputs)
    exec(compile(_MODEL_RUN.replace("MAKE", "reference_model"), "<reference model>", "exec"), names)
    return names["result"]


def _shapes_message(name: str, got: dict, want: dict) -> str:
    show = lambda shapes: ", ".join(str(tuple(s)) for s in shapes) or "none"  # noqa: E731
    kind = "parameters" if got["parameters"] != want["parameters"] else "buffers"
    what = "parameters" if kind == "parameters" else "buffers (batch-norm running statistics)"
    return (f"{name}'s {what} cannot be matched with the reference's by shape: yours have the shapes "
            f"[{show(got[kind])}] (in the order of .{kind}()), the reference's [{show(want[kind])}]. "
            "Build the layers with the sizes the exercise gives (and the biases and batch norms it asks for).")


def assert_same_model(make: str, reference: torch.nn.Module, inputs: Sequence[tuple], *, name: str,
                      modes: Sequence[str] = ("eval", "train"), dtype: torch.dtype = torch.float64,
                      rtol: float = 1e-6, atol: float = 1e-8, hint: str = "") -> None:
    """The student's model computes what ``reference`` computes, on the reference's weights.

    ``make`` is the student's constructor call (``"VGG16(batch_norm=True)"``), run beside the student's code;
    ``reference`` is the test's own module. For each tuple of ``inputs`` (positional arguments of one call,
    its index the seed) and each mode in ``modes``, both models get the same weights (matched by shape, in order,
    over ``.parameters()`` and the floating ``.buffers()``), the same seed before the forward pass (so
    ``nn.Dropout`` draws the same masks), and the same random loss ``sum(output * g)``; their outputs, the
    running statistics after the pass, and the gradients of the loss (parameters and floating inputs) must agree.
    Attribute names, ``nn.Sequential`` or an explicit forward do not matter, nor the order in which layers of
    different shapes are declared; layers of one shape are matched in the order they are declared.
    """
    reference = reference.to(dtype)
    for seed, arguments in enumerate(inputs):
        for mode in modes:
            _compare_once(make, reference, list(arguments), name=name, mode=mode, seed=seed, dtype=dtype,
                          rtol=rtol, atol=atol, hint=hint)


def _compare_once(make: str, reference: torch.nn.Module, arguments: list, *, name: str, mode: str, seed: int,
                  dtype: torch.dtype, rtol: float, atol: float, hint: str) -> None:
    layers = [[list(p.shape) for p in m.parameters(recurse=False)] for m in reference.modules()]
    shapes = dict(want_parameters=[list(p.shape) for p in reference.parameters()],
                  want_layers=[layer for layer in layers if layer],
                  want_buffers=[list(b.shape) for b in reference.buffers() if b.is_floating_point()])
    setup = dict(shapes, training=mode == "train", seed=seed, dtype=dtype, inputs=arguments)
    drawn = []

    def draw_grad_outputs(outputs):
        generator = rng(1000 + seed)
        drawn.extend(torch.randn(o.shape, generator=generator, dtype=o.dtype) for o in outputs)
        return drawn

    want = _run_model_here(reference, grad_outputs=draw_grad_outputs, **setup)
    got = student.run(_MODEL_RUN.replace("MAKE", make), grad_outputs=drawn, **setup)
    if got["parameters"] != want["parameters"] or got["buffers"] != want["buffers"]:
        raise AssertionError(_shapes_message(name, got, want))
    what, where = f"{name} in {mode} mode", f"on the same weights as the reference (input {seed})"
    if len(got["outputs"]) != len(want["outputs"]):
        raise AssertionError(f"{what} returned {len(got['outputs'])} values, expected {len(want['outputs'])}. "
                             f"{hint}".strip())
    for k, (out, expected) in enumerate(zip(got["outputs"], want["outputs"])):
        output = "its output" if len(want["outputs"]) == 1 else f"its output {k}"
        _assert_close_model(out, expected, rtol, atol, f"{what}: {output} {where}", hint)
    for k, (after, expected) in enumerate(zip(got["buffers_after"], want["buffers_after"])):
        _assert_close_model(after, expected, rtol, atol, f"{what}: running statistic {k} after a forward pass",
                            "update the running statistics in training mode only, as nn.BatchNorm does")
    if "gradients" not in got:
        raise AssertionError(f"{what}: its output {where} could not be differentiated. {hint}".strip())
    parameter_names = [n for n, _ in reference.named_parameters()]
    for k, (grad, expected) in enumerate(zip(got["gradients"], want["gradients"])):
        parameter = f"parameter {k} (shape {tuple(want['parameters'][k])}, the reference's {parameter_names[k]})"
        if grad is None:
            raise AssertionError(f"{what}: {parameter} got no gradient: it is not used in the forward pass, "
                                 "or it is detached from it")
        _assert_close_model(grad, expected, rtol, atol, f"{what}: the gradient of {parameter} of a random loss",
                            "the outputs agree but this gradient does not: is part of the forward pass detached, "
                            "or a tensor changed in place?")
    for k, (grad, expected) in enumerate(zip(got["input_gradients"], want["input_gradients"])):
        if grad is None and expected is not None:
            raise AssertionError(f"{what}: no gradient reaches input {k}: the forward pass detaches it (or computes "
                                 "outside autograd), so nothing before this model could learn")
        if expected is not None:
            _assert_close_model(grad, expected, rtol, atol, f"{what}: the gradient of input {k} of a random loss",
                                hint)


def _assert_close_model(actual, expected, rtol: float, atol: float, name: str, hint: str) -> None:
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{name} should be a tensor, but it is {wire.describe(actual)}")
    _assert_close_tensors(_as_tensor(actual, name), _as_tensor(expected, name), rtol, atol, name, hint)


# --------------------------------------------------------------------------
# Training loops graded step for step, with feedback that names a mistake only when it is sure.


def _close(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> bool:
    actual, expected = _as_tensor(actual, "a parameter"), _as_tensor(expected, "a parameter")
    return tuple(actual.shape) == tuple(expected.shape) and bool(
        ((actual - expected).abs() <= atol + rtol * expected.abs()).all())


def _first_parting(got: Sequence[Sequence[torch.Tensor]], expected: Sequence[Sequence[torch.Tensor]], rtol: float,
                   atol: float) -> tuple[int, int] | None:
    """(step, parameter) where two trajectories first part, or None when they agree throughout."""
    if len(got) != len(expected):
        return (min(len(got), len(expected)), -1)
    for step, (mine, theirs) in enumerate(zip(got, expected)):
        for index, (a, b) in enumerate(zip(mine, theirs)):
            if not _close(a, b, rtol, atol):
                return step, index
    return None


def assert_same_trajectory(got: Sequence[Sequence[torch.Tensor]], expected: Sequence[Sequence[torch.Tensor]], *,
                           what: str, names: Sequence[str], mistakes: dict | None = None, rtol: float = 1e-4,
                           atol: float = 1e-6) -> None:
    """The parameters after every step of the student's loop (``got[step][parameter]``) are the reference's.

    ``mistakes`` maps a description of a common mistake ("the optimiser is created again for every batch") to the
    trajectory the reference gives with that mistake, from the same start and on the same batches. When the
    student's trajectory is not the reference's, the message names the mistake whose trajectory it follows, step
    for step; when it follows none, it says only where the two first part (step, parameter, largest difference),
    never a guess.
    """
    parting = _first_parting(got, expected, rtol, atol)
    if parting is None:
        return
    for mistake, trajectory in (mistakes or {}).items():
        if _first_parting(got, trajectory, rtol, atol) is None:
            raise AssertionError(f"{what}: your parameters follow, step for step, those of a loop in which "
                                 f"{mistake}. Fix that and run the check again.")
    step, index = parting
    if index < 0:
        raise AssertionError(f"{what}: your loop took {len(got)} optimiser steps, expected {len(expected)} "
                             "(one per batch, every epoch)")
    difference = (_as_tensor(got[step][index], "") - _as_tensor(expected[step][index], "")).abs().max().item() \
        if tuple(got[step][index].shape) == tuple(expected[step][index].shape) else float("nan")
    agree = f"steps 1 to {step} agree; " if step else ""
    known = f" It follows none of the loops this test knows to be wrong ({'; '.join(mistakes)})." if mistakes else ""
    raise AssertionError(
        f"{what}: {agree}after step {step + 1} your {names[index]} differs from the reference's by up to "
        f"{difference:.3g}.{known} Print the loss and the parameters after the first steps and compare them with "
        "one step worked out by hand.")


#: Put before a ``student.run`` snippet: ``steps = record_steps(model, data)`` makes ``model`` record, before each
#: forward pass with gradients, which rows of ``data`` its batch holds (-1: none), the random state (its dropout
#: masks), its mode and its parameters; ``stop_recording(model)`` ends it. A test replays those batches with
#: :func:`replay_training`, so the student's own order and shuffling are followed, and checked by
#: :func:`check_epochs`.
STEP_RECORDER = """
import torch as _torch


def record_steps(model, data):
    flat, steps = data.detach().cpu().flatten(1), []

    def before_forward(module, inputs):
        if _torch.is_grad_enabled():
            rows = inputs[0].detach().cpu().flatten(1)
            found = [(flat == row).all(dim=1).nonzero() for row in rows]
            steps.append({"index": [int(f[0]) if len(f) else -1 for f in found], "rng": _torch.get_rng_state(),
                          "training": module.training, "before": [p.detach().clone() for p in model.parameters()]})

    model._recording = model.register_forward_pre_hook(before_forward)
    return steps


def stop_recording(model):
    model._recording.remove()
"""

#: The mistakes :func:`replay_training` can make, as the message names them.
TRAINING_MISTAKES = {
    "no_zero_grad": "the gradients are never cleared (optimiser.zero_grad() missing)",
    "optimiser_per_batch": "a new optimiser is created for every batch (Adam's running averages start again)",
    "optimiser_per_epoch": "a new optimiser is created every epoch (Adam's running averages start again)",
    "eval_mode": "the model is in eval mode (dropout off, batch norm on its running statistics)",
    "summed_loss": "the loss of a batch is summed over its entries instead of averaged (reduction='sum')",
}


def check_epochs(steps: Sequence[dict], n: int, batches_per_epoch: int, epochs: int, what: str) -> None:
    """The recorded steps go through all ``n`` rows once per epoch, in a new order each epoch, in training mode."""
    if len(steps) != epochs * batches_per_epoch:
        raise AssertionError(f"{what} took {len(steps)} optimiser steps, expected {epochs * batches_per_epoch} "
                             f"({batches_per_epoch} batches per epoch, {epochs} epochs)")
    if any(-1 in step["index"] for step in steps):
        raise AssertionError(f"{what} gave the model rows that are not among the given ones: pass the data "
                             "themselves, only moved to the model's device")
    orders = [sum((step["index"] for step in steps[epoch * batches_per_epoch:(epoch + 1) * batches_per_epoch]), [])
              for epoch in range(epochs)]
    if any(sorted(order) != list(range(n)) for order in orders):
        raise AssertionError(f"{what}: an epoch did not go through every sample exactly once")
    if epochs > 1 and all(order == orders[0] for order in orders):
        raise AssertionError(f"{what} went through the samples in the same order in every epoch: draw a new "
                             "random order (torch.randperm) at the start of every epoch")
    if not all(step["training"] for step in steps):
        raise AssertionError(f"{what}: the model was in eval mode during training steps; train in training mode "
                             "(model.train()), so that dropout and batch norm do their job")


def replay_training(model: torch.nn.Module, steps: Sequence[dict], batch_loss: Callable, make_optimiser: Callable,
                    batches_per_epoch: int, mistake: str | None = None) -> tuple[list, list[float]]:
    """The reference loop on the batches (and dropout masks) the student's loop used, from ``model``'s weights.

    ``batch_loss(model, index, reduction)`` is the loss of the rows ``index``; ``make_optimiser(parameters)``
    the exercise's optimiser; ``mistake`` one key of :data:`TRAINING_MISTAKES`, or None for the right loop.
    Returns the parameters after every step and the batch losses.
    """
    model.train(mistake != "eval_mode")
    optimiser = make_optimiser(model.parameters())
    trajectory, losses = [], []
    with torch.random.fork_rng():
        for k, step in enumerate(steps):
            if mistake == "optimiser_per_batch" or (mistake == "optimiser_per_epoch" and k % batches_per_epoch == 0):
                optimiser = make_optimiser(model.parameters())
            torch.set_rng_state(step["rng"])
            loss = batch_loss(model, step["index"], "sum" if mistake == "summed_loss" else "mean")
            if mistake != "no_zero_grad":
                optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            trajectory.append([p.detach().clone() for p in model.parameters()])
            losses.append(loss.item())
    return trajectory, losses
