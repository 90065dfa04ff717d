"""Validation and conversion of the arrays the metrics accept.

Every metric takes torch tensors, NumPy arrays or nested lists and works on float64 /
int64 NumPy copies, so a metric never changes its caller's tensors and never builds an
autograd graph. All checks raise :class:`LosslabError` saying what to change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import special

from losslab.errors import LosslabError


def to_numpy(values: Any, what: str) -> np.ndarray:
    """``values`` (tensor, array or list) as a NumPy array, detached and on the CPU."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        # NumPy has no bfloat16; float64 is what the metrics compute in anyway
        if values.is_floating_point() and values.dtype not in (torch.float32, torch.float64):
            values = values.double()
        return values.numpy()
    try:
        return np.asarray(values)
    except (TypeError, ValueError) as err:
        raise LosslabError(
            f"{what} must be an array or tensor, got {type(values).__name__}"
        ) from err


def as_scores(scores: Any, what: str = "scores") -> np.ndarray:
    """Scores (logits or probabilities) as a finite float64 array of shape (N, C), C >= 2."""
    array = to_numpy(scores, what)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise LosslabError(f"{what} must be numeric, got dtype {array.dtype}")
    if array.ndim != 2:
        raise LosslabError(
            f"{what} must have shape (N, C) (one row of C class scores per sample), got "
            f"shape {array.shape}; reshape a single sample with [None]"
        )
    n, c = array.shape
    if n == 0:
        raise LosslabError(f"{what} is empty (N = 0): a metric needs at least one sample")
    if c < 2:
        raise LosslabError(f"{what} needs C >= 2 classes, got shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise LosslabError(
            f"{what} contain NaN or infinite values ({int((~np.isfinite(array)).sum())} "
            "entries); check the model for divergence before measuring it"
        )
    return array


def as_labels(
    labels: Any, num_samples: int, num_classes: int | None, what: str = "labels"
) -> np.ndarray:
    """Integer class indices as an int64 array of shape (N,), each in ``[0, C)``.

    ``num_classes=None`` checks only ``>= 0`` (C not known yet).
    """
    array = to_numpy(labels, what)
    if array.ndim != 1:
        hint = "; pass class indices, e.g. onehot.argmax(1)" if array.ndim == 2 else ""
        raise LosslabError(f"{what} must have shape (N,), got shape {array.shape}{hint}")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise LosslabError(
            f"{what} must be integer class indices, got dtype {array.dtype}; convert with "
            ".long() (torch) or .astype(int) (NumPy)"
        )
    if array.shape[0] != num_samples:
        raise LosslabError(
            f"{what} has {array.shape[0]} entries but there are N = {num_samples} samples; "
            "pass one label per sample"
        )
    bad = array < 0 if num_classes is None else (array < 0) | (array >= num_classes)
    if bad.any():
        upper = "" if num_classes is None else f" for C = {num_classes} score columns"
        raise LosslabError(
            f"{what} out of range: {int(bad.sum())} labels outside "
            f"[0, {num_classes if num_classes is not None else 'C'}) "
            f"(e.g. {int(array[bad][0])}){upper}"
        )
    return array.astype(np.int64)


def scores_and_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated (N, C) float64 scores and (N,) int64 labels."""
    s = as_scores(scores)
    return s, as_labels(labels, s.shape[0], s.shape[1])


def probabilities(scores: np.ndarray, from_logits: bool) -> np.ndarray:
    """(N, C) class probabilities: ``softmax(scores)`` from logits, else checked in [0, 1]."""
    if not isinstance(from_logits, bool):
        raise LosslabError(f"from_logits must be True or False, got {from_logits!r}")
    if from_logits:
        return special.softmax(scores, axis=1)
    if (scores < 0).any() or (scores > 1).any():
        raise LosslabError(
            "probabilities must lie in [0, 1]; pass from_logits=True if these are logits"
        )
    return scores


def real(value: Any, what: str, *, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a finite float in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LosslabError(f"{what} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise LosslabError(f"{what} must be finite, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise LosslabError(f"{what} must lie in [{low}, {high}], got {value}")
    return value


def positive_int(value: Any, what: str) -> int:
    """``value`` as an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise LosslabError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)
