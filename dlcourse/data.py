"""Data sets for the course: where they live, how to load them, how to train fast.

    from dlcourse.data import mnist_tensors, shrink, pick_device
    x_train, y_train = mnist_tensors(train=True)      # (60000, 1, 28, 28) float32 in [0, 1]
    x_train, y_train = shrink(x_train, y_train, 2000)  # a small subset while grading

The files are looked for under :func:`data_root` (``$DLCOURSE_DATA``, else the
``data/`` folder beside the package: the course repository's, or the student
kit's), in the layout torchvision uses.
When they are missing, the loaders try to download them once (this needs
internet access); when that fails they raise :class:`DataMissingError`, whose
message says which files to put where.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
from pathlib import Path

import torch

from .core.config import device_override
from .core.course import data_root  # noqa: F401 - here for students; it lives in course (which needs no torch)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                 "test_batch", "batches.meta")

log = logging.getLogger(__name__)

# A download that cannot reach its server should fail in seconds, not minutes.
DOWNLOAD_TIMEOUT_S = 15


class DataMissingError(FileNotFoundError):
    """The data set's files are not where the course looks for them."""


def grading_mode() -> bool:
    """True while nbgrader (or ``dlcourse grade``) executes the notebook."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def shrink(x: torch.Tensor, y: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` samples while grading (training must be quick then); all of them otherwise."""
    if grading_mode():
        return x[:n], y[:n]
    return x, y


#: Set to "1" before torch is imported, PyTorch runs the operations Apple's MPS lacks on the CPU instead of
#: raising NotImplementedError. ``dlcourse lab`` sets it for its kernels; the Colab cell needs none.
MPS_FALLBACK_VARIABLE = "PYTORCH_ENABLE_MPS_FALLBACK"
#: ``DLCOURSE_DEVICE=cpu`` (or ``cuda``, ``mps``) overrides :func:`pick_device`'s choice.
DEVICE_VARIABLE = "DLCOURSE_DEVICE"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device() -> torch.device:
    """Where to train: an NVIDIA GPU (CUDA), else an Apple GPU (MPS), else the CPU.

    ``$DLCOURSE_DEVICE`` names one instead. On MPS, operations it lacks run on the CPU only when
    ``PYTORCH_ENABLE_MPS_FALLBACK=1`` was set before torch was imported (``dlcourse lab`` does); a warning
    says so when it was not. The grader has no GPU of Apple's, so grading picks as before (CUDA or CPU).
    """
    wanted = device_override()
    if wanted:
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        if os.environ.get(MPS_FALLBACK_VARIABLE) != "1":
            log.warning("Training on Apple's GPU (MPS). If an operation stops with NotImplementedError for MPS, "
                        "start the lab with `dlcourse lab` (it sets %s=1, so such operations run on the CPU), "
                        "or set %s=cpu to train on the CPU.", MPS_FALLBACK_VARIABLE, DEVICE_VARIABLE)
        return torch.device("mps")
    return torch.device("cpu")


# --------------------------------------------------------------------------
# MNIST


def _mnist_raw(root: Path) -> Path:
    return root / "MNIST" / "raw"


def _missing(folder: Path, names) -> list[str]:
    return [name for name in names if not (folder / name).is_file()]


def _mnist_message(root: Path, missing: list[str], reason: str) -> str:
    folder = _mnist_raw(root)
    return (
        f"MNIST is not in {folder} ({reason}).\n"
        f"Missing: {', '.join(missing)}.\n"
        "The course downloads it by itself when the computer has internet access. Without it, get the four "
        "files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
        "t10k-labels-idx1-ubyte.gz (e.g. from https://ossci-datasets.s3.amazonaws.com/mnist/) on a computer "
        f"that has internet, unpack them with gunzip and put the unpacked files into\n    {folder}\n"
        "(or set the environment variable DLCOURSE_DATA to a folder that holds MNIST/raw/ with them)."
    )


@contextlib.contextmanager
def _short_network_timeout(seconds: float = DOWNLOAD_TIMEOUT_S):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _load(dataset_class, root, folder: Path, files, message, train: bool, download: bool,
          read_errors: tuple[type[BaseException], ...]):
    """``dataset_class`` at ``root``: downloaded when missing (if allowed), or a DataMissingError saying what to do."""
    from torchvision import transforms

    missing = _missing(folder, files)
    if missing:
        if not download:
            raise DataMissingError(message(root, missing, "download=False"))
        try:
            root.mkdir(parents=True, exist_ok=True)
            print(f"Downloading into {root} (this needs internet access) ...")
            with _short_network_timeout():
                dataset_class(str(root), train=train, download=True)
        except Exception as error:  # no network, a proxy, a full disk: all end the same way
            missing = _missing(folder, files)
            raise DataMissingError(message(root, missing, f"the download failed: {_first_line(error)}")) from error
    try:
        return dataset_class(str(root), train=train, download=False, transform=transforms.ToTensor())
    except read_errors as error:
        raise DataMissingError(message(root, list(files), f"the files there cannot be read: {_first_line(error)}")) \
            from error


