"""Datasets: adapted to the space's input, seeded, and a precise error when Fashion-MNIST is absent."""
import numpy as np
import pytest
import torch

from nas.data import datasets as data
from nas.errors import NasError
from nas.space import load_space


def test_digits_adapted_to_input_shape_and_normalised():
    d = data.load("digits", resolution=32, channels=3)
    x, y = d.batch(np.arange(64))
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x[:, 0], x[:, 2])  # grey repeated over channels
    assert abs(float(x.mean())) < 0.3 and 0.7 < float(x.std()) < 1.3
    assert len(data.load("digits", split="train")) + len(data.load("digits", split="test")) == 1797


def test_same_seed_same_batch_and_splits_disjoint():
    d = data.load("digits", resolution=16, channels=1)
    a, b, c = d.sample(16, seed=1), d.sample(16, seed=1), d.sample(16, seed=2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])
    tr, te = data.load("digits", split="train"), data.load("digits", split="test")
    rows = {r.tobytes() for r in tr.x}
    assert sum(r.tobytes() in rows for r in te.x) < 0.1 * len(te.x)  # (a few digits are exact duplicates)


def test_noise_is_seeded_and_labels_fit_the_head():
    n = data.load("noise", resolution=8, channels=3, num_classes=4, seed=3)
    x1, y1 = n.sample(32, seed=5)
    x2, y2 = data.load("noise", resolution=8, channels=3, num_classes=4, seed=3).sample(32, seed=5)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and int(y1.max()) < 4 and x1.shape == (32, 3, 8, 8)
    # real labels fold onto a smaller head
    _, y = data.load("digits", num_classes=3).sample(100)
    assert int(y.max()) == 2


def test_for_space_uses_resolution_and_channels():
    d = data.for_space(load_space("mobilenet-in1k"), "digits")
    x, _ = d.sample(2)
    assert x.shape[1:] == (3, 224, 224)


def test_fashion_missing_names_package_and_apt_command(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_FASHION_MNIST_DIR", str(tmp_path))
    data._fashion.cache_clear()
    try:
        with pytest.raises(NasError) as err:
            data.load("fashion-mnist")
        msg = str(err.value)
        assert "dataset-fashion-mnist" in msg and "apt-get install -y dataset-fashion-mnist" in msg
        assert str(tmp_path) in msg and "\n" not in msg
    finally:
        data._fashion.cache_clear()


def test_unknown_dataset_and_split():
    with pytest.raises(NasError, match="unknown dataset 'cifar10'.*fashion-mnist, digits, noise"):
        data.load("cifar10")
    with pytest.raises(NasError, match="unknown split"):
        data.load("digits", split="val")


def test_fashion_mnist_test_split_when_installed():
    if not (data.fashion_dir() / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("dataset-fashion-mnist is not installed")
    d = data.load("fashion-mnist", split="test", resolution=32, channels=3)
    assert len(d) == 10_000
    x, y = d.batch([0, 1, 2])
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [9, 2, 1]  # the published first test labels
