"""scikit-learn's bundled 8x8 digits (UCI optical digits test set), split 75/25 stratified."""

from __future__ import annotations

import os

import numpy as np

from losslab.checks import check_real
from losslab.data.dataset import Dataset
from losslab.data.splits import stratified_split


def load_digits(
    root: str | os.PathLike | None, rng: np.random.Generator, *, test_fraction: float = 0.25
) -> Dataset:
    """The 1797 8x8 grey digit images bundled with scikit-learn (no download), 10 classes.

    Images are ``(N, 8, 8)`` with the original 0..16 intensities scaled to [0, 1]. The
    train/test split is stratified (see :func:`~losslab.data.splits.stratified_split`)
    and drawn from ``rng``, so each ``seed`` gives another split; with the default
    ``test_fraction=0.25`` that is 1348 train / 449 test.

    Args:
        test_fraction: share of the samples held out for test, in (0, 1) (default 0.25).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    fraction = check_real("test_fraction", test_fraction, 0.0, 1.0, high_open=True)
    bunch = sklearn_digits()
    images = bunch.images.astype(np.float32) / 16.0
    labels = bunch.target.astype(np.int64)
    train, test = stratified_split(labels, fraction, rng)
    return Dataset.loaded(
        "digits",
        (images[train], labels[train]),
        (images[test], labels[test]),
        10,
        metadata={
            "source": "scikit-learn load_digits (bundled copy of the UCI optical digits)",
            "scaling": "intensity / 16, in [0, 1]",
            "test_fraction": fraction,
            "split": "stratified, drawn from the 'data_source' stream of seed",
        },
    )
