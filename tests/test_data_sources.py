"""Generated and bundled sources: toy sets, digits, MNIST-1D, and real Fashion-MNIST if present."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from losslab.data import load_dataset
from losslab.data.toy import checkerboard_labels
from losslab.errors import LosslabError

# float32 unit roundoff: datasets store float32 features generated in float64.
U32 = 2.0**-24
# --- toy sets -----------------------------------------------------------------------------


def test_checkerboard_labels_against_digitize_reference():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(5000, 2))
    edges = np.linspace(-1, 1, 9)[1:-1]
    i, j = np.digitize(x[:, 0], edges), np.digitize(x[:, 1], edges)
    np.testing.assert_array_equal(checkerboard_labels(x), (i + j) % 4)
    corners = np.array([[-1.0, -1.0], [-0.7, -0.99], [0.99, 0.99], [1.0, -1.0], [-0.74, -0.76]])
    np.testing.assert_array_equal(checkerboard_labels(corners), [0, 1, 2, 3, 1])


def test_checkerboard_dataset():
    ds = load_dataset("checkerboard", seed=5)
    assert ds.x_train.shape == (800, 2) and ds.x_test.shape == (800, 2)
    assert ds.num_classes == 4 and ds.x_train.dtype == np.float32
    assert np.all(np.abs(ds.x_train) <= 1)
    np.testing.assert_array_equal(ds.y_train, checkerboard_labels(ds.x_train.astype(np.float64)))
    assert np.all(np.bincount(ds.y_train, minlength=4) > 150)


def test_spirals_points_lie_on_their_arms():
    ds = load_dataset("spirals", seed=1, noise=0.0, turns=1.5)
    assert ds.x_train.shape == (800, 2) and ds.x_test.shape == (800, 2)
    np.testing.assert_array_equal(np.bincount(ds.y_train), [200] * 4)
    x = ds.x_train.astype(np.float64)
    r = np.hypot(x[:, 0], x[:, 1])
    t = (r - 0.1) / 0.9
    # Points are made in float64 and stored as float32: each coordinate moves by <= u32
    # relative, so r by <= u32 r <= u32 and t by <= u32 / 0.9; 2x margin
    dt = 2 * U32 / 0.9
    assert np.all((t > -dt) & (t < 1 + dt))
    # Arm k at parameter t points at angle 2 pi (1.5 t + k / 4).
    expected = 2 * np.pi * (1.5 * t + ds.y_train / 4)
    gap = np.angle(np.exp(1j * (np.arctan2(x[:, 1], x[:, 0]) - expected)))
    # the float32 coordinates turn the point by <= u32 rad; the t above (off by <= u32 / 0.9)
    # turns the expected angle by 2 pi 1.5 u32 / 0.9 = 10.5 u32: <= 12 u32; 2x margin
    assert np.max(np.abs(gap)) < 24 * U32


def test_spirals_noise_and_balance_for_odd_sizes():
    ds = load_dataset("spirals", n_train=10, n_test=7, seed=0)
    assert sorted(np.bincount(ds.y_train).tolist()) == [2, 2, 3, 3]
    assert sorted(np.bincount(ds.y_test, minlength=4).tolist()) == [1, 2, 2, 2]


def test_random_labels_are_uniform_and_seeded():
    ds = load_dataset("random_labels", seed=3)
    again = load_dataset("random_labels", seed=3)
    np.testing.assert_array_equal(ds.y_train, again.y_train)
    counts = np.bincount(ds.y_train, minlength=4)
    # Pearson's statistic is asymptotically chi-square with 3 dof: a correct generator
    # exceeds its 1 - 1e-6 quantile (30.7) with probability 1e-6
    assert np.sum((counts - 200) ** 2 / 200) < stats.chi2.ppf(1 - 1e-6, 3)
    assert np.all(np.abs(ds.x_train) <= 1)
    # labels do not follow the checkerboard (or any other) rule of the points: random labels
    # agree with it with probability 1/4 each, Binomial(800, 1/4) in all; its 1 - 1e-6
    # quantile (0.32) is exceeded with probability 1e-6, while the rule itself gives 1
    agree = np.sum(ds.y_train == checkerboard_labels(ds.x_train))
    assert agree <= stats.binom.ppf(1 - 1e-6, len(ds.y_train), 0.25)


@pytest.mark.parametrize("name", ["checkerboard", "spirals", "random_labels"])
def test_toy_bad_sizes(name):
    with pytest.raises(LosslabError, match="n_train"):
        load_dataset(name, n_train=0)


# --- digits -------------------------------------------------------------------------------


def test_digits_stratified_75_25_split():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = load_dataset("digits", seed=0)
    assert (len(ds.y_train), len(ds.y_test)) == (1348, 449)
    assert ds.input_shape == (8, 8) and ds.num_classes == 10
    counts = np.bincount(ref.target)
    for c in range(10):
        # stratified by construction: each class holds out floor or ceil of its share
        assert abs(np.sum(ds.y_test == c) - 0.25 * counts[c]) < 1
    both = np.concatenate([ds.x_train, ds.x_test]).reshape(-1, 64) * 16
    key = np.lexsort(both.T)
    ref_key = np.lexsort(ref.data.T)
    np.testing.assert_array_equal(both[key], ref.data[ref_key])
    other = load_dataset("digits", seed=1)
    assert not np.array_equal(other.y_test, ds.y_test)


# --- MNIST-1D -----------------------------------------------------------------------------


def test_mnist1d_equals_the_package_generator_with_default_args():
    from mnist1d.data import get_dataset_args, make_dataset

    # The loader must leave the global random state (which the package reseeds) as it was.
    np.random.seed(1234)  # noqa: NPY002
    random.seed(99)
    before_np, before_py = np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002
    ds = load_dataset("mnist1d")
    np.testing.assert_array_equal(np.random.get_state()[1], before_np)  # noqa: NPY002
    assert random.getstate() == before_py

    ref = make_dataset(get_dataset_args())
    np.testing.assert_array_equal(ds.x_train, ref["x"].astype(np.float32))
    np.testing.assert_array_equal(ds.x_test, ref["x_test"].astype(np.float32))
    np.testing.assert_array_equal(ds.y_train, ref["y"])
    np.testing.assert_array_equal(ds.y_test, ref["y_test"])
    # Published properties: 4000 / 1000 signals of length 40, 10 classes of 500 samples,
    # the whole set centred with unit standard deviation.
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40)
    labels = np.concatenate([ds.y_train, ds.y_test])
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)
    full = np.concatenate([ref["x"], ref["x_test"]])
    # standardised in float64 over n = 200000 values of size <= ~5: a sum of n terms is
    # within (n - 1) u max|x| of exact, i.e. the mean within ~n u 5 = 1.1e-10 of 0 and the
    # std within about as much of 1; 1e-9 is ~10x that
    assert abs(full.mean()) < 1e-9 and full.std() == pytest.approx(1.0, abs=1e-9)


def test_mnist1d_generator_overrides():
    ds = load_dataset("mnist1d", num_samples=200, generator_seed=7)
    assert ds.x_train.shape == (160, 40) and ds.x_test.shape == (40, 40)
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = 200, 7
    np.testing.assert_array_equal(ds.y_train, make_dataset(args)["y"])
    with pytest.raises(LosslabError, match="unknown mnist1d option"):
        load_dataset("mnist1d", lenght=3)


# --- real Fashion-MNIST (integration; skipped when the files are absent) ------------------

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist(monkeypatch, tmp_path):
    monkeypatch.setenv("LOSSLAB_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ds = load_dataset("fashion_mnist", download=False, dev_fraction=0.1, flatten=True)
    assert ds.x_train.shape == (54000, 784) and ds.x_dev.shape == (6000, 784)
    assert ds.x_test.shape == (10000, 784) and ds.num_classes == 10
    assert ds.metadata["input_shape"] == [28, 28]
    np.testing.assert_array_equal(np.bincount(ds.y_test), [1000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_dev), [600] * 10)
    # Published facts: first test labels (ankle boot, pullover, trouser, ...), and the
    # training pixel mean 0.2860 of the 60000 images.
    np.testing.assert_array_equal(ds.y_test[:10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
    full_mean = (ds.x_train.sum(dtype=np.float64) + ds.x_dev.sum(dtype=np.float64)) / 60000 / 784
    # the published mean has 4 decimals (+-5e-5); the float32 pixels k / 255 add <= u32
    # relative (2e-8) and the float64 sums nothing visible
    assert full_mean == pytest.approx(0.2860, abs=5e-5 + 2e-8)
    assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1
    assert all(f.startswith(str(FASHION_DIR)) for f in ds.metadata["files"])
