"""Per-prediction metrics of a classifier: accuracy and the finer measures of Berlyand et al.

Seed: Berlyand, Creese & Jabin 2021, section 2 (classification confidence ``delta X`` and
the well-classified sets ``W_eta``, eq. 11) and section 3.1 (top-k, close-enough ``acc_at``,
super-class accuracy eq. 20, histograms of max / correct-class probabilities and of
``delta p`` eq. 19).

Inputs: ``scores`` of shape (N, C), logits or probabilities (torch tensors, NumPy arrays
or lists), and integer ``labels`` of shape (N,) in ``[0, C)``. Results are Python floats
/ ints or NumPy arrays; the inputs are never modified and no autograd graph is built.

Ties. The predicted class is the first index of the largest score (``argmax``, as NumPy
and PyTorch), and classes are ranked by descending score with ties broken by index, so
``top_k_accuracy(k=1) == accuracy`` always. The paper's ``#W_0 / N`` (eq. 11) counts a
tie for the top as wrong instead; it equals :func:`accuracy` whenever no such tie occurs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from losslab.errors import LosslabError
from losslab.metrics._inputs import (
    as_scores,
    positive_int,
    probabilities,
    real,
    scores_and_labels,
    to_numpy,
)

__all__ = [
    "Histogram",
    "acc_at",
    "accuracy",
    "classification_confidence",
    "correct_class_probability",
    "correct_class_probability_histogram",
    "count_w_eta",
    "max_probability",
    "max_probability_histogram",
    "probability_gap",
    "probability_gap_histogram",
    "superclass_accuracy",
    "top_k_accuracy",
]


class Histogram(NamedTuple):
    """Counts and bin edges, exactly as returned by ``numpy.histogram``.

    Attributes:
        counts: (B,) int64 number of samples per bin.
        edges: (B + 1,) float64 bin edges; the last bin includes its right edge.
    """

    counts: np.ndarray
    edges: np.ndarray


def accuracy(scores: Any, labels: Any) -> float:
    """Fraction of samples whose largest score is the correct class.

    .. math:: \\mathrm{acc} = \\frac{1}{N} \\#\\{s : \\arg\\max_i z_i(s) = c(s)\\}

    Seed: Berlyand et al. eq. 11 (``#W_0 / #T``, see the module note on ties).

    Args:
        scores: (N, C) logits or probabilities (softmax does not change the argmax).
        labels: (N,) integer class indices in ``[0, C)``.

    Returns:
        A float in [0, 1].
    """
    s, y = scores_and_labels(scores, labels)
    return float(np.mean(s.argmax(axis=1) == y))


def _rank_of_correct_class(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) 0-based rank of the correct class; ties go to the lower class index."""
    correct = s[np.arange(len(y)), y][:, None]
    lower_index = np.arange(s.shape[1])[None, :] < y[:, None]
    return (s > correct).sum(axis=1) + ((s == correct) & lower_index).sum(axis=1)


def top_k_accuracy(scores: Any, labels: Any, k: int = 5) -> float:
    """Fraction of samples whose correct class is among the ``k`` largest scores.

    .. math:: \\mathrm{acc}_{top\\text{-}k} = \\frac{1}{N}
        \\#\\{s : p_{c(s)} \\text{ is one of the } k \\text{ largest probabilities}\\}

    Seed: Berlyand et al. section 3.1. Ties in score are ranked by class index.

    Args:
        scores: (N, C) logits or probabilities.
        labels: (N,) integer class indices in ``[0, C)``.
        k: how many top classes count, 1 <= k <= C (default 5).

    Returns:
        A float in [0, 1]; ``k = 1`` gives :func:`accuracy`, ``k = C`` gives 1.
    """
    s, y = scores_and_labels(scores, labels)
    k = positive_int(k, "top_k_accuracy: k")
    if k > s.shape[1]:
        raise LosslabError(
            f"top_k_accuracy: k = {k} exceeds the number of classes C = {s.shape[1]}"
        )
    return float(np.mean(_rank_of_correct_class(s, y) < k))


def acc_at(scores: Any, labels: Any, at: float = 0.01, from_logits: bool = True) -> float:
    """Close-enough accuracy: the correct-class probability is within ``at`` of the largest.

    .. math:: \\mathrm{acc}_{at} = \\frac{1}{N} \\#\\{s : p_{c(s)} \\ge \\max_i p_i - at\\}

    Seed: Berlyand et al. section 3.1. An untrained network with nearly equal
    probabilities scores high here, so read it next to :func:`accuracy`. With ``at = 0``
    a tie for the largest probability counts as correct.

    Args:
        scores: (N, C) logits (``from_logits=True``, softmax applied) or probabilities.
        labels: (N,) integer class indices in ``[0, C)``.
        at: tolerance in probability, in [0, 1] (default 0.01; the paper uses 0 - 0.05).
        from_logits: whether ``scores`` are logits (default True).

    Returns:
        A float in [0, 1].
    """
    s, y = scores_and_labels(scores, labels)
    at = real(at, "acc_at: at", low=0.0, high=1.0)
    p = probabilities(s, from_logits)
    return float(np.mean(p[np.arange(len(y)), y] >= p.max(axis=1) - at))


def superclass_accuracy(scores: Any, labels: Any, coarse_map: Any) -> float:
    """Fraction of samples whose predicted class lies in the correct class's super-class.

    .. math:: \\mathrm{acc}_{super} = \\frac{1}{N}
        \\#\\{s : g(\\arg\\max_i p_i) = g(c(s))\\}

    with ``g`` the fine -> coarse map (CIFAR-100: 100 classes in 20 super-classes of 5).
    Seed: Berlyand et al. eq. 20.

    Args:
        scores: (N, C) logits or probabilities over the fine classes.
        labels: (N,) fine class indices in ``[0, C)``.
        coarse_map: (C,) integers >= 0, the super-class of each fine class.

    Returns:
        A float in [0, 1], at least :func:`accuracy`.
    """
    s, y = scores_and_labels(scores, labels)
    g = to_numpy(coarse_map, "coarse_map")
    if g.shape != (s.shape[1],):
        raise LosslabError(
            f"coarse_map must have shape (C,) = ({s.shape[1]},), one super-class per fine "
            f"class, got shape {g.shape}"
        )
    if g.dtype == bool or not np.issubdtype(g.dtype, np.integer) or (g < 0).any():
        raise LosslabError("coarse_map must hold integer super-class indices >= 0")
    return float(np.mean(g[s.argmax(axis=1)] == g[y]))


def classification_confidence(logits: Any, labels: Any) -> np.ndarray:
    """Per-sample classification confidence on the raw logits.

    .. math:: \\delta X(s) = z_{c(s)}(s) - \\max_{i \\ne c(s)} z_i(s)

    Positive means correctly classified with a margin. Seed: Berlyand et al. section 2
    (the definition above eq. 11). Log-probabilities of a softmax give the same values,
    since ``log softmax`` shifts every logit of a row by the same amount.

    Args:
        logits: (N, C) raw logits ``z``.
        labels: (N,) integer class indices in ``[0, C)``.

    Returns:
        (N,) float64 array.
    """
    z, y = scores_and_labels(logits, labels)
    rows = np.arange(len(y))
    others = z.copy()
    others[rows, y] = -np.inf
    return z[rows, y] - others.max(axis=1)


def count_w_eta(logits: Any, labels: Any, eta: float = 0.0) -> int:
    """Size of the set of samples well classified with confidence ``eta``.

    .. math:: \\#W_\\eta = \\#\\{s : \\delta X(s) > \\eta\\}

    Seed: Berlyand et al. section 2; ``#W_0 / N`` is the accuracy (eq. 11). How fast
    ``#W_eta`` falls as ``eta`` grows tells how many samples are barely classified.

    Args:
        logits: (N, C) raw logits.
        labels: (N,) integer class indices in ``[0, C)``.
        eta: confidence threshold, a finite real (default 0; the paper uses eta >= 0).

    Returns:
        An int in ``[0, N]``.
    """
    eta = real(eta, "count_w_eta: eta")
    return int(np.sum(classification_confidence(logits, labels) > eta))


def max_probability(scores: Any, from_logits: bool = True) -> np.ndarray:
    """(N,) largest class probability of each sample, ``max_i p_i`` (Berlyand et al. Fig. 4).

    Args:
        scores: (N, C) logits (``from_logits=True``) or probabilities.
        from_logits: whether ``scores`` are logits (default True).
    """
    return probabilities(as_scores(scores), from_logits).max(axis=1)


def correct_class_probability(scores: Any, labels: Any, from_logits: bool = True) -> np.ndarray:
    """(N,) probability of the correct class, ``p_c`` (Berlyand et al. Fig. 5).

    Args:
        scores: (N, C) logits (``from_logits=True``) or probabilities.
        labels: (N,) integer class indices in ``[0, C)``.
        from_logits: whether ``scores`` are logits (default True).
    """
    s, y = scores_and_labels(scores, labels)
    return probabilities(s, from_logits)[np.arange(len(y)), y]


def probability_gap(scores: Any, labels: Any, from_logits: bool = True) -> np.ndarray:
    """(N,) probability confidence ``delta p = p_c - max_i p_i`` (<= 0), every sample.

    Seed: Berlyand et al. eq. 19; their Fig. 6 histograms it over misclassified samples
    (:func:`probability_gap_histogram`).

    Args:
        scores: (N, C) logits (``from_logits=True``) or probabilities.
        labels: (N,) integer class indices in ``[0, C)``.
        from_logits: whether ``scores`` are logits (default True).
    """
    s, y = scores_and_labels(scores, labels)
    p = probabilities(s, from_logits)
    return p[np.arange(len(y)), y] - p.max(axis=1)


def _histogram(values: np.ndarray, bins: Any, value_range: tuple[float, float]) -> Histogram:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        counts, edges = np.histogram(values, bins=positive_int(bins, "bins"), range=value_range)
    else:
        edges = to_numpy(bins, "bins").astype(np.float64)
        if edges.ndim != 1 or edges.size < 2 or not (np.diff(edges) > 0).all():
            raise LosslabError(
                "bins must be an integer >= 1 or an increasing 1-D array of at least 2 edges"
            )
        counts, edges = np.histogram(values, bins=edges)
    return Histogram(counts.astype(np.int64), edges.astype(np.float64))


def max_probability_histogram(scores: Any, bins: Any = 20, from_logits: bool = True) -> Histogram:
    """Histogram of :func:`max_probability` over all samples (Berlyand et al. Fig. 4).

    Args:
        scores: (N, C) logits (``from_logits=True``) or probabilities.
        bins: number of equal bins on [0, 1] (default 20), or an increasing array of edges.
        from_logits: whether ``scores`` are logits (default True).

    Returns:
        :class:`Histogram` ``(counts (B,), edges (B + 1,))``.
    """
    return _histogram(max_probability(scores, from_logits), bins, (0.0, 1.0))


def correct_class_probability_histogram(
    scores: Any, labels: Any, bins: Any = 20, from_logits: bool = True
) -> Histogram:
    """Histogram of :func:`correct_class_probability` over all samples (Berlyand Fig. 5).

    Args:
        scores: (N, C) logits (``from_logits=True``) or probabilities.
        labels: (N,) integer class indices in ``[0, C)``.
        bins: number of equal bins on [0, 1] (default 20), or an increasing array of edges.
        from_logits: whether ``scores`` are logits (default True).

    Returns:
        :class:`Histogram` ``(counts (B,), edges (B + 1,))``.
    """
    return _histogram(correct_class_probability(scores, labels, from_logits), bins, (0.0, 1.0))


def probability_gap_histogram(
    scores: Any, labels: Any, bins: Any = 20, from_logits: bool = True
) -> Histogram:
    """Histogram of ``delta p = p_c - max p`` over the misclassified samples only.

    Seed: Berlyand et al. eq. 19 and Fig. 6: a two-scale network misclassifies by small
    gaps (mass near 0), a single-scale one by large gaps (mass near -1). Misclassified
    means ``argmax != label``, as in :func:`accuracy`; with no misclassified sample every
    count is 0.

    Args:
        scores: (N, C) logits (``from_logits=True``) or probabilities.
        labels: (N,) integer class indices in ``[0, C)``.
        bins: number of equal bins on [-1, 0] (default 20), or an increasing array of edges.
        from_logits: whether ``scores`` are logits (default True).

    Returns:
        :class:`Histogram` ``(counts (B,), edges (B + 1,))``; ``counts.sum()`` is the
        number of misclassified samples.
    """
    s, y = scores_and_labels(scores, labels)
    wrong = s.argmax(axis=1) != y
    return _histogram(probability_gap(s, y, from_logits)[wrong], bins, (-1.0, 0.0))
