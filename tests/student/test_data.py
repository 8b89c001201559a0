"""dlcourse.data: the loaders read torchvision's layouts and fail with a message a student can act on."""

from __future__ import annotations

import time
from pathlib import Path
import urllib.error
import urllib.request

import pytest
import torch
import torchvision

import dlcourse
from dlcourse import data
from stand_in_data import CIFAR10_LABEL_NAMES, prepare_mnist_from_fashion, write_cifar10


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    return prepare_mnist_from_fashion(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    return write_cifar10(tmp_path_factory.mktemp("cifar"), n_train=53, n_test=17, seed=3)


@pytest.fixture
def no_network(monkeypatch):
    """Every URL fails at once, as on a machine without internet."""
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# --------------------------------------------------------------------------- where the data live


def test_data_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    monkeypatch.delenv("DLCOURSE_DATA")
    assert data.data_root() == Path(dlcourse.__file__).resolve().parent.parent / "data"


# --------------------------------------------------------------------------- MNIST


def test_load_mnist_is_torchvisions_mnist_with_to_tensor(mnist_root):
    train = data.load_mnist(train=True, root=mnist_root, download=False)
    test = data.load_mnist(train=False, root=mnist_root, download=False)
    assert isinstance(train, torchvision.datasets.MNIST)
    assert (len(train), len(test)) == (60000, 10000)
    image, label = test[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert isinstance(label, int) and 0 <= label <= 9


def test_mnist_tensors_match_the_dataset_items(mnist_root):
    x, y = data.mnist_tensors(train=False, root=mnist_root)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert set(y.unique().tolist()) == set(range(10))
    dataset = data.load_mnist(train=False, root=mnist_root, download=False)
    for index in (0, 17, 9999):
        image, label = dataset[index]
        torch.testing.assert_close(x[index], image)
        assert int(y[index]) == label


def test_mnist_uses_data_root_by_default(mnist_root, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(mnist_root))
    x, y = data.mnist_tensors(train=False)
    assert x.shape[0] == y.shape[0] == 10000


def test_mnist_missing_without_download_names_folder_and_files(tmp_path):
    with pytest.raises(data.DataMissingError) as caught:
        data.load_mnist(root=tmp_path, download=False)
    message = str(caught.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in message
    assert "internet" in message
    assert isinstance(caught.value, FileNotFoundError)


def test_mnist_with_some_files_missing_lists_only_those(mnist_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes((mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte").read_bytes())
    with pytest.raises(data.DataMissingError) as caught:
        data.load_mnist(root=tmp_path, download=False)
    missing_line = str(caught.value).splitlines()[1]
    assert "train-images-idx3-ubyte" not in missing_line and "t10k-images-idx3-ubyte" in missing_line


# --------------------------------------------------------------------------- CIFAR-10


def test_load_cifar10_reads_the_python_pickle_format(cifar_root):
    train = data.load_cifar10(train=True, root=cifar_root, download=False)
    test = data.load_cifar10(train=False, root=cifar_root, download=False)
    assert isinstance(train, torchvision.datasets.CIFAR10)
    assert (len(train), len(test)) == (53, 17)
    assert tuple(train.classes) == data.CIFAR10_CLASSES == tuple(CIFAR10_LABEL_NAMES)
    image, label = train[5]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0 <= label <= 9


def test_cifar10_tensors_match_the_dataset_items(cifar_root):
    x, y = data.cifar10_tensors(train=True, root=cifar_root)
    assert x.shape == (53, 3, 32, 32) and x.dtype == torch.float32 and x.is_contiguous()
    assert y.shape == (53,) and y.dtype == torch.int64
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    dataset = data.load_cifar10(train=True, root=cifar_root, download=False)
    for index in (0, 11, 52):
        image, label = dataset[index]
        torch.testing.assert_close(x[index], image)
        assert int(y[index]) == label


def test_cifar10_stand_in_classes_have_distinct_mean_colours(cifar_root):
    """Each class has its own mean colour, so a classifier can learn something: no two class means lie within 0.01."""
    x, y = data.cifar10_tensors(train=True, root=cifar_root)
    means = torch.stack([x[y == c].mean(dim=(0, 2, 3)) for c in y.unique()])
    assert torch.cdist(means, means).fill_diagonal_(1.0).min() > 0.01


def test_cifar10_missing_without_download(tmp_path):
    with pytest.raises(data.DataMissingError) as caught:
        data.load_cifar10(root=tmp_path, download=False)
    message = str(caught.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "data_batch_1" in message and "test_batch" in message and "internet" in message


def test_cifar10_truncated_file_is_reported(cifar_root, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for path in (cifar_root / "cifar-10-batches-py").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "data_batch_2").write_bytes(b"\x80\x02}q")
    with pytest.raises(data.DataMissingError) as caught:
        data.load_cifar10(root=tmp_path, download=False)
    assert "cannot be read" in str(caught.value)


# --------------------------------------------------------------------------- without network


@pytest.mark.parametrize("loader, folder", [("mnist_tensors", ("MNIST", "raw")),
                                            ("cifar10_tensors", ("cifar-10-batches-py",))],
                         ids=["mnist", "cifar10"])
def test_failed_download_raises_data_missing_within_10_s_naming_the_folder(tmp_path, no_network, loader, folder):
    start = time.monotonic()
    with pytest.raises(data.DataMissingError) as caught:
        getattr(data, loader)(root=tmp_path)
    assert time.monotonic() - start < 10
    assert "download failed" in str(caught.value)
    assert str(tmp_path.joinpath(*folder)) in str(caught.value)


# --------------------------------------------------------------------------- grading helpers


def test_shrink_only_while_grading(monkeypatch):
    x, y = torch.arange(10.0).reshape(10, 1), torch.arange(10)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not data.grading_mode()
    assert data.shrink(x, y, 3)[0].shape[0] == 10
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert data.grading_mode()
    small_x, small_y = data.shrink(x, y, 3)
    assert small_x.tolist() == [[0.0], [1.0], [2.0]] and small_y.tolist() == [0, 1, 2]


@pytest.fixture
def no_device_override(monkeypatch):
    monkeypatch.delenv(data.DEVICE_VARIABLE, raising=False)


def _mps(monkeypatch, available: bool):
    """torch.backends.mps as on a Mac with (or without) an Apple GPU; this machine has none."""
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: available)


def test_pick_device_is_cuda_only_when_available(monkeypatch, no_device_override):
    _mps(monkeypatch, False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert data.pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert data.pick_device().type == "cuda"


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"),
                                                 (False, True, "mps"), (False, False, "cpu")])
def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch, no_device_override, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    _mps(monkeypatch, mps)
    monkeypatch.setenv(data.MPS_FALLBACK_VARIABLE, "1")
    assert data.pick_device().type == expected


def test_pick_device_on_mps_without_the_fallback_warns_how_to_turn_it_on(monkeypatch, no_device_override, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _mps(monkeypatch, True)
    monkeypatch.delenv(data.MPS_FALLBACK_VARIABLE, raising=False)
    with caplog.at_level("WARNING", logger="dlcourse.data"):
        assert data.pick_device().type == "mps"
    assert "dlcourse lab" in caplog.text and "PYTORCH_ENABLE_MPS_FALLBACK=1" in caplog.text
    caplog.clear()
    monkeypatch.setenv(data.MPS_FALLBACK_VARIABLE, "1")
    with caplog.at_level("WARNING", logger="dlcourse.data"):
        data.pick_device()
    assert caplog.text == ""


def test_pick_device_without_mps_backend_in_torch_is_cpu(monkeypatch, no_device_override):
    """An older or stripped torch may have no torch.backends.mps at all."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delattr(torch.backends, "mps")
    assert data.pick_device() == torch.device("cpu")


def test_pick_device_follows_dlcourse_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(data.DEVICE_VARIABLE, "cpu")
    assert data.pick_device() == torch.device("cpu")


def test_lab_kernels_get_the_mps_fallback_unless_set_otherwise(monkeypatch, tmp_path):
    from dlcourse.student.lab import lab_env

    monkeypatch.delenv(data.MPS_FALLBACK_VARIABLE, raising=False)
    assert lab_env(tmp_path)[data.MPS_FALLBACK_VARIABLE] == "1"
    monkeypatch.setenv(data.MPS_FALLBACK_VARIABLE, "0")
    assert lab_env(tmp_path)[data.MPS_FALLBACK_VARIABLE] == "0"
