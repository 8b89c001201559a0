"""A long training run that survives being cut off: saved after every epoch, resumed at the next one.

    checkpoint = Checkpoint("vgg16.pt", settings={"batch_size": 256, "train_images": 50000})
    history = checkpoint.resume(model, optimizer, {"train_loss": []})    # the saved one, or the fresh one given
    for epoch in range(checkpoint.epochs_done, epochs):
        ...                                                              # one epoch, appending to history
        checkpoint.save(model, optimizer, history, epochs_done=epoch + 1)

The file holds the model's and the optimiser's state, the history, the number of epochs done and
torch's random state (so the next epoch shuffles as an uninterrupted run would); it is written to a
temporary file first, so a run killed while saving leaves the previous checkpoint intact, and read
with ``torch.load(weights_only=True)``, which runs no code. A checkpoint saved with other
``settings`` (another batch size, another subset) or for another model is not resumed.

While a notebook is graded, checkpoints are neither read nor written: what is graded never depends
on a file handed in beside the notebook.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .data import grading_mode


class Checkpoint:
    """One training run's checkpoint file. ``epochs_done``: how many epochs the resumed run had done."""

    def __init__(self, path, settings: dict | None = None, *, enabled: bool | None = None):
        self.path = Path(path)
        self.settings = dict(settings or {})
        self.enabled = (not grading_mode()) if enabled is None else enabled
        self.epochs_done = 0

    def resume(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, fresh_history: dict) -> dict:
        """Load the saved run into ``model`` and ``optimizer`` and return its history; else ``fresh_history``."""
        self.epochs_done = 0
        if not self.enabled or not self.path.is_file():
            return fresh_history
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            if not isinstance(saved, dict) or saved.get("settings") != self.settings:
                print(f"{self.path} was saved with other settings ({_settings(saved)}, now {self.settings}): "
                      "training starts afresh and will overwrite it.")
                return fresh_history
            _check_shapes(model, saved["model"])
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            torch.set_rng_state(saved["rng"])
            if torch.cuda.is_available() and saved.get("cuda_rng"):
                torch.cuda.set_rng_state_all(saved["cuda_rng"])
            epochs_done, history = int(saved["epochs_done"]), saved["history"]
        except Exception as error:  # a truncated file, another model's weights: both mean "start afresh"
            reason = (str(error).splitlines() or [""])[0][:200]
            print(f"{self.path} cannot be resumed ({type(error).__name__}: {reason}): "
                  "training starts afresh and will overwrite it.")
            return fresh_history
        self.epochs_done = epochs_done
        print(f"resumed from {self.path}: {epochs_done} epoch{'s' * (epochs_done != 1)} done already "
              f"(delete the file to train afresh)")
        return history

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, history: dict, epochs_done: int) -> None:
        """Write the run after ``epochs_done`` epochs (atomically: the old file stays until the new one is whole)."""
        if not self.enabled:
            return
        state = {"settings": self.settings, "epochs_done": int(epochs_done), "history": history,
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        torch.save(state, partial)
        os.replace(partial, self.path)
        self.epochs_done = int(epochs_done)


def _check_shapes(model: torch.nn.Module, state: dict) -> None:
    """Refuse another model's weights before any of them is copied in."""
    own = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    theirs = {name: tuple(value.shape) for name, value in state.items()}
    if own != theirs:
        differing = sorted(set(own.items()) ^ set(theirs.items()))[:3]
        raise ValueError(f"the saved weights are another model's (e.g. {differing})")


def _settings(saved) -> object:
    return saved.get("settings") if isinstance(saved, dict) else "not a checkpoint"


__all__ = ["Checkpoint"]