def load_mnist(train: bool = True, root=None, download: bool = True):
    """MNIST as ``torchvision.datasets.MNIST`` with ``ToTensor``: items are ((1, 28, 28) float in [0, 1], label).

    ``root``: the folder holding ``MNIST/raw/`` (default :func:`data_root`).
    Raises :class:`DataMissingError` when the files are missing and cannot be downloaded.
    """
    from torchvision import datasets

    root = Path(root) if root is not None else data_root()
    return _load(datasets.MNIST, root, _mnist_raw(root), MNIST_FILES, _mnist_message, train, download,
                 (RuntimeError, ValueError, TypeError, OSError))


def mnist_tensors(train: bool = True, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """All of MNIST's training (or test) set as two tensors, for fast training.

    Returns ``x`` of shape (N, 1, 28, 28), float32 in [0, 1] (what ``ToTensor`` gives
    for each image) and ``y`` of shape (N,), int64 labels 0..9.
    """
    dataset = load_mnist(train=train, root=root)
    x = dataset.data.unsqueeze(1).to(torch.float32).div_(255.0)
    y = dataset.targets.to(torch.int64).clone()
    return x, y


# --------------------------------------------------------------------------
# CIFAR-10


@functools.lru_cache(maxsize=None)
def _cifar10_class():
    from torchvision import datasets

    class CourseCIFAR10(datasets.CIFAR10):
        """torchvision's CIFAR10 that checks that the files are there, not their checksums.

        torchvision compares md5 sums every time it opens CIFAR-10; the course
        checks the download's archive (torchvision does that) and then only
        that the files exist, so that a small stand-in set works in tests.
        """

        train_list = [[name, None] for name, _ in datasets.CIFAR10.train_list]
        test_list = [[name, None] for name, _ in datasets.CIFAR10.test_list]
        meta = dict(datasets.CIFAR10.meta, md5=None)

    return CourseCIFAR10


def _cifar10_message(root: Path, missing: list[str], reason: str) -> str:
    folder = root / CIFAR10_FOLDER
    return (
        f"CIFAR-10 is not in {folder} ({reason}).\n"
        f"Missing: {', '.join(missing)}.\n"
        "The course downloads it by itself when the computer has internet access. Without it, download "
        "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html on a computer that has "
        f"internet and unpack it (tar xzf cifar-10-python.tar.gz) inside\n    {root}\n"
        f"so that {folder} holds data_batch_1 ... data_batch_5, test_batch and batches.meta "
        "(or set the environment variable DLCOURSE_DATA to a folder that holds cifar-10-batches-py/)."
    )


def load_cifar10(train: bool = True, root=None, download: bool = True):
    """CIFAR-10 as ``torchvision.datasets.CIFAR10`` with ``ToTensor``: items are ((3, 32, 32) float in [0, 1], label).

    ``root``: the folder holding ``cifar-10-batches-py/`` (default :func:`data_root`).
    Raises :class:`DataMissingError` when the files are missing and cannot be downloaded.
    """
    root = Path(root) if root is not None else data_root()
    # A truncated pickle raises almost anything: every error of reading counts as unreadable files.
    return _load(_cifar10_class(), root, root / CIFAR10_FOLDER, CIFAR10_FILES, _cifar10_message, train, download,
                 (Exception,))


def cifar10_tensors(train: bool = True, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """All of CIFAR-10's training (or test) set as two tensors.

    Returns ``x`` of shape (N, 3, 32, 32), float32 in [0, 1] and ``y`` of shape (N,), int64
    labels 0..9 (names in :data:`CIFAR10_CLASSES`).
    """
    dataset = load_cifar10(train=train, root=root)
    x = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).to(torch.float32).div_(255.0).contiguous()
    y = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return x, y


# --------------------------------------------------------------------------


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(lines) > 1:
        text += " ... " + lines[-1]
    return f"{type(error).__name__}: {text}"


__all__ = [
    "CIFAR10_CLASSES", "DataMissingError", "cifar10_tensors", "data_root", "grading_mode", "load_cifar10",
    "load_mnist", "mnist_tensors", "pick_device", "shrink",
]
