"""A user's own labelled images: a folder with one sub-folder per class, or an ``.npz`` of arrays.

- **Folder**: ``DIR/<class>/*.png|jpg|jpeg|bmp`` (classes in sorted order of their folder names), or
  ``DIR/train/<class>/...`` with ``DIR/test/<class>/...`` (the same class folders in both). Without a
  ``test/`` folder, a fixed seeded 20 % of each class is held out as the test split. Grey and RGB images mix:
  if any image has colour, all are read as RGB. Images of several sizes are resized (bilinear) to the most
  common size when read; each batch is then resized to the architecture's resolution, as built-in data is.
- **.npz**: ``x`` (N x H x W grey or N x H x W x C with C = 1 or 3; uint8 0..255 or float) and ``y`` (N integer
  labels 0..K-1), optionally ``x_test`` / ``y_test``; without them the same seeded hold-out.

The class count K is the data's own (a folder: its class folders; an .npz: max label + 1), and the
normalisation is the training split's own per-channel mean and standard deviation. Bad input is one NasError
naming the file (or key) and the fix; nothing is cached from a failed read.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from nas.errors import NasError
from nas.space.schema import LIMITS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
HOLDOUT = 0.2  # share of each class held out as the test split when the data has none
HOLDOUT_SEED = 12345  # fixed: the split never depends on a user's --seed
CHUNK_VALUES = 1 << 20  # pixel values per chunk of the mean / std accumulation (8 MB of float64)


@dataclass(frozen=True)
class UserData:
    """Both splits of a user's data as arrays: images N x C x H x W (uint8 or float32), int64 labels."""

    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, of the training images scaled to [0, 1] (uint8) or as stored (float)
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)


def is_user_source(name: str) -> bool:
    """Whether ``--data`` names a file or folder (anything with a path separator, a suffix or that exists)."""
    return os.sep in name or "/" in name or name.endswith(".npz") or Path(name).exists()


def read(source: str) -> UserData:
    """The data at ``source`` (a folder or an .npz), read once per process and file modification time."""
    path = Path(source).expanduser()
    if not path.exists():
        raise NasError(f"no such file or folder: {source}", argument="data",
                       fix="give a folder with one sub-folder of images per class, an .npz with x and y, or one of "
                           "fashion-mnist, digits, noise")
    return _read(str(path.resolve()), _stamp(path))


def _stamp(path: Path) -> float:
    """Latest modification time under ``path`` (a changed folder is read again)."""
    if path.is_file():
        return path.stat().st_mtime
    return max([path.stat().st_mtime] + [p.stat().st_mtime for p in path.rglob("*")])


@lru_cache(maxsize=4)
def _read(path: str, _stamp: float) -> UserData:
    p = Path(path)
    if p.is_dir():
        return _from_folder(p)
    if p.suffix == ".npz":
        return _from_npz(p)
    raise NasError(f"{path} is neither a folder nor an .npz file", argument="data",
                   fix="give a folder with one sub-folder of images per class, or an .npz with arrays x and y")


# --------------------------------------------------------------------------------------------------------
# folder of class folders
# --------------------------------------------------------------------------------------------------------
def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(dirs) < 2:
        raise NasError(f"{root} has {len(dirs)} class folder(s)", argument="data",
                       fix="put the images of each class in its own sub-folder (at least 2 classes), e.g. "
                           f"{root}/cat/1.png and {root}/dog/1.png")
    return dirs


def _images(d: Path) -> list[Path]:
    files = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise NasError(f"class folder {d} holds no images", argument="data",
                       fix=f"add {'/'.join(IMAGE_SUFFIXES)} files to it, or remove the folder")
    return files


