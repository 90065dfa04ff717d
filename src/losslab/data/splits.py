"""Stratified splits and train-fitted standardisation (lecture notes: train/dev/test).

The random choices of the data layer draw from the named streams of
:mod:`losslab.seeding` (``"data_source"``, ``"data_split"``, ``"label_noise"``,
``"input_noise"``), so turning on label noise never changes the dev split and vice versa.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from losslab.checks import check_real
from losslab.errors import LosslabError
from losslab.seeding import as_rng


def stratified_split(
    y: np.ndarray, fraction: float, rng: np.random.Generator | int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so each class keeps its share: ``(kept, held)``, both sorted.

    Exactly ``round(fraction * N)`` indices are held out. Class c receives
    ``floor(fraction * n_c)`` of them plus, by largest remainder (ties broken at random),
    one more, so every class's held count is within 1 of ``fraction * n_c``. Within a
    class the held samples are drawn uniformly without replacement. Indices are returned
    in their original order, so sequence-ordered protocols (MNIST-1D batches taken in
    order) keep their order.

    Args:
        y: int labels ``(N,)``.
        fraction: share held out, in ``[0, 1)``.
        rng: NumPy Generator or integer seed.

    Returns:
        ``kept (N - K,)`` and ``held (K,)`` int64 index arrays, ``K = round(fraction * N)``.
    """
    fraction = check_real("split fraction", fraction, 0.0, 1.0, high_open=True)
    gen = as_rng(rng)
    y = np.asarray(y)
    n = len(y)
    n_held = int(round(fraction * n))
    classes, counts = np.unique(y, return_counts=True)
    exact = fraction * counts
    per_class = np.floor(exact).astype(np.int64)
    short = n_held - int(per_class.sum())
    if short > 0:
        # Largest remainder first; the random key breaks ties without favouring low labels.
        order = np.lexsort((gen.random(len(classes)), -(exact - per_class)))
        per_class[order[:short]] += 1
    held = []
    for c, k in zip(classes, per_class, strict=True):
        members = np.flatnonzero(y == c)
        held.append(gen.choice(members, size=int(k), replace=False))
    held_idx = np.sort(np.concatenate(held)) if held else np.empty(0, np.int64)
    mask = np.ones(n, dtype=bool)
    mask[held_idx] = False
    return np.flatnonzero(mask).astype(np.int64), held_idx.astype(np.int64)


def fit_standardizer(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Mean and std fitted on the training features only.

    The statistics are per feature for vectors ``(N, D)``, one pair for grey images
    ``(N, H, W)`` and per channel for colour images ``(N, C, H, W)``, so images keep
    their spatial structure. A std below 1e-8 (a constant feature, e.g. MNIST's border
    pixels) is replaced by 1, which maps the feature to 0 instead of dividing by 0.

    Returns:
        ``(mean, std, mode)``: arrays broadcastable against ``(N, ...)`` and the mode name
        ``"per_feature"``, ``"global"`` or ``"per_channel"``.
    """
    x = x_train
    axes: tuple[int, ...]
    if x.ndim == 2:
        axes, mode = (0,), "per_feature"
    elif x.ndim == 3:
        axes, mode = (0, 1, 2), "global"
    elif x.ndim == 4:
        axes, mode = (0, 2, 3), "per_channel"
    else:
        raise LosslabError(f"cannot standardise features of shape {x_train.shape}")
    # float64 accumulators: a float32 sum over 50000 images loses digits.
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = x.std(axis=axes, keepdims=True, dtype=np.float64)
    std = np.where(std < 1e-8, 1.0, std)
    return mean[0].astype(np.float32), std[0].astype(np.float32), mode


def apply_standardizer(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` in float32; shapes as returned by :func:`fit_standardizer`."""
    return ((x - mean) / std).astype(np.float32)


def standardizer_metadata(mean: np.ndarray, std: np.ndarray, mode: str) -> dict[str, Any]:
    """A JSON-friendly record of the fitted statistics (to apply them to new data)."""
    return {
        "mode": mode,
        "fitted_on": "train",
        "mean": np.squeeze(mean).tolist(),
        "std": np.squeeze(std).tolist(),
    }
