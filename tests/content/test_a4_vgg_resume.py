"""A4's VGG training cell, run as a student runs it: cut off after an epoch, run again, it goes on with the next.

The master's own training cell (grade_id ``training``) runs on a few random images with a small budget, in a
student's mode (no ``NBGRADER_EXECUTION``), once straight through and once cut off after epoch 2 of 3 and
run again; both must end with the same curves.
"""

from __future__ import annotations

import pytest
import torch

from dlcourse.budget import Budget
from dlcourse.core.notebook import grade_id, read_notebook
from helpers import SOURCE

VGG = SOURCE / "a4_convnets" / "a4_vgg_cifar.ipynb"
EPOCHS = 3
CUT = 2  # cut off after epoch 2 of 3: the next run trains epoch 3 only


def _training_cell() -> str:
    return next(c.source for c in read_notebook(VGG).cells if grade_id(c) == "training")


class CutOff(KeyboardInterrupt):
    """The laptop went to sleep."""


def _namespace(vgg_cifar, train_one_epoch) -> dict:
    g = torch.Generator().manual_seed(0)
    namespace = dict(vgg_cifar)
    namespace.update(
        BUDGET=Budget({"epochs": EPOCHS, "batch_size": 8, "train_images": 16, "test_images": 8}, grading=False),
        x_train=torch.rand(16, 3, 32, 32, generator=g), y_train=torch.randint(0, 10, (16,), generator=g),
        x_test=torch.rand(8, 3, 32, 32, generator=g), y_test=torch.randint(0, 10, (8,), generator=g),
        normalise=lambda x: x, device=torch.device("cpu"), train_one_epoch=train_one_epoch)
    return namespace


@pytest.mark.slow
def test_the_training_cell_cut_off_after_an_epoch_resumes_at_the_next_and_ends_as_an_uninterrupted_run(
        vgg_cifar, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cell = compile(_training_cell(), "training", "exec")
        real = vgg_cifar["train_one_epoch"]
        (tmp_path / "whole").mkdir()
        monkeypatch.chdir(tmp_path / "whole")
        whole = _namespace(vgg_cifar, real)
        exec(cell, whole)

        cut = CUT
        calls = []

        def cut_off_after(model, loader, optimizer, device):
            if len(calls) == cut:
                raise CutOff
            calls.append(1)
            return real(model, loader, optimizer, device)

        (tmp_path / "cut").mkdir()
        monkeypatch.chdir(tmp_path / "cut")
        with pytest.raises(CutOff):
            exec(cell, _namespace(vgg_cifar, cut_off_after))
        capsys.readouterr()
        resumed = _namespace(vgg_cifar, real)
        exec(cell, resumed)
        printed = capsys.readouterr().out
    finally:
        torch.set_num_threads(threads)
    assert f"resumed from vgg16.pt: {cut} epoch" in printed, printed
    assert f"epoch {cut}/{EPOCHS}:" not in printed and f"epoch {cut + 1}/{EPOCHS}:" in printed, printed
    assert resumed["history"]["batch_loss"] == pytest.approx(whole["history"]["batch_loss"], rel=1e-4)
    assert resumed["history"]["test_acc"] == whole["history"]["test_acc"]
    assert len(resumed["history"]["train_acc"]) == EPOCHS
