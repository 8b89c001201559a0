"""dlcourse.checkpoint: a run cut off after any epoch resumes exactly where an uninterrupted run would be."""

from __future__ import annotations

import random

import pytest
import torch

from dlcourse.checkpoint import Checkpoint

SETTINGS = {"batch_size": 8, "train_images": 40}


@pytest.fixture(autouse=True)
def student(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def _data(seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(40, 3, generator=g), torch.randint(0, 2, (40,), generator=g)


def _run(path, epochs: int, seed: int, stop_after: int | None = None, settings=SETTINGS, hidden: int = 5):
    """Train a small net with the notebook's loop; ``stop_after``: the run is cut off after that many epochs."""
    x, y = _data(seed)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    checkpoint = Checkpoint(path, settings)
    history = checkpoint.resume(model, optimizer, {"loss": [], "epochs": []})
    start = checkpoint.epochs_done
    for epoch in range(start, epochs):
        for batch in torch.randperm(len(x)).split(8):  # shuffles with torch's random state, like a DataLoader
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history["loss"].append(loss.item())
        history["epochs"].append(epoch + 1)
        checkpoint.save(model, optimizer, history, epochs_done=epoch + 1)
        if stop_after is not None and epoch + 1 == stop_after:
            break
    return model, history, start


@pytest.mark.parametrize("seed", range(6))
def test_a_run_cut_off_after_any_epoch_resumes_at_the_next_and_ends_as_an_uninterrupted_one(tmp_path, seed):
    epochs = random.Random(seed).randint(2, 6)
    cut = random.Random(seed + 100).randint(1, epochs - 1)
    whole, whole_history, _ = _run(tmp_path / "whole.pt", epochs, seed)
    _run(tmp_path / "cut.pt", epochs, seed, stop_after=cut)
    resumed, resumed_history, start = _run(tmp_path / "cut.pt", epochs, seed)
    assert start == cut
    assert resumed_history["epochs"] == list(range(1, epochs + 1))
    assert resumed_history["loss"] == pytest.approx(whole_history["loss"])
    for a, b in zip(whole.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)


def test_a_finished_run_is_not_trained_again(tmp_path):
    _run(tmp_path / "run.pt", 3, seed=1)
    _, history, start = _run(tmp_path / "run.pt", 3, seed=1)
    assert start == 3 and history["epochs"] == [1, 2, 3]


def test_while_graded_a_checkpoint_handed_in_is_ignored_and_none_is_written(tmp_path, monkeypatch):
    _run(tmp_path / "handed_in.pt", 3, seed=2)
    before = (tmp_path / "handed_in.pt").read_bytes()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    _, history, start = _run(tmp_path / "handed_in.pt", 3, seed=2)
    assert start == 0 and history["epochs"] == [1, 2, 3]
    assert (tmp_path / "handed_in.pt").read_bytes() == before
    _run(tmp_path / "fresh.pt", 1, seed=2)
    assert not (tmp_path / "fresh.pt").exists()


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path, capsys):
    _run(tmp_path / "run.pt", 2, seed=3, stop_after=1)
    _, history, start = _run(tmp_path / "run.pt", 2, seed=3, settings={**SETTINGS, "batch_size": 16})
    assert start == 0 and history["epochs"] == [1, 2]
    assert "other settings" in capsys.readouterr().out


def test_another_models_weights_are_refused_before_any_is_copied_in(tmp_path, capsys):
    _run(tmp_path / "run.pt", 2, seed=4, stop_after=1, hidden=7)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    before = [p.detach().clone() for p in model.parameters()]
    checkpoint = Checkpoint(tmp_path / "run.pt", SETTINGS)
    fresh = {"loss": []}
    assert checkpoint.resume(model, torch.optim.Adam(model.parameters()), fresh) is fresh
    assert checkpoint.epochs_done == 0 and "cannot be resumed" in capsys.readouterr().out
    for a, b in zip(before, model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("keep", [0, 10, 100])
def test_a_truncated_checkpoint_starts_afresh(tmp_path, keep, capsys):
    _run(tmp_path / "run.pt", 2, seed=5)
    path = tmp_path / "run.pt"
    path.write_bytes(path.read_bytes()[:keep])
    _, history, start = _run(path, 2, seed=5)
    assert start == 0 and history["epochs"] == [1, 2]
    assert "cannot be resumed" in capsys.readouterr().out


def test_saving_leaves_no_partial_file(tmp_path):
    _run(tmp_path / "run.pt", 2, seed=6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]