def _from_folder(root: Path) -> UserData:
    split_dirs = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if split_dirs else root
    classes = [d.name for d in _class_dirs(train_root)]
    files = {"train": [(f, k) for k, c in enumerate(classes) for f in _images(train_root / c)]}
    if split_dirs:
        test_classes = [d.name for d in _class_dirs(root / "test")]
        if test_classes != classes:
            raise NasError(f"{root}/test has classes {test_classes}, {root}/train has {classes}", argument="data",
                           fix="use the same class folder names under train/ and test/")
        files["test"] = [(f, k) for k, c in enumerate(classes) for f in _images(root / "test" / c)]
    pictures = {split: [_open(f) for f, _ in items] for split, items in files.items()}
    colour = any(im.mode not in ("L", "1", "I", "I;16", "F", "LA") for ims in pictures.values() for im in ims)
    size = Counter(im.size for ims in pictures.values() for im in ims).most_common(1)[0][0]
    arrays = {split: (np.stack([_pixels(im, colour, size) for im in ims]),
                      np.array([k for _, k in files[split]], dtype=np.int64)) for split, ims in pictures.items()}
    x, y = arrays["train"]
    x_test, y_test = arrays["test"] if split_dirs else (None, None)
    return _finish(str(root), x, y, x_test, y_test, tuple(classes))


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise NasError(f"cannot read image {path} ({exc})", argument="data",
                       fix="replace or delete the file (PNG, JPEG or BMP images are read)") from None


