"""Metrics of classifiers and of training runs.

* :mod:`~losslab.metrics.classification`: accuracy, top-k, close-enough ``acc_at``,
  super-class accuracy, classification confidence ``delta X`` and ``#W_eta``, and the
  probability histograms (Berlyand, Creese & Jabin 2021, sections 2 and 3.1).
* :mod:`~losslab.metrics.curves`: speed of learning and the input-noise robustness curve
  (Janocha & Czarnecki 2017, section 3).
* :mod:`~losslab.metrics.diagnosis`: bias / variance diagnosis (lecture notes 2018, 6.2).
* :mod:`~losslab.metrics.measurements`: what the training engine measures during a run
  (``MEASUREMENTS``, ``get_measurement``); imported on demand.
* :mod:`~losslab.metrics.stats`: statistics over seeds of a study's cells (t intervals
  kept in the metric's range, paired t-tests with Holm's correction within each
  condition, ranks); needs pandas, imported on demand.

:data:`METRICS` holds the scalar metrics of ``(scores, labels)``; :func:`get_metric`
binds their keyword arguments, e.g. ``get_metric("top_k_accuracy", k=5)(logits, y)``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from losslab.errors import LosslabError
from losslab.metrics.classification import (
    Histogram,
    acc_at,
    accuracy,
    classification_confidence,
    correct_class_probability,
    correct_class_probability_histogram,
    count_w_eta,
    max_probability,
    max_probability_histogram,
    probability_gap,
    probability_gap_histogram,
    superclass_accuracy,
    top_k_accuracy,
)
from losslab.metrics.curves import noise_robustness_curve, speed_of_learning
from losslab.metrics.diagnosis import (
    BiasVarianceDiagnosis,
    bias_variance_diagnosis,
    reachable_accuracy,
)
from losslab.registry import lookup

__all__ = [
    "METRICS",
    "BiasVarianceDiagnosis",
    "Histogram",
    "acc_at",
    "accuracy",
    "bias_variance_diagnosis",
    "classification_confidence",
    "correct_class_probability",
    "correct_class_probability_histogram",
    "count_w_eta",
    "get_metric",
    "max_probability",
    "max_probability_histogram",
    "noise_robustness_curve",
    "probability_gap",
    "probability_gap_histogram",
    "reachable_accuracy",
    "speed_of_learning",
    "superclass_accuracy",
    "top_k_accuracy",
]

#: Scalar metric name -> function ``f(scores (N, C), labels (N,), **kwargs)``.
METRICS: dict[str, Callable[..., float | int]] = {
    "accuracy": accuracy,
    "top_k_accuracy": top_k_accuracy,
    "acc_at": acc_at,
    "superclass_accuracy": superclass_accuracy,
    "count_w_eta": count_w_eta,
}


def get_metric(name: str, **kwargs: Any) -> Callable[[Any, Any], float | int]:
    """The metric ``name`` of :data:`METRICS` with ``kwargs`` bound: ``f(scores, labels)``.

    Unknown names and keywords raise :class:`LosslabError` listing the valid ones.

    Example:
        >>> top5 = get_metric("top_k_accuracy", k=5)
    """
    metric = lookup(METRICS, name, "metric")
    try:
        inspect.signature(metric).bind(None, None, **kwargs)
    except TypeError as err:
        accepted = ", ".join(list(inspect.signature(metric).parameters)[2:]) or "no options"
        raise LosslabError(
            f"bad arguments for metric {name!r}: {err}. It accepts: {accepted}"
        ) from None
    return functools.partial(metric, **kwargs)
