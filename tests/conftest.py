"""Shared set-up: stand-in data sets, and a scratch copy of the course."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session", autouse=True)
def course_data(tmp_path_factory):
    """Real MNIST-format images (Fashion-MNIST) and small CIFAR-10 files, offline.

    Kernels started by the grader inherit DLCOURSE_DATA, so the training
    notebooks load these through the real torchvision loaders.
    """
    if os.environ.get("DLCOURSE_TEST_DATA"):
        os.environ["DLCOURSE_DATA"] = os.environ["DLCOURSE_TEST_DATA"]
        return Path(os.environ["DLCOURSE_DATA"])
    from datasets import prepare_mnist_from_fashion, write_cifar10

    root = tmp_path_factory.mktemp("data")
    prepare_mnist_from_fashion(root)
    write_cifar10(root, n_train=500, n_test=100)
    os.environ["DLCOURSE_DATA"] = str(root)
    return root


def pytest_sessionstart(session):
    from helpers import KILL_RATE_FILE

    # Only the controller starts a fresh file: pytest-xdist workers append to it, one line per item.
    if KILL_RATE_FILE.exists() and not hasattr(session.config, "workerinput"):
        KILL_RATE_FILE.unlink()


def pytest_terminal_summary(terminalreporter):
    from helpers import KILL_RATE_FILE, kill_rate_summary

    if KILL_RATE_FILE.exists():
        terminalreporter.section("mutation kill rate per assignment")
        terminalreporter.write(kill_rate_summary(KILL_RATE_FILE.read_text()))