def _pixels(im, colour: bool, size: tuple[int, int]) -> np.ndarray:
    """C x H x W uint8 at ``size`` (width, height)."""
    from PIL import Image

    im = im.convert("RGB" if colour else "L")
    if im.size != size:
        im = im.resize(size, Image.BILINEAR)
    a = np.asarray(im, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


# --------------------------------------------------------------------------------------------------------
# .npz
# --------------------------------------------------------------------------------------------------------
def _from_npz(path: Path) -> UserData:
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # zipfile / numpy raise several types for a bad file
        raise NasError(f"cannot read {path} as .npz ({exc})", argument="data",
                       fix="save it with numpy.savez(path, x=images, y=labels)") from None
    with z:
        keys = set(z.files)
        for need in ("x", "y"):
            if need not in keys:
                raise NasError(f"{path} has no array '{need}' (it has {', '.join(sorted(keys)) or 'none'})",
                               argument="data", fix="save it with numpy.savez(path, x=images, y=labels)")
        if ("x_test" in keys) != ("y_test" in keys):
            raise NasError(f"{path} has only one of x_test / y_test", argument="data", fix="give both or neither")
        x, y = _npz_images(z["x"], path, "x"), _npz_labels(z["y"], path, "y")
        _same_length(x, y, path, "x", "y")
        x_test = y_test = None
        if "x_test" in keys:
            x_test, y_test = _npz_images(z["x_test"], path, "x_test"), _npz_labels(z["y_test"], path, "y_test")
            _same_length(x_test, y_test, path, "x_test", "y_test")
            if x_test.shape[1:] != x.shape[1:]:
                raise NasError(f"{path}: x_test images are {x_test.shape[1:]}, x images {x.shape[1:]}",
                               argument="data", fix="store both splits at the same size and channels")
    k = _class_count(y, path)
    if y_test is not None and int(y_test.max()) >= k:
        raise NasError(f"{path}: y_test has label {int(y_test.max())}, but y only goes up to {k - 1}",
                       argument="data", fix="every test label must be a class of the training labels y")
    return _finish(str(path), x, y, x_test, y_test, tuple(str(c) for c in range(k)))


def _npz_images(a: np.ndarray, path: Path, key: str) -> np.ndarray:
    if a.ndim == 4 and a.shape[-1] in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    elif a.ndim == 3:
        a = a[:, None]
    else:
        raise NasError(f"{path}: '{key}' has shape {a.shape}", argument="data",
                       fix="images must be N x H x W (grey) or N x H x W x C with C = 1 or 3")
    if len(a) == 0:
        raise NasError(f"{path}: '{key}' holds no images", argument="data", fix="store at least one image per class")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise NasError(f"{path}: '{key}' has dtype {a.dtype}", argument="data",
                       fix="images must be uint8 (0..255) or floats")
    if not np.isfinite(a).all():
        raise NasError(f"{path}: '{key}' holds NaN or infinite values", argument="data",
                       fix="images must be finite numbers")
    return np.ascontiguousarray(a, dtype=np.float32)


def _npz_labels(a: np.ndarray, path: Path, key: str) -> np.ndarray:
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise NasError(f"{path}: '{key}' must be a 1-D array of integer labels, got {a.dtype} of shape {a.shape}",
                       argument="data", fix="labels are class numbers 0..K-1, e.g. y = np.array([0, 2, 1, ...])")
    if len(a) and int(a.min()) < 0:
        raise NasError(f"{path}: '{key}' has the negative label {int(a.min())}", argument="data",
                       fix="labels are class numbers 0..K-1")
    bound = LIMITS["num_classes"][0]  # checked on the stored integers, before any int64 conversion
    if len(a) and int(a.max()) >= bound:
        raise NasError(f"{path}: '{key}' has the label {int(a.max())}, above the limit of {bound} classes",
                       argument="data", fix="labels are class numbers 0..K-1 (renumber them from 0)")
    return a.astype(np.int64)


def _class_count(y: np.ndarray, path: Path) -> int:
    """K = max label + 1, checked before anything of size K (class names, counts) is made: at most the space
    limit on classes, and no more than the labels there are (each class needs a training image)."""
    top = int(y.max())
    if top >= len(y):
        raise NasError(f"{path}: 'y' has the label {top} ({top + 1} classes) but only {len(y)} labels, so some "
                       "classes have no training images", argument="data",
                       fix="labels are class numbers 0..K-1 with every class present (renumber them from 0)")
    return top + 1


def _same_length(x, y, path, kx, ky) -> None:
    if len(x) != len(y):
        raise NasError(f"{path}: {len(x)} images in '{kx}' but {len(y)} labels in '{ky}'", argument="data",
                       fix="give one label per image")


# --------------------------------------------------------------------------------------------------------
# both sources
# --------------------------------------------------------------------------------------------------------
def _finish(source: str, x, y, x_test, y_test, classes) -> UserData:
    k = len(classes)
    counts = np.bincount(y, minlength=k)
    if (counts == 0).any():
        missing = [classes[i] for i in np.flatnonzero(counts == 0)]
        raise NasError(f"{source}: class(es) {', '.join(missing)} have no training images", argument="data",
                       fix="give every class at least one training image (labels are 0..K-1)")
    if x_test is None:
        x, y, x_test, y_test = _holdout(x, y, source)
    mean, std = channel_stats(x)
    return UserData(source, x, y, x_test, y_test, classes, mean, std)


def channel_stats(x: np.ndarray, chunk_values: int = CHUNK_VALUES) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of N x C x H x W images, uint8 scaled to [0, 1]:
    accumulated in float64 over chunks of about ``chunk_values`` values (each chunk's mean and sum of squared
    deviations, merged exactly), so memory stays a chunk, never a float64 copy of the data."""
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    channels = x.shape[1]
    per_image = max(1, int(np.prod(x.shape[1:])))
    step = max(1, chunk_values // per_image)
    n, mean, m2 = 0, np.zeros(channels), np.zeros(channels)
    for lo in range(0, len(x), step):
        c = x[lo:lo + step].astype(np.float64)
        c /= scale
        c_n = c.shape[0] * c.shape[2] * c.shape[3]
        c_mean = c.mean(axis=(0, 2, 3))
        c -= c_mean[None, :, None, None]
        np.square(c, out=c)
        c_m2 = c.sum(axis=(0, 2, 3))
        delta, total = c_mean - mean, n + c_n
        mean, m2, n = mean + delta * (c_n / total), m2 + c_m2 + delta ** 2 * (n * c_n / total), total
    std = np.sqrt(m2 / max(n, 1))
    return tuple(float(v) for v in mean), tuple(max(float(v), 1e-6) for v in std)


def _holdout(x, y, source: str):
    """A fixed 20 % of each class as the test split (at least one image; a class of one image stays in train)."""
    rng = np.random.default_rng(HOLDOUT_SEED)
    test = []
    for k in range(int(y.max()) + 1):
        idx = np.flatnonzero(y == k)
        n = int(round(HOLDOUT * len(idx)))
        if len(idx) > 1:
            test.extend(rng.choice(idx, size=max(1, n), replace=False).tolist())
    mask = np.zeros(len(y), dtype=bool)
    mask[test] = True
    if not mask.any():
        raise NasError(f"{source} is too small to hold out a test split", argument="data",
                       fix="give at least 2 images of some class, or a test/ folder (x_test / y_test)")
    return x[~mask], y[~mask], x[mask], y[mask]
