"""A user's own data (nas.data.user, through nas.data.datasets): class folders of images and .npz arrays, the
class count and statistics they bring, and one precise error for each kind of bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from nas.data import datasets, user
from nas.errors import NasError


def write_folder(root, classes=("cat", "dog", "owl"), per_class=5, *, colour_one=False, sizes=((12, 12),)):
    """PNG images in root/<class>/; pixel values encode (class, index) so tests can find them again."""
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = sizes[i % len(sizes)]
            value = 20 * k + i
            if colour_one and k == 0 and i == 0:
                Image.new("RGB", size, (value, 0, 255)).save(root / name / f"{i}.png")
            else:
                Image.new("L", size, value).save(root / name / f"{i}.png")
    return root


def test_folder_classes_counts_and_holdout(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=10)
    data = user.read(str(root))
    assert data.classes == ("cat", "dog", "owl") and data.num_classes == 3 and data.channels == 1
    assert len(data.y_train) + len(data.y_test) == 30
    assert np.bincount(data.y_test).tolist() == [2, 2, 2]  # 20 % of each class
    again = user._read.__wrapped__(str(root.resolve()), 0.0)  # a fresh read: the hold-out is fixed
    np.testing.assert_array_equal(again.y_test, data.y_test)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    pixels = data.x_train.reshape(len(data.y_train), -1)[:, 0].astype(int)
    assert (pixels // 20 == data.y_train).all()  # each image kept its own class


def test_folder_with_train_and_test_colour_and_sizes(tmp_path):
    write_folder(tmp_path / "d" / "train", per_class=4, colour_one=True, sizes=((10, 10), (10, 10), (16, 8)))
    write_folder(tmp_path / "d" / "test", per_class=2)
    data = user.read(str(tmp_path / "d"))
    assert data.channels == 3  # one colour image: all read as RGB
    assert data.x_train.shape == (12, 3, 10, 10) and data.x_test.shape == (6, 3, 10, 10)  # most common size
    assert np.bincount(data.y_test).tolist() == [2, 2, 2]


def test_npz_with_and_without_test_split(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 9, 9, 3), dtype=np.uint8)
    y = np.repeat(np.arange(4), 10)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    a = user.read(str(tmp_path / "a.npz"))
    assert a.num_classes == 4 and a.x_train.shape[1:] == (3, 9, 9) and len(a.y_test) == 8
    np.savez(tmp_path / "b.npz", x=rng.standard_normal((20, 7, 7)).astype(np.float32), y=np.arange(20) % 2,
             x_test=rng.standard_normal((6, 7, 7)), y_test=np.arange(6) % 2)
    b = user.read(str(tmp_path / "b.npz"))
    assert b.x_train.dtype == np.float32 and b.x_train.shape == (20, 1, 7, 7) and len(b.y_test) == 6
    assert b.std[0] == pytest.approx(float(b.x_train.std()), rel=1e-5)


def test_image_data_resizes_normalises_and_keeps_labels(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=10)
    assert datasets.check_name(str(root)) == str(root) and datasets.num_classes_of(str(root)) == 3
    assert datasets.num_classes_of("fashion-mnist") is None
    train = datasets.load(str(root), split="train", resolution=32, channels=3, num_classes=3)
    x, y = train.batch(np.arange(len(train)))
    assert x.shape == (24, 3, 32, 32) and y.max() == 2
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5) and float(x.std()) == pytest.approx(1.0, rel=0.05)
    test = datasets.load(str(root), split="test", resolution=8, channels=1, num_classes=3)
    assert test.batch([0])[0].shape == (1, 1, 8, 8) and len(test) == 6
    with pytest.raises(NasError, match="the network has 10 outputs, the data .* has 3 classes"):
        datasets.load(str(root), num_classes=10)


def test_space_follows_the_data_class_count():
    from nas.layers import plan
    from nas.space import load_space

    space = load_space("mobilenet-c10")
    three = space.with_num_classes(3)
    arch = three.sample_many(1, seed=0)[0]
    assert plan(arch, three)[-1].cout == 3 and plan(arch, space)[-1].cout == 10
    assert space.with_num_classes(10) is space


def _err(tmp_path, build, match):
    path = build(tmp_path)
    with pytest.raises(NasError, match=match) as info:
        datasets.check_name(str(path))
    assert info.value.argument == "data" and info.value.fix
    assert "\n" not in str(info.value).strip()


def test_missing_path(tmp_path):
    _err(tmp_path, lambda t: t / "nope" / "imgs", "no such file or folder")


def test_unreadable_image(tmp_path):
    def build(t):
        root = write_folder(t / "imgs")
        (root / "dog" / "9.png").write_bytes(b"not a png")
        return root
    _err(tmp_path, build, r"cannot read image .*dog/9\.png")


def test_empty_class_folder(tmp_path):
    def build(t):
        root = write_folder(t / "imgs")
        (root / "empty").mkdir()
        return root
    _err(tmp_path, build, r"class folder .*empty holds no images")


def test_one_class_only(tmp_path):
    _err(tmp_path, lambda t: write_folder(t / "imgs", classes=("cat",)), "has 1 class folder")


def test_train_and_test_classes_differ(tmp_path):
    def build(t):
        write_folder(t / "d" / "train")
        write_folder(t / "d" / "test", classes=("cat", "dog"))
        return t / "d"
    _err(tmp_path, build, "test has classes")


@pytest.mark.parametrize("arrays, match", [
    ({"x": np.zeros((4, 5, 5), np.uint8)}, "has no array 'y'"),
    ({"x": np.zeros((4, 5, 5), np.uint8), "y": np.zeros(3, int)}, "4 images in 'x' but 3 labels"),
    ({"x": np.zeros((4, 5, 5), np.uint8), "y": np.array([0.0, 1, 0, 1])}, "'y' must be a 1-D array of integer"),
    ({"x": np.zeros((4, 5, 5), np.uint8), "y": np.array([0, -1, 0, 1])}, "negative label -1"),
    ({"x": np.zeros((4, 5), np.uint8), "y": np.zeros(4, int)}, r"'x' has shape \(4, 5\)"),
    ({"x": np.full((4, 5, 5), np.nan, np.float32), "y": np.arange(4) % 2}, "NaN or infinite"),
    ({"x": np.zeros((4, 5, 5), np.uint8), "y": np.array([0, 2, 0, 2])}, "class\\(es\\) 1 have no training"),
    ({"x": np.zeros((4, 5, 5), np.uint8), "y": np.arange(4) % 2, "x_test": np.zeros((2, 5, 5), np.uint8),
      "y_test": np.array([0, 5])}, "y_test has label 5"),
    ({"x": np.zeros((4, 5, 5), np.uint8), "y": np.arange(4) % 2, "x_test": np.zeros((2, 5, 5), np.uint8)},
     "only one of x_test / y_test"),
])
def test_bad_npz(tmp_path, arrays, match):
    def build(t):
        np.savez(t / "d.npz", **arrays)
        return t / "d.npz"
    _err(tmp_path, build, match)


def test_not_an_npz(tmp_path):
    def build(t):
        (t / "d.npz").write_text("hello")
        return t / "d.npz"
    _err(tmp_path, build, "cannot read .* as .npz")


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 30), k=st.integers(2, 5), h=st.integers(1, 6), colour=st.booleans(),
       floats=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_npz_round_trip(tmp_path_factory, n, k, h, colour, floats, seed):
    """Any well-formed x / y: every image comes back once, with its own label, channels first."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(k), rng.integers(0, k, n)])  # every class present
    shape = (len(y), h, h, 3) if colour else (len(y), h, h)
    x = rng.standard_normal(shape).astype(np.float32) if floats else rng.integers(0, 256, shape, dtype=np.uint8)
    if floats:  # pixel (0, 0) of channel 0 numbers the image
        x[..., 0, 0] = np.arange(len(y)).reshape((-1, 1) if colour else -1)
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    np.savez(path, x=x, y=y, x_test=x[:2], y_test=y[:2])
    data = user.read(str(path))
    assert data.num_classes == k and data.channels == (3 if colour else 1)
    assert data.x_train.shape == (len(y), 3 if colour else 1, h, h)
    np.testing.assert_array_equal(data.y_train, y)
    if floats:
        np.testing.assert_array_equal(data.x_train[:, 0, 0, 0], np.arange(len(y)))


