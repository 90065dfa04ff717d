"""Label noise at an exact rate and Gaussian input noise (seed: Janocha & Czarnecki 2017, sec. 3).

Janocha & Czarnecki test robustness by changing a fraction of the training labels and by
adding noise drawn from N(0, eps I) to every input; both are reproduced here with the
randomness passed in.
"""

from __future__ import annotations

import numpy as np

from losslab.checks import check_real
from losslab.data.dataset import as_labels
from losslab.errors import LosslabError
from losslab.seeding import as_rng

LABEL_NOISE_KINDS = ("symmetric", "pairflip")


def label_noise(
    y: np.ndarray,
    rate: float,
    kind: str = "symmetric",
    rng: np.random.Generator | int = 0,
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(rate * N)`` labels and return the realised transition matrix.

    The flipped samples are a uniformly drawn subset of size ``K = round(rate * N)``
    (Python's ``round``: halves go to the even integer). Each flipped label changes:

    * ``"symmetric"``: to a class drawn uniformly from the C - 1 other classes,
    * ``"pairflip"``: ``c -> (c + 1) mod C``.

    The realised noise matrix is ``T[i, j] = #{y = i, y_noisy = j} / #{y = i}``
    (row-stochastic); a class absent from ``y`` gets the identity row ``T[i, i] = 1``.

    Args:
        y: int labels ``(N,)`` in ``[0, C)``.
        rate: fraction of labels to change, in ``[0, 1)``.
        kind: ``"symmetric"`` (default) or ``"pairflip"``.
        rng: NumPy Generator or integer seed (default 0).
        num_classes: C; default ``max(y) + 1``.

    Returns:
        ``(y_noisy (N,) int64, T (C, C) float64)``; ``y`` itself is not modified.
    """
    if kind not in LABEL_NOISE_KINDS:
        raise LosslabError(
            f"unknown label noise kind {kind!r}; choose one of {', '.join(LABEL_NOISE_KINDS)}"
        )
    rate = check_real("label noise rate", rate, 0.0, 1.0, high_open=True)
    labels = as_labels(y, num_classes, "label_noise")
    c = int(num_classes) if num_classes is not None else int(labels.max(initial=0)) + 1
    if c < 2 and rate > 0:
        raise LosslabError("label noise needs at least 2 classes; pass num_classes=")
    gen = as_rng(rng)
    n = len(labels)
    flipped = gen.choice(n, size=int(round(rate * n)), replace=False)
    noisy = labels.copy()
    if kind == "symmetric":
        # An offset in 1..C-1 lands uniformly on each of the C - 1 other classes.
        noisy[flipped] = (labels[flipped] + gen.integers(1, c, size=len(flipped))) % c
    else:
        noisy[flipped] = (labels[flipped] + 1) % c
    counts = np.zeros((c, c), dtype=np.float64)
    np.add.at(counts, (labels, noisy), 1.0)
    rows = counts.sum(axis=1, keepdims=True)
    matrix = np.where(rows > 0, counts / np.maximum(rows, 1.0), np.eye(c))
    return noisy, matrix


def input_noise(x: np.ndarray, eps: float, rng: np.random.Generator | int = 0) -> np.ndarray:
    """Add Gaussian noise N(0, eps I) to every sample: ``x + sqrt(eps) * z``, z ~ N(0, I).

    ``eps`` is the **variance** of the noise (Janocha's N(0, eps I)), so its standard
    deviation is ``sqrt(eps)``. It is added in the units of the features as loaded, i.e.
    after standardisation when ``standardize=True``.

    Args:
        x: features ``(N, ...)``.
        eps: noise variance, ``>= 0`` (0 returns an unchanged float32 copy).
        rng: NumPy Generator or integer seed (default 0).

    Returns:
        float32 array of the shape of ``x``; ``x`` itself is not modified.
    """
    eps = check_real("input noise eps", eps, 0.0)
    x = np.asarray(x, dtype=np.float32)
    if eps == 0:
        return x.copy()
    gen = as_rng(rng)
    noise = gen.standard_normal(x.shape, dtype=np.float32)
    noise *= np.float32(np.sqrt(eps))
    return x + noise
