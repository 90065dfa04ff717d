"""Metrics of a whole training run: speed of learning and input-noise robustness.

Seed: Janocha & Czarnecki 2017, section 3: "speed of learning expressed as expected
training/testing accuracy when we sample iteration uniformly between 10k and 100k"
(Fig. 3), and the input-noise experiment, "we add noise sampled from N(0, eps I) to each
x_i and observe how quickly (in terms of growing eps) network's training accuracy drops"
(Fig. 4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from losslab.errors import LosslabError
from losslab.metrics._inputs import as_labels, as_scores, positive_int, real, to_numpy
from losslab.seeding import as_rng

__all__ = ["noise_robustness_curve", "speed_of_learning"]


def speed_of_learning(
    steps: Any,
    accuracies: Any,
    window: tuple[int, int] = (10_000, 100_000),
    n_draws: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> float | np.ndarray:
    """Expected accuracy at an iteration drawn uniformly from a window of the run.

    .. math:: \\mathrm{SoL} = \\mathbb{E}_{t \\sim U\\{lo, \\dots, hi\\}}\\, a(t)
        = \\frac{1}{hi - lo + 1} \\sum_{t = lo}^{hi} a(t)

    where ``a(t)`` is the learning curve linearly interpolated between its recorded
    steps. A loss that learns fast scores high; two runs that end at the same accuracy
    are told apart by how early they got there. Seed: Janocha & Czarnecki section 3,
    Fig. 3 (window 10k - 100k of 100k iterations).

    By default the mean is exact (the sum above, deterministic). With ``n_draws`` it is
    the paper's Monte-Carlo estimate: the mean of ``a`` at ``n_draws`` iterations drawn
    uniformly (with replacement) from ``{lo, ..., hi}`` by ``rng``; its expectation is
    the exact value.

    Args:
        steps: (T,) strictly increasing iteration numbers at which accuracy was recorded.
        accuracies: (T,) one curve, or (M, T) curves of M runs, values in [0, 1].
        window: ``(lo, hi)`` integer iterations, ``steps[0] <= lo <= hi <= steps[-1]``
            (default ``(10_000, 100_000)``, the paper's).
        n_draws: number of sampled iterations, or ``None`` (default) for the exact mean.
        rng: a ``numpy.random.Generator`` or integer seed; required with ``n_draws``.

    Returns:
        A float for one curve, a (M,) float64 array for M curves.
    """
    t = to_numpy(steps, "steps")
    if t.ndim != 1 or t.size < 2 or not np.issubdtype(t.dtype, np.number) or t.dtype == bool:
        raise LosslabError(
            f"steps must be a 1-D numeric array of at least 2 iterations, got shape {t.shape}"
        )
    t = t.astype(np.float64)
    if not np.isfinite(t).all() or not (np.diff(t) > 0).all():
        raise LosslabError("steps must be finite and strictly increasing")
    a = to_numpy(accuracies, "accuracies")
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise LosslabError(f"accuracies must be numeric, got dtype {a.dtype}")
    if a.ndim not in (1, 2) or a.shape[-1] != t.size:
        raise LosslabError(
            f"accuracies must have shape (T,) or (M, T) with T = {t.size} (the number of "
            f"steps), got shape {a.shape}"
        )
    a = a.astype(np.float64)
    if not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
        raise LosslabError(
            "accuracies must be finite fractions in [0, 1]; divide percentages by 100"
        )
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise LosslabError(f"window must be a pair (lo, hi) of iterations, got {window!r}")
    lo, hi = window
    for name, value in (("lo", lo), ("hi", hi)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise LosslabError(f"window {name} must be an integer iteration, got {value!r}")
    if not t[0] <= lo <= hi <= t[-1]:
        raise LosslabError(
            f"window ({lo}, {hi}) must satisfy {t[0]:g} <= lo <= hi <= {t[-1]:g}, the "
            "recorded steps (the curve is interpolated, never extrapolated)"
        )
    if n_draws is None:
        query = np.arange(lo, hi + 1, dtype=np.float64)
    else:
        n_draws = positive_int(n_draws, "speed_of_learning: n_draws")
        if rng is None:
            raise LosslabError(
                "speed_of_learning: n_draws needs rng (a numpy Generator or seed); "
                "leave n_draws=None for the exact mean"
            )
        draws = as_rng(rng, "speed_of_learning: rng").integers(lo, hi, size=n_draws, endpoint=True)
        query = draws.astype(np.float64)
    curves = np.atleast_2d(a)
    means = np.array([np.interp(query, t, curve).mean() for curve in curves])
    return float(means[0]) if a.ndim == 1 else means


def _predicted_classes(output: Any, labels: np.ndarray) -> np.ndarray:
    """(n,) predicted classes from a predict_fn output: (n, C) scores or (n,) labels."""
    out = to_numpy(output, "predict_fn output")
    if out.ndim not in (1, 2) or out.shape[0] != labels.shape[0]:
        raise LosslabError(
            f"predict_fn must return (n, C) scores or (n,) integer predictions for n = "
            f"{labels.shape[0]} inputs, got shape {out.shape}"
        )
    if out.ndim == 2:
        scores = as_scores(out, "predict_fn output")
        as_labels(labels, len(labels), scores.shape[1], "y")
        return scores.argmax(axis=1)
    if out.dtype == bool or not np.issubdtype(out.dtype, np.integer):
        raise LosslabError(
            f"predict_fn returned a 1-D output of dtype {out.dtype}; return integer class "
            "predictions or (n, C) scores"
        )
    return out


def noise_robustness_curve(
    predict_fn: Callable[[Any], Any],
    x: Any,
    y: Any,
    eps_list: Sequence[float],
    rng: np.random.Generator | int,
    n_repeats: int = 1,
    batch_size: int | None = None,
) -> np.ndarray:
    """Accuracy of a trained model on inputs corrupted by Gaussian noise ``N(0, eps I)``.

    .. math:: \\mathrm{acc}(\\epsilon) = \\frac{1}{N}
        \\#\\{s : \\hat y(x_s + \\sqrt{\\epsilon}\\, \\xi_s) = y_s\\},
        \\qquad \\xi_s \\sim \\mathcal{N}(0, I)

    ``eps`` is the variance of the noise (its covariance is ``eps I``, the seed's
    notation), so its standard deviation is ``sqrt(eps)``; ``eps = 0`` is the clean
    accuracy. Seed: Janocha & Czarnecki section 3, Fig. 4 (measured on the training set).

    One standard-normal draw ``xi`` per repeat is scaled for every ``eps`` (common random
    numbers), so the differences along the curve come from ``eps``, not from fresh noise.

    Args:
        predict_fn: maps a batch of inputs (same type as ``x``: tensor or array, shape
            (n, *)) to (n, C) scores or (n,) integer predictions. Called under
            ``torch.no_grad()``; put the model in ``eval()`` mode first.
        x: (N, *) floating inputs, torch tensor (any device) or NumPy array.
        y: (N,) integer labels.
        eps_list: noise variances, each finite and >= 0.
        rng: a ``numpy.random.Generator`` or integer seed, the only source of noise.
        n_repeats: independent noise draws averaged per ``eps`` (default 1).
        batch_size: inputs per ``predict_fn`` call (default ``None``: all N at once).

    Returns:
        (len(eps_list),) float64 array of accuracies in [0, 1].
    """
    if not callable(predict_fn):
        raise LosslabError("predict_fn must be callable: inputs (n, *) -> scores (n, C)")
    is_tensor = isinstance(x, torch.Tensor)
    if not is_tensor:
        x = to_numpy(x, "x")
    if x.ndim < 1 or x.shape[0] == 0:
        raise LosslabError(f"x must have shape (N, *) with N >= 1, got {tuple(x.shape)}")
    floating = x.is_floating_point() if is_tensor else np.issubdtype(x.dtype, np.floating)
    if not floating:
        raise LosslabError(f"x must be floating point to take Gaussian noise, got {x.dtype}")
    labels = as_labels(y, x.shape[0], None, "y")
    if isinstance(eps_list, (str, bytes)) or not hasattr(eps_list, "__iter__"):
        raise LosslabError(f"eps_list must be a sequence of noise variances, got {eps_list!r}")
    eps_values = [real(e, "noise_robustness_curve: eps", low=0.0) for e in eps_list]
    if not eps_values:
        raise LosslabError("eps_list is empty: give at least one noise variance, e.g. [0, 0.1]")
    n_repeats = positive_int(n_repeats, "noise_robustness_curve: n_repeats")
    batch = len(labels) if batch_size is None else positive_int(batch_size, "batch_size")
    generator = as_rng(rng, "noise_robustness_curve: rng")

    def accuracy_on(inputs: Any) -> float:
        predicted = np.concatenate(
            [
                _predicted_classes(predict_fn(inputs[i : i + batch]), labels[i : i + batch])
                for i in range(0, len(labels), batch)
            ]
        )
        return float(np.mean(predicted == labels))

    correct = np.zeros(len(eps_values))
    with torch.no_grad():
        for _ in range(n_repeats):
            noise = generator.standard_normal(tuple(x.shape))
            xi: torch.Tensor | np.ndarray
            if is_tensor:
                xi = torch.from_numpy(noise).to(dtype=x.dtype, device=x.device)
            else:
                xi = noise.astype(x.dtype, copy=False)
            for j, eps in enumerate(eps_values):
                correct[j] += accuracy_on(x + math.sqrt(eps) * xi)
    return correct / n_repeats