@pytest.mark.parametrize("labels, match", [
    (np.array([0, 1, 0, 10 ** 6]), r"'y' has the label 1000000, above the limit of 1000000 classes"),
    (np.array([0, 1, 0, 2 ** 64 - 1], dtype=np.uint64), r"'y' has the label 18446744073709551615, above the limit"),
    (np.array([0, 1, 0, 999_999]), r"'y' has the label 999999 \(1000000 classes\) but only 4 labels"),
])
def test_item15_huge_npz_label_is_refused_before_any_class_list(tmp_path, labels, match, monkeypatch):
    """A stray huge label (an id, a uint64 sentinel) is one error naming the file and the label, raised before
    anything of the label's size is made: it built range(max label) class names first (with a label of 10^12
    that exhausts the memory; the labels here stay small enough for the old code to fail, not to hang), and a
    uint64 above int64 wrapped to a negative label (a numpy traceback)."""
    made = []
    monkeypatch.setattr(np, "bincount", lambda y, minlength=0: made.append(minlength) or np.zeros(1, int))
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 5, 5), np.uint8), y=labels)
    with pytest.raises(NasError, match=match) as info:
        user._read.__wrapped__(str(tmp_path / "d.npz"), 0.0)
    assert str(tmp_path / "d.npz") in str(info.value) and made == []


def test_item15_mean_and_std_without_a_float64_copy_of_the_data(tmp_path):
    """The training split's per-channel mean and std are accumulated by chunks: reading uint8 data costs about
    the data, not the 8x of a float64 copy of it (it made one, and numpy's std another)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4000, 32, 32, 3), dtype=np.uint8)  # 12 MB; float64 would be 98 MB
    x[:, :, :, 2] //= 4  # channels differ
    y = np.arange(len(x)) % 10
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x[:8], y_test=y[:8])
    tracemalloc.start()
    try:
        data = user._read.__wrapped__(str(tmp_path / "d.npz"), 0.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * x.nbytes, f"peak {peak / 1e6:.0f} MB reading {x.nbytes / 1e6:.0f} MB of images"
    ref = x.astype(np.float64) / 255.0
    np.testing.assert_allclose(data.mean, ref.mean(axis=(0, 1, 2)), rtol=1e-10)
    np.testing.assert_allclose(data.std, ref.std(axis=(0, 1, 2)), rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), c=st.sampled_from([1, 3]), h=st.integers(1, 5), chunk=st.integers(1, 200),
       offset=st.sampled_from([0.0, 1e4]), seed=st.integers(0, 2 ** 16))
def test_item15_chunked_stats_equal_numpy(n, c, h, chunk, offset, seed):
    """Any chunking gives numpy's mean and population std (float data far from 0 included: no cancellation)."""
    x = (np.random.default_rng(seed).standard_normal((n, c, h, h)) + offset).astype(np.float32)
    mean, std = user.channel_stats(x, chunk_values=chunk)
    ref = x.astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(std, np.maximum(ref.std(axis=(0, 2, 3)), 1e-6), rtol=1e-7, atol=1e-9)
