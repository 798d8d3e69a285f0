"""Image data for proxies and short training runs: Fashion-MNIST, scikit-learn digits, or Gaussian noise.

Every dataset is adapted to a search space's input on the fly: resized (bilinear) to the space's resolution
and channel-adapted (grey images repeated over the channels), then normalised with the dataset's own mean
and standard deviation. Images are kept at native size as uint8 and converted one batch at a time, so the
whole of Fashion-MNIST never exists as 32x32x3 floats (that would be 0.7 GB).

- ``fashion-mnist``: 60k train + 10k test, 28x28 grey, 10 classes, from the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``; override with ``NAS_FASHION_MNIST_DIR``).
- ``digits``: scikit-learn's ``load_digits`` (1,797 8x8 grey digits, 10 classes, shipped in the wheel);
  a fixed, seeded 80/20 split stands in for train/test.
- ``noise``: standard Gaussian images with uniform random labels (as many classes as the space has);
  unlimited, deterministic under the seed. The "input" of noise-based proxies (Zen-NAS, SynFlow-style).

Nothing is downloaded at run time. Same seed, same batch.
"""
from __future__ import annotations

import dataclasses
import gzip
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from nas.data import user
from nas.errors import NasError

DATASETS = ("fashion-mnist", "digits", "noise")
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SPLITS = ("train", "test")
DATASET_CLASSES = 10  # Fashion-MNIST and digits both have 10
NOISE_SIZE = 10_000  # nominal size of the noise "dataset" (indices wrap; every index is its own seed)


def fashion_dir() -> Path:
    return Path(os.environ.get("NAS_FASHION_MNIST_DIR", FASHION_DIR))


def check_name(name: str) -> str:
    """A built-in dataset name, or a user's folder / .npz (read and checked now, so a bad file fails first)."""
    if name in DATASETS:
        return name
    if user.is_user_source(str(name)):
        user.read(str(name))
        return str(name)
    raise NasError(f"unknown dataset '{name}'", argument="data",
                   fix=f"use one of {', '.join(DATASETS)}, a folder with one sub-folder of images per class, or an "
                       ".npz with arrays x and y")


def space_for_data(space, name: str):
    """``space`` with a classifier of the data's own class count for a user's data; unchanged for built-in data."""
    k = num_classes_of(name)
    return space if k is None else space.with_num_classes(k)


def num_classes_of(name: str) -> int | None:
    """The class count of a user's data (the classifier's outputs follow it); None for built-in datasets,
    whose networks keep the space's own ``num_classes``."""
    return None if name in DATASETS else user.read(str(name)).num_classes


