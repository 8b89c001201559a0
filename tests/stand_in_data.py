"""Stand-in data sets for our own tests (never shipped to students).

Real MNIST and CIFAR-10 cannot be downloaded where the tests run, so:

- :func:`prepare_mnist_from_fashion` puts Debian's Fashion-MNIST (package
  ``dataset-fashion-mnist``: real 28x28 images, same IDX format, same sizes)
  where ``torchvision.datasets.MNIST`` looks for MNIST;
- :func:`write_cifar10` writes a small random set in CIFAR-10's own pickle
  format, which ``dlcourse.data.load_cifar10`` reads.

Both return the root to pass as ``root=`` or to put into ``$DLCOURSE_DATA``.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path

import numpy as np

FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"), Path("/usr/share/dataset-fashion-mnist"))
MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class FashionMnistUnavailable(RuntimeError):
    """Debian's dataset-fashion-mnist is not installed."""


def fashion_mnist_dir() -> Path:
    """The folder with Fashion-MNIST's four .gz IDX files (``apt-get install dataset-fashion-mnist``)."""
    for folder in FASHION_MNIST_DIRS:
        if all((folder / f"{name}.gz").is_file() for name in MNIST_NAMES):
            return folder
    raise FashionMnistUnavailable(
        "Fashion-MNIST not found in " + " or ".join(map(str, FASHION_MNIST_DIRS))
        + ": install it with `apt-get install -y dataset-fashion-mnist`"
    )


def prepare_mnist_from_fashion(root) -> Path:
    """Put Fashion-MNIST into ``root/MNIST/raw/`` under MNIST's file names; return ``root``.

    torchvision 0.29 opens MNIST only from the unpacked files (it looks for
    ``MNIST/raw/train-images-idx3-ubyte`` etc. and checks no checksum), so
    the .gz files are unpacked.
    """
    source = fashion_mnist_dir()
    root = Path(root)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in MNIST_NAMES:
        target = raw / name
        if target.is_file():
            continue
        partial = raw / (name + ".part")
        with gzip.open(source / f"{name}.gz", "rb") as packed, open(partial, "wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
        partial.replace(target)
    return root


def write_cifar10(root, n_train: int = 500, n_test: int = 100, seed: int = 0) -> Path:
    """Write a small random CIFAR-10 in its python pickle format into ``root/cifar-10-batches-py``.

    ``n_train`` images are spread over data_batch_1..5 (the first batches get
    the remainder), ``n_test`` go into test_batch. Each class gets its own
    mean colour, so a classifier can learn something from them. Returns ``root``.
    """
    generator = np.random.default_rng(seed)
    root = Path(root)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    class_colours = generator.integers(40, 216, size=(10, 3))

    def batch(n: int, label: str) -> dict:
        labels = generator.integers(0, 10, size=n)
        noise = generator.normal(0.0, 30.0, size=(n, 3, 32, 32))
        images = np.clip(class_colours[labels][:, :, None, None] + noise, 0, 255).astype(np.uint8)
        return {
            "batch_label": label,
            "labels": [int(v) for v in labels],
            "data": images.reshape(n, 3 * 32 * 32),  # row-major R, G, B planes, as in CIFAR-10
            "filenames": [f"image_{label.replace(' ', '_')}_{i}.png" for i in range(n)],
        }

    sizes = [n_train // 5 + (1 if i < n_train % 5 else 0) for i in range(5)]
    for i, size in enumerate(sizes, start=1):
        _dump(folder / f"data_batch_{i}", batch(size, f"training batch {i} of 5"))
    _dump(folder / "test_batch", batch(n_test, "testing batch 1 of 1"))
    _dump(folder / "batches.meta", {"num_cases_per_batch": max(sizes + [n_test]),
                                    "label_names": list(CIFAR10_LABEL_NAMES), "num_vis": 3072})
    return root


def _dump(path: Path, obj: dict) -> None:
    # CIFAR-10's files are python-2 pickles with byte strings; protocol 2 with str keys
    # reads back the same way under pickle.load(..., encoding="latin1").
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)
