"""Splits, standardisation, noise and the load_dataset pipeline (losslab.data)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from losslab.data import DATASETS, Dataset, input_noise, label_noise, load_dataset
from losslab.data.splits import stratified_split
from losslab.errors import LosslabError

# float32 / float64 unit roundoffs
U32, U64 = 2.0**-24, 2.0**-53


def standardized_tol(x, mean, sd):
    """(rtol, atol) between float32 ``(x - m32) / s32`` and float64 ``(x - m) / s``:
    m32 = m (1 + d) shifts by |m| u32 / s; the subtraction, s32 and the division add
    3 u32 relative to the result; 2x margin."""
    return 2 * 3 * U32, 2 * U32 * float(np.max(np.abs(mean) / sd))


def test_losslab_data_does_not_import_torch():
    code = "import sys, losslab.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registry_names():
    assert set(DATASETS) == {
        "checkerboard",
        "spirals",
        "random_labels",
        "digits",
        "mnist1d",
        "mnist",
        "fashion_mnist",
        "cifar10",
        "cifar100",
        "arrays",
    }


# --- stratified split -------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.37, 0.5])
def test_stratified_split_exact_count_and_per_class_share(fraction):
    y = np.repeat(np.arange(5), [7, 13, 20, 1, 59])
    kept, held = stratified_split(y, fraction, 123)
    assert len(held) == round(fraction * len(y))
    assert np.intersect1d(kept, held).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, held])), np.arange(len(y)))
    assert np.all(np.diff(held) > 0) and np.all(np.diff(kept) > 0)
    for c in range(5):
        n_c = np.sum(y == c)
        # by construction each class holds out floor or ceil of its share
        assert abs(np.sum(y[held] == c) - fraction * n_c) < 1.0


def test_stratified_split_is_seeded():
    y = np.arange(200) % 3
    a = stratified_split(y, 0.3, np.random.default_rng(5))[1]
    b = stratified_split(y, 0.3, np.random.default_rng(5))[1]
    c = stratified_split(y, 0.3, np.random.default_rng(6))[1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# --- label noise --------------------------------------------------------------------------


def _reference_matrix(clean, noisy, c):
    m = np.zeros((c, c))
    for a, b in zip(clean.tolist(), noisy.tolist(), strict=True):
        m[a, b] += 1
    for i in range(c):
        m[i] = m[i] / m[i].sum() if m[i].sum() else np.eye(c)[i]
    return m


@pytest.mark.parametrize("kind", ["symmetric", "pairflip"])
@pytest.mark.parametrize(("n", "rate"), [(1000, 0.2), (999, 0.35), (37, 0.5), (10, 0.0), (7, 0.9)])
def test_label_noise_flips_exactly_round_rate_n(kind, n, rate):
    y = np.arange(n) % 4
    noisy, matrix = label_noise(y, rate, kind, np.random.default_rng(0), num_classes=4)
    assert np.sum(noisy != y) == round(rate * n)
    np.testing.assert_array_equal(y, np.arange(n) % 4)  # input untouched
    # integer counts over their exact integer row sum: one correctly rounded division on
    # both sides, equal; a row of 4 such quotients sums to 1 within 7 half-ulps of 1
    np.testing.assert_array_equal(matrix, _reference_matrix(y, noisy, 4))
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=0, atol=8 * U64)
    if kind == "pairflip":
        changed = noisy != y
        np.testing.assert_array_equal(noisy[changed], (y[changed] + 1) % 4)


def test_symmetric_noise_is_uniform_over_other_classes():
    y = np.arange(40000) % 4
    _, matrix = label_noise(y, 0.6, "symmetric", 1, num_classes=4)
    expected = np.full((4, 4), 0.2) + np.eye(4) * 0.2
    # Each of the 10000 samples of class i lands on j with probability expected[i, j];
    # flipping exactly 24000 of 40000 without replacement only lowers the variance, so
    # Binomial(10000, expected[i, j]) is the wider model of each count: its central
    # 1 - 1e-6 / 16 region per entry, failure probability <= 1e-6 for the matrix.
    a = 0.5e-6 / 16
    lo, hi = stats.binom.ppf(a, 10000, expected), stats.binom.ppf(1 - a, 10000, expected)
    counts = np.round(matrix * 10000)
    assert np.all((lo <= counts) & (counts <= hi)), counts


def test_pairflip_matrix_is_exact_shift():
    y = np.repeat(np.arange(3), 100)
    _, matrix = label_noise(y, 0.3, "pairflip", 2, num_classes=3)
    # exactly 90 of the 300 labels flip and every class has 100: the diagonal averages
    # 1 - 90 / 300 = 0.7 exactly, up to the rounding of 3 quotients and their mean
    assert np.diag(matrix).mean() == pytest.approx(0.7, rel=0, abs=8 * U64)
    off = matrix - np.diag(np.diag(matrix))
    for i in range(3):
        # the row's other off-diagonal entry is an exact 0
        assert off[i].sum() == off[i, (i + 1) % 3]


def test_absent_class_gets_identity_row():
    _, matrix = label_noise(np.array([0, 0, 1, 1]), 0.5, "symmetric", 0, num_classes=3)
    np.testing.assert_array_equal(matrix[2], [0, 0, 1])


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, "a"])
def test_label_noise_rate_out_of_range(rate):
    with pytest.raises(LosslabError, match="rate"):
        label_noise(np.array([0, 1]), rate, "symmetric", 0)


def test_label_noise_bad_inputs():
    with pytest.raises(LosslabError, match="kind"):
        label_noise(np.array([0, 1]), 0.1, "sideways", 0)
    with pytest.raises(LosslabError, match="out of range"):
        label_noise(np.array([0, 5]), 0.1, "symmetric", 0, num_classes=3)
    with pytest.raises(LosslabError, match=">= 0"):
        label_noise(np.array([0, -1]), 0.1, "symmetric", 0)


# --- input noise --------------------------------------------------------------------------


def test_input_noise_has_variance_eps():
    x = np.ones((200, 500), dtype=np.float32)
    noisy = input_noise(x, 0.25, np.random.default_rng(3))
    delta = (noisy - x).astype(np.float64)
    assert noisy.dtype == np.float32
    # n = 100000 draws of N(0, 0.25), each off by <= u32 |1 + z| from 1 + z's float32
    # rounding: the mean is N(0, 0.25 / n) (failure probability 1e-6 at 4.89 sd), and
    # n var / 0.25 is chi-square with n - 1 dof (its central 1 - 1e-6 region)
    n = delta.size
    assert abs(delta.mean()) < stats.norm.isf(0.5e-6) * 0.5 / np.sqrt(n) + 4 * U32
    lo, hi = stats.chi2.ppf([0.5e-6, 1 - 0.5e-6], n - 1) * 0.25 / n
    assert lo <= delta.var() <= hi
    np.testing.assert_array_equal(x, 1.0)
    np.testing.assert_array_equal(input_noise(x, 0.0, 0), x)


@pytest.mark.parametrize("eps", [-1.0, float("nan"), float("inf")])
def test_input_noise_bad_eps(eps):
    with pytest.raises(LosslabError, match="eps"):
        input_noise(np.zeros((2, 2)), eps, 0)


# --- the pipeline -------------------------------------------------------------------------


def test_dev_split_and_standardisation_fitted_on_train_only():
    raw = load_dataset("checkerboard", dev_fraction=0.2, seed=4)
    std = load_dataset("checkerboard", dev_fraction=0.2, seed=4, standardize=True)
    assert len(raw.x_train) == 640 and len(raw.x_dev) == 160
    x_tr = raw.x_train.astype(np.float64)
    mean, sd = x_tr.mean(axis=0), x_tr.std(axis=0)
    rtol, atol = standardized_tol(x_tr, mean, sd)
    for split in ("train", "dev", "test"):
        expected = (getattr(raw, f"x_{split}") - mean) / sd
        np.testing.assert_allclose(getattr(std, f"x_{split}"), expected, rtol=rtol, atol=atol)
    np.testing.assert_array_equal(raw.y_dev, std.y_dev)
    assert std.metadata["standardize"]["mode"] == "per_feature"
    # dev holds out a stratified share: every class within 1 of 20 %.
    full = load_dataset("checkerboard", seed=4)
    for c in range(4):
        n_c = np.sum(full.y_train == c)
        # floor or ceil of the class's share, by construction
        assert abs(np.sum(raw.y_dev == c) - 0.2 * n_c) < 1


def test_grey_images_standardised_with_one_mean_and_flattened():
    raw = load_dataset("digits", seed=1)
    std = load_dataset("digits", seed=1, standardize=True, flatten=True)
    mean, sd = raw.x_train.astype(np.float64).mean(), raw.x_train.astype(np.float64).std()
    assert std.x_train.shape == (len(raw.x_train), 64) and std.input_shape == (64,)
    rtol, atol = standardized_tol(raw.x_train, mean, sd)
    np.testing.assert_allclose(
        std.x_test, ((raw.x_test - mean) / sd).reshape(-1, 64), rtol=rtol, atol=atol
    )
    assert std.metadata["standardize"]["mode"] == "global"


def test_noise_applies_to_train_only_and_is_recorded():
    clean = load_dataset("spirals", dev_fraction=0.25, seed=2)
    noisy = load_dataset(
        "spirals", dev_fraction=0.25, seed=2, label_noise_rate=0.3, input_noise_eps=0.01
    )
    assert np.sum(noisy.y_train != clean.y_train) == round(0.3 * 600)
    np.testing.assert_array_equal(noisy.y_dev, clean.y_dev)
    np.testing.assert_array_equal(noisy.y_test, clean.y_test)
    np.testing.assert_array_equal(noisy.x_test, clean.x_test)
    np.testing.assert_array_equal(noisy.x_dev, clean.x_dev)
    assert not np.array_equal(noisy.x_train, clean.x_train)
    record = noisy.metadata["label_noise"]
    assert record["rate"] == 0.3 and record["kind"] == "symmetric"
    assert record["sets"]["train"]["flipped"] == 180
    np.testing.assert_allclose(
        record["sets"]["train"]["matrix"], _reference_matrix(clean.y_train, noisy.y_train, 4)
    )
    assert noisy.metadata["input_noise"]["eps"] == 0.01
    assert clean.metadata["label_noise"] is None and clean.metadata["input_noise"] is None


def test_noise_test_option_noises_held_out_sets_too():
    clean = load_dataset("checkerboard", dev_fraction=0.25, seed=3)
    noisy = load_dataset(
        "checkerboard",
        dev_fraction=0.25,
        seed=3,
        label_noise_rate=0.1,
        label_noise_kind="pairflip",
        noise_test=True,
    )
    for split, n in (("train", 600), ("dev", 200), ("test", 800)):
        diff = getattr(noisy, f"y_{split}") != getattr(clean, f"y_{split}")
        assert diff.sum() == round(0.1 * n)
    # Train noise does not depend on whether the held-out sets are noised too.
    train_only = load_dataset(
        "checkerboard", dev_fraction=0.25, seed=3, label_noise_rate=0.1, label_noise_kind="pairflip"
    )
    np.testing.assert_array_equal(train_only.y_train, noisy.y_train)


def test_same_seed_same_data_other_seed_other_data():
    a = load_dataset("random_labels", seed=11, dev_fraction=0.1, label_noise_rate=0.1)
    b = load_dataset("random_labels", seed=11, dev_fraction=0.1, label_noise_rate=0.1)
    c = load_dataset("random_labels", seed=12, dev_fraction=0.1, label_noise_rate=0.1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_train, c.x_train)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"label_noise_rate": 1.0}, "label_noise_rate"),
        ({"label_noise_rate": -0.2}, "label_noise_rate"),
        ({"label_noise_kind": "other"}, "label_noise_kind"),
        ({"dev_fraction": 1.0}, "dev_fraction"),
        ({"input_noise_eps": -1}, "eps"),
        ({"seed": -3}, "seed"),
        ({"n_trian": 5}, "n_train"),
    ],
)
def test_bad_options_raise(kwargs, match):
    with pytest.raises(LosslabError, match=match):
        load_dataset("checkerboard", **kwargs)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(LosslabError, match="checkerboard.*cifar10"):
        load_dataset("imagenet")


def test_registering_a_new_source():
    def load_tiny(root, rng, *, n=12):
        x = rng.normal(size=(n, 3))
        y = np.arange(n) % 3
        return Dataset(x, y, None, None, x[:6], y[:6], 3, ["a", "b", "c"], name="tiny")

    DATASETS["tiny"] = load_tiny
    try:
        ds = load_dataset("tiny", n=30, dev_fraction=0.2, seed=1)
    finally:
        del DATASETS["tiny"]
    assert (len(ds.x_train), len(ds.x_dev), len(ds.x_test)) == (24, 6, 6)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.metadata["options"] == {"n": 30}


def test_loader_output_is_validated():
    def load_bad(root, rng):
        x = np.zeros((4, 2))
        x[1, 1] = np.nan
        return Dataset(x, np.zeros(4, int), None, None, x, np.zeros(4, int), 2, ["a", "b"])

    DATASETS["bad"] = load_bad
    try:
        with pytest.raises(LosslabError, match="NaN"):
            load_dataset("bad")
    finally:
        del DATASETS["bad"]


def test_a_source_supplied_dev_split_is_validated_and_kept():
    def load_with_dev(root, rng, bad=False):
        x = rng.normal(size=(8, 2))
        y = np.arange(8) % 2
        y_dev = np.array([0, 1, 2]) if bad else np.array([0, 1, 1])
        return Dataset(x, y, x[:3], y_dev, x[:4], y[:4], 2, ["a", "b"])

    DATASETS["with_dev"] = load_with_dev
    try:
        ds = load_dataset("with_dev", standardize=True)
        assert len(ds.x_dev) == 3 and ds.y_dev.dtype == np.int64
        # each float32 value is within u32 (|m| / s + 3 |e|) of the exact e, whose mean is 0
        # and mean |e| <= 1; the float64 mean adds nothing visible
        raw = load_dataset("with_dev").x_train.astype(np.float64)
        tol = 2 * U32 * (np.abs(raw.mean(axis=0)) / raw.std(axis=0) + 3)
        assert np.all(np.abs(ds.x_train.mean(axis=0, dtype=np.float64)) <= tol)
        with pytest.raises(LosslabError, match="y_dev"):
            load_dataset("with_dev", bad=True)
        with pytest.raises(LosslabError, match="already comes with a dev split"):
            load_dataset("with_dev", dev_fraction=0.2)
    finally:
        del DATASETS["with_dev"]