# --------------------------------------------------------------------------------------------------------
# raw arrays (uint8 images N x 1 x H x W, int64 labels), cached per process
# --------------------------------------------------------------------------------------------------------
def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3):
        raise NasError("not an IDX uint8 file", where=str(path), fix=f"reinstall: apt-get install --reinstall -y {FASHION_PACKAGE}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise NasError("truncated IDX file", where=str(path), fix=f"reinstall: apt-get install --reinstall -y {FASHION_PACKAGE}")
    return arr.reshape(dims)


@lru_cache(maxsize=4)
def _fashion(split: str) -> tuple[np.ndarray, np.ndarray]:
    root = fashion_dir()
    img_name, lbl_name = FASHION_FILES[split]
    missing = [n for n in (img_name, lbl_name) if not (root / n).is_file()]
    if missing:
        raise NasError(
            f"Fashion-MNIST is not installed (missing {', '.join(missing)} in {root})", argument="data",
            fix=f"install the Debian package {FASHION_PACKAGE}: sudo apt-get update && sudo apt-get install -y "
                f"{FASHION_PACKAGE} (or set NAS_FASHION_MNIST_DIR, or use data='digits' / data='noise')")
    x = _read_idx(root / img_name)
    y = _read_idx(root / lbl_name).astype(np.int64)
    return x[:, None, :, :], y


@lru_cache(maxsize=1)
def _digits_all() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, read straight from the CSV inside its wheel (importing sklearn takes seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is not None and path.is_file():
        raw = np.loadtxt(path, delimiter=",", dtype=np.float64)
        images, target = raw[:, :-1].reshape(-1, 8, 8), raw[:, -1]
    else:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise NasError("scikit-learn is not installed (needed for data 'digits')", argument="data",
                           fix="pip install scikit-learn, or use data='noise'") from None
        d = load_digits()
        images, target = d.images, d.target
    x = np.clip(np.round(images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None, :, :]
    return x, target.astype(np.int64)


def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _digits_all()
    order = np.random.default_rng(12345).permutation(len(y))  # fixed split, independent of any user seed
    cut = int(0.8 * len(y))
    idx = order[:cut] if split == "train" else order[cut:]
    return x[idx], y[idx]


# per-dataset normalisation of [0, 1] pixel values (computed on the training split)
_STATS = {"fashion-mnist": (0.2860, 0.3530), "digits": (0.3057, 0.3763)}


# --------------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------------
@dataclass
class ImageData:
    """One split of a dataset, adapted to ``resolution`` x ``resolution`` x ``channels`` on access.

    ``x``/``y`` are the raw images (uint8, or float32 for a user's float .npz) and labels (None for noise).
    ``batch(indices)`` returns images normalised with ``mean`` / ``std`` (per stored channel, of the training
    split) as float32 ``(n, channels, resolution, resolution)`` and int64 labels, as torch tensors.
    """

    name: str
    split: str
    resolution: int
    channels: int
    num_classes: int
    x: np.ndarray | None
    y: np.ndarray | None
    noise_seed: int = 0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    folds_labels: bool = True  # built-in 10-class data folds its labels onto a smaller head; a user's never

    def __len__(self) -> int:
        return NOISE_SIZE if self.x is None else len(self.y)

    def batch(self, indices):
        import torch

        idx = np.asarray(indices, dtype=np.int64)
        if self.x is None:
            g = torch.Generator().manual_seed(int(self.noise_seed) * 1_000_003 + int(idx[0]) if len(idx) else 0)
            x = torch.randn(len(idx), self.channels, self.resolution, self.resolution, generator=g)
            y = torch.randint(0, self.num_classes, (len(idx),), generator=g)
            return x, y
        x = torch.from_numpy(self.x[idx]).float()
        if self.x.dtype == np.uint8:
            x = x.div_(255.0)
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = torch.nn.functional.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear",
                                                align_corners=False, antialias=x.shape[-1] > self.resolution)
        shape = (1, -1, 1, 1)
        x = (x - torch.tensor(self.mean).reshape(shape)) / torch.tensor(self.std).reshape(shape)
        if self.channels != x.shape[1]:  # grey data for a colour network: repeat; colour for a grey one: average
            x = x.expand(-1, self.channels, -1, -1).contiguous() if x.shape[1] == 1 else x.mean(1, keepdim=True)
        y = torch.from_numpy(self.y[idx])
        if self.folds_labels and self.num_classes < DATASET_CLASSES:  # a smaller head: fold the classes onto it
            y = y % self.num_classes
        return x, y

    def sample(self, n: int, seed: int = 0):
        """``n`` examples drawn without replacement (with, if the split is smaller), fixed by ``seed``."""
        rng = np.random.default_rng(seed)
        if self.x is None:
            return self.batch(np.arange(n) + rng.integers(0, NOISE_SIZE))
        idx = rng.choice(len(self), size=n, replace=n > len(self))
        return self.batch(idx)

    def subset(self, n: int | None, seed: int = 0) -> "ImageData":
        """A fixed random subset of ``n`` examples (all of them if ``n`` is None or larger)."""
        if self.x is None or n is None or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return dataclasses.replace(self, x=self.x[idx], y=self.y[idx])


def load(name: str, *, split: str = "train", resolution: int = 32, channels: int = 3,
         num_classes: int = 10, seed: int = 0) -> ImageData:
    """A dataset split adapted to a space's input.

    ``num_classes`` is the network's number of outputs: noise labels are drawn from it, and real labels are
    folded onto it (``label % num_classes``) when it is below the dataset's 10. A head with more outputs
    (100, 1000) simply never sees the extra classes. A user's data (a folder or .npz path as ``name``) has its
    own class count, and the network must have exactly that many outputs (:func:`num_classes_of`).
    """
    check_name(name)
    if split not in SPLITS:
        raise NasError(f"unknown split '{split}'", argument="split", fix=f"use one of {', '.join(SPLITS)}")
    if resolution < 1 or channels < 1:
        raise NasError(f"bad input shape {resolution}x{resolution}x{channels}", argument="resolution")
    if name == "noise":
        return ImageData(name, split, resolution, channels, num_classes, None, None,
                         noise_seed=seed * 2 + (split == "test"))
    if name not in DATASETS:
        data = user.read(name)
        if num_classes != data.num_classes:
            raise NasError(f"the network has {num_classes} outputs, the data {name} has {data.num_classes} classes",
                           argument="data", fix="build the network for the data's classes "
                                                "(nas.space.SearchSpace.with_num_classes(num_classes_of(data)))")
        x, y = data.split(split)
        return ImageData(name, split, resolution, channels, num_classes, x, y, mean=data.mean, std=data.std,
                         folds_labels=False)
    x, y = _fashion(split) if name == "fashion-mnist" else _digits(split)
    mean, std = _STATS[name]
    return ImageData(name, split, resolution, channels, num_classes, x, y, mean=(mean,), std=(std,))


def for_space(space, name: str, *, split: str = "train", resolution: int | None = None, seed: int = 0) -> ImageData:
    """``load`` with the input shape of a SearchSpace (its first resolution unless given)."""
    return load(name, split=split, resolution=resolution or space.resolutions[0], channels=space.in_channels,
                num_classes=space.num_classes, seed=seed)
