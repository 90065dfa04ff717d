"""Measurements taken during training, beyond accuracy and loss, for every model at once.

A measurement is called by the training engine with a ``MeasureContext`` (see
:mod:`losslab.train.measure`) after every evaluation (``when = "eval"``) or once at the
end (``when = "final"``), and returns one list of ``(name, index, value)`` rows per model;
the engine prepends the step and stores them in ``TrainResult.measurements``. ``index``
is a string: a layer name, a quantile, a threshold, a histogram bin or ``""``.

The context gives, for the M models trained together (all tensors without gradients):

* ``logits(split)`` -> (M, N, C) through each loss's ``predict_logits`` (two-scale
  losses at R1), or ``None`` when the split is absent; ``labels(split)`` -> (N,);
  ``inputs(split)`` -> (N, ...); ``coarse_labels(split)`` -> (N,) or ``None``;
* ``predict(x)`` -> (M, N, C) on new inputs (N, ...);
* ``grad_norms()`` -> {layer: (M,)} of the last step; ``loss_scales()`` -> one dict per model.

:data:`MEASUREMENTS` maps each name to its class; :func:`get_measurement` builds one with
options, e.g. ``get_measurement("top_k", ks=[1, 5])``. A study's ``[measure]`` table names
them (``grad_norms = true``, ``acc_at = {ats = [0.01, 0.05]}``).

Seeds: Berlyand, Creese & Jabin 2021 (section 2: classification confidence and
``#W_eta``; section 3.1: top-k, close-enough ``acc_at``, super-class accuracy and the
probability histograms of Figs. 4-6; the scales R1, R2 of the two-scale loss), Janocha &
Czarnecki 2017 (section 3: training accuracy under input noise N(0, eps I), Fig. 4; the
decision boundaries of the toy nets, Fig. 2), Mendez-Vazquez 2025 activation slides
(vanishing gradients: the gradient norm of each layer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from losslab.checks import check_int, check_real
from losslab.errors import LosslabError
from losslab.metrics.classification import (
    acc_at,
    classification_confidence,
    correct_class_probability_histogram,
    max_probability_histogram,
    probability_gap_histogram,
    top_k_accuracy,
)
from losslab.registry import build

__all__ = [
    "MEASUREMENTS",
    "AccAt",
    "Confidence",
    "DecisionBoundary",
    "GradNorms",
    "Histograms",
    "LossScales",
    "MeasureContextLike",
    "NoiseRobustness",
    "Superclass",
    "TopK",
    "get_measurement",
]

Row = tuple[str, str, float]  # (name, index, value)
Rows = list[list[Row]]  # one list per model
SPLITS = ("train", "dev", "test")


class MeasureContextLike(Protocol):
    """What a measurement reads; the engine's ``losslab.train.measure.MeasureContext``."""

    step: int
    num_models: int
    num_classes: int

    def logits(self, split: str) -> torch.Tensor | None: ...
    def labels(self, split: str) -> torch.Tensor | None: ...
    def inputs(self, split: str) -> torch.Tensor | None: ...
    def coarse_labels(self, split: str) -> torch.Tensor | None: ...
    def predict(self, x: torch.Tensor) -> torch.Tensor: ...
    def grad_norms(self) -> dict[str, torch.Tensor]: ...
    def loss_scales(self) -> list[dict[str, float]]: ...


def _labels(ctx: MeasureContextLike, split: str) -> torch.Tensor:
    labels = ctx.labels(split)
    assert labels is not None, f"split {split!r} has data but no labels"  # the context's invariant
    return labels


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64 if t.is_floating_point() else t.dtype).numpy()


def _split_tuple(splits: Any, what: str) -> tuple[str, ...]:
    values = (splits,) if isinstance(splits, str) else tuple(splits)
    bad = [s for s in values if s not in SPLITS]
    if not values or bad:
        raise LosslabError(f"{what}: splits must be a non-empty list of {SPLITS}, got {splits!r}")
    return tuple(dict.fromkeys(values))


def _reals(values: Any, what: str, low: float = -math.inf, high: float = math.inf) -> tuple:
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = (values,)
    try:
        out = tuple(check_real(what, v, low, high) for v in values)
    except TypeError:
        raise LosslabError(f"{what} must be a list of numbers, got {values!r}") from None
    if not out:
        raise LosslabError(f"{what} must hold at least one number")
    return out


def _split_data(ctx: MeasureContextLike, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(M, N, C) float64 logits and (N,) labels of a split, or None when it is absent."""
    logits = ctx.logits(split)
    if logits is None:
        return None
    return _numpy(logits), _numpy(_labels(ctx, split))


def _label(value: float) -> str:
    return f"{value:g}"


def _rows_per_split(
    ctx: MeasureContextLike,
    splits: Sequence[str],
    rows_of: Callable[[str, np.ndarray, np.ndarray], list[Row]],
) -> Rows:
    """One list of rows per model: ``rows_of(split, z (N, C), labels (N,))`` over the splits.

    Absent splits are skipped; ``z`` is one model's float64 logits.
    """
    rows: Rows = [[] for _ in range(ctx.num_models)]
    for split in splits:
        data = _split_data(ctx, split)
        if data is None:
            continue
        logits, labels = data
        for m, z in enumerate(logits):
            rows[m] += rows_of(split, z, labels)
    return rows


@dataclass(frozen=True)
class _PerSplit:
    """A measurement over data splits: ``splits`` checked once, at construction.

    Run every evaluation (``when="eval"``) without gradients unless a subclass says
    otherwise; a subclass that defines ``_rows(split, z (N, C), labels (N,))`` is measured
    split by split through :func:`_rows_per_split`.
    """

    splits: Sequence[str] = ("train", "test")
    name: ClassVar[str]
    when: ClassVar[str] = "eval"
    needs_grads: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "splits", _split_tuple(self.splits, self.name))

    def __call__(self, ctx: MeasureContextLike) -> Rows:
        return _rows_per_split(ctx, self.splits, self._rows)

    def _rows(self, split: str, z: np.ndarray, labels: np.ndarray) -> list[Row]:
        raise NotImplementedError


@dataclass(frozen=True)
class GradNorms:
    """Per-layer L2 norm of the last step's gradient, ``||dL/dW_layer||_2``.

    Rows: ``("grad_norm", layer, value)`` per layer and ``("grad_norm", "total", value)``,
    the norm over all layers. Norms that shrink layer by layer towards the input are the
    vanishing gradients of saturating activations (Mendez-Vazquez 2025 activation slides,
    "vanishing gradient").
    """

    name: ClassVar[str] = "grad_norms"
    when: ClassVar[str] = "eval"
    needs_grads: ClassVar[bool] = True

    def __call__(self, ctx: MeasureContextLike) -> Rows:
        norms = {layer: _numpy(v).reshape(-1) for layer, v in ctx.grad_norms().items()}
        rows: Rows = []
        for m in range(ctx.num_models):
            per_layer = [("grad_norm", layer, float(v[m])) for layer, v in norms.items()]
            total = math.sqrt(sum(v * v for _, _, v in per_layer))
            rows.append([*per_layer, ("grad_norm", "total", total)])
        return rows


@dataclass(frozen=True)
class LossScales:
    """The trainable scales of two-scale losses: ``R1`` and ``R2``, or ``Rs`` (separation).

    Rows: ``("loss_scale", key, value)`` for each scale the engine reports for the model's
    loss (none for losses without scales). Seed: Berlyand et al. section 2, eqs. 12-13
    (R1 < R2 adapt during training; their ratio is what helps).
    """

    name: ClassVar[str] = "loss_scales"
    when: ClassVar[str] = "eval"
    needs_grads: ClassVar[bool] = False

    def __call__(self, ctx: MeasureContextLike) -> Rows:
        return [
            [("loss_scale", key, float(value)) for key, value in scales.items()]
            for scales in ctx.loss_scales()
        ]


@dataclass(frozen=True)
class Confidence(_PerSplit):
    """Quantiles of the classification confidence ``dX`` and the counts ``#W_eta``.

    .. math:: \\delta X(s) = z_{c(s)} - \\max_{i \\ne c(s)} z_i, \\qquad
        \\#W_\\eta = \\#\\{s : \\delta X(s) > \\eta\\}

    on the logits through ``predict_logits`` (two-scale losses at R1). Seed: Berlyand et al.
    section 2 (eq. 11 and the definition above it).

    Rows per split: ``(f"{split}_dX", f"{q:g}", quantile)`` and
    ``(f"{split}_W_eta", f"{eta:g}", count)``.

    Args:
        splits: splits measured (default train and test; absent splits are skipped).
        quantiles: quantile levels in [0, 1] (default 0.05, 0.25, 0.5, 0.75, 0.95).
        etas: thresholds eta (default 0 and the paper's 0.01, 0.1, 1, 10, 100).
    """

    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)
    etas: Sequence[float] = (0.0, 0.01, 0.1, 1.0, 10.0, 100.0)
    name: ClassVar[str] = "confidence"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "quantiles", _reals(self.quantiles, "confidence quantile", 0, 1))
        object.__setattr__(self, "etas", _reals(self.etas, "confidence eta"))

    def _rows(self, split: str, z: np.ndarray, labels: np.ndarray) -> list[Row]:
        dx = classification_confidence(z, labels)
        values = np.quantile(dx, self.quantiles)
        quantiles = [
            (f"{split}_dX", _label(q), float(v))
            for q, v in zip(self.quantiles, values, strict=True)
        ]
        return quantiles + [(f"{split}_W_eta", _label(e), float(np.sum(dx > e))) for e in self.etas]


@dataclass(frozen=True)
class TopK(_PerSplit):
    """Top-k accuracy: the correct class among the k largest scores (Berlyand section 3.1).

    Rows: ``(f"{split}_top_k", str(k), accuracy)``.

    Args:
        splits: default train and test.
        ks: the k values (default: 1, 2, 3, 5, 10 up to the number of classes C); an
            explicit k larger than C is an error.
    """

    ks: Sequence[int] | None = None
    name: ClassVar[str] = "top_k"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ks is not None:
            ks = (self.ks,) if isinstance(self.ks, int) else tuple(self.ks)
            if not ks:
                raise LosslabError("top_k: ks must hold at least one k >= 1")
            object.__setattr__(self, "ks", tuple(check_int("top_k k", k, 1) for k in ks))

    def __call__(self, ctx: MeasureContextLike) -> Rows:
        c = ctx.num_classes
        ks = tuple(k for k in (1, 2, 3, 5, 10) if k <= c) if self.ks is None else self.ks
        if max(ks) > c:
            raise LosslabError(f"top_k: k = {max(ks)} exceeds the number of classes C = {c}")
        return _rows_per_split(
            ctx,
            self.splits,
            lambda split, z, labels: [
                (f"{split}_top_k", str(k), top_k_accuracy(z, labels, k)) for k in ks
            ],
        )


@dataclass(frozen=True)
class AccAt(_PerSplit):
    """Close-enough accuracy ``#{p_c >= max_i p_i - at} / N`` (Berlyand section 3.1, Fig. 2).

    Rows: ``(f"{split}_acc_at", f"{at:g}", accuracy)``.

    Args:
        splits: default train and test.
        ats: tolerances in [0, 1] (default 0, 0.01, ..., 0.05, the paper's range).
    """

    ats: Sequence[float] = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05)
    name: ClassVar[str] = "acc_at"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "ats", _reals(self.ats, "acc_at at", 0, 1))

    def _rows(self, split: str, z: np.ndarray, labels: np.ndarray) -> list[Row]:
        return [(f"{split}_acc_at", _label(a), acc_at(z, labels, a)) for a in self.ats]


def coarse_map(ctx: MeasureContextLike, num_classes: int) -> np.ndarray | None:
    """(C,) super-class of each fine class, read from the context's (fine, coarse) pairs.

    Each fine class takes the coarse label most of its samples carry over all splits, so
    label noise on the fine training labels (which leaves the coarse labels clean) does not
    corrupt the map; a class with no sample gets -1 (never counted correct). None when the
    data has no coarse labels.
    """
    counts: dict[tuple[int, int], int] = {}
    for split in SPLITS:
        coarse = ctx.coarse_labels(split)
        if coarse is None:
            continue
        fine = _numpy(_labels(ctx, split))
        pairs, n = np.unique(np.stack([fine, _numpy(coarse)], 1), axis=0, return_counts=True)
        for (f, g), k in zip(pairs.tolist(), n.tolist(), strict=True):
            counts[(f, g)] = counts.get((f, g), 0) + k
    if not counts:
        return None
    g = np.full(num_classes, -1, dtype=np.int64)
    best = np.zeros(num_classes, dtype=np.int64)
    for (f, c), k in sorted(counts.items()):
        if k > best[f]:
            g[f], best[f] = c, k
    return g


@dataclass(frozen=True)
class Superclass(_PerSplit):
    """Super-class accuracy: the predicted class lies in the sample's super-class.

    .. math:: \\mathrm{acc}_{super} = \\frac{1}{N} \\#\\{s : g(\\arg\\max_i z_i) = G(s)\\}

    with ``G(s)`` the sample's coarse label and ``g`` the fine -> coarse map of the data
    (:func:`coarse_map`). Seed: Berlyand et al. eq. 20 (CIFAR-100's 20 super-classes).
    Rows: ``(f"{split}_superclass_accuracy", "", accuracy)``; none for data without coarse
    labels, so one ``[measure]`` table serves a study over CIFAR-100 and other datasets.

    Args:
        splits: default train and test.
    """

    name: ClassVar[str] = "superclass"

    def __call__(self, ctx: MeasureContextLike) -> Rows:
        g = coarse_map(ctx, ctx.num_classes)
        rows: Rows = [[] for _ in range(ctx.num_models)]
        if g is None:
            return rows
        for split in self.splits:
            logits, coarse = ctx.logits(split), ctx.coarse_labels(split)
            if logits is None or coarse is None:
                continue
            predicted = _numpy(logits).argmax(axis=2)
            correct = g[predicted] == _numpy(coarse)[None, :]
            for m in range(ctx.num_models):
                rows[m].append((f"{split}_superclass_accuracy", "", float(correct[m].mean())))
        return rows


@dataclass(frozen=True)
class Histograms(_PerSplit):
    """The probability histograms of Berlyand et al. Figs. 4-6, once at the end.

    Rows per split, with ``index`` the left edge of a bin of width ``1 / bins``:
    ``(f"{split}_max_p", edge, count)`` (max probability, [0, 1]),
    ``(f"{split}_p_correct", edge, count)`` (correct-class probability, [0, 1]) and
    ``(f"{split}_dp_wrong", edge, count)`` (``p_c - max p`` on misclassified samples,
    [-1, 0]). Probabilities are the softmax of the logits through ``predict_logits``.

    Args:
        splits: default test (the paper's figures).
        bins: number of bins (default 20).
    """

    splits: Sequence[str] = ("test",)
    bins: int = 20
    name: ClassVar[str] = "histograms"
    when: ClassVar[str] = "final"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "bins", check_int("histograms bins", self.bins, 1))

    def _rows(self, split: str, z: np.ndarray, labels: np.ndarray) -> list[Row]:
        return [
            (f"{split}_{what}", f"{lo:.6g}", float(count))
            for what, hist in (
                ("max_p", max_probability_histogram(z, self.bins)),
                ("p_correct", correct_class_probability_histogram(z, labels, self.bins)),
                ("dp_wrong", probability_gap_histogram(z, labels, self.bins)),
            )
            for lo, count in zip(hist.edges[:-1], hist.counts, strict=True)
        ]


@dataclass(frozen=True)
class NoiseRobustness:
    """Accuracy on a split's inputs corrupted by Gaussian noise ``N(0, eps I)``, at the end.

    Janocha & Czarnecki section 3, Fig. 4: "we add noise sampled from N(0, eps I) to each
    x_i and observe how quickly (in terms of growing eps) network's training accuracy
    drops". ``eps`` is the variance (std ``sqrt(eps)``). Each repeat draws one standard
    normal array ``xi`` of the inputs' shape from ``numpy.random.default_rng(seed)`` and
    scales it for every eps, for every model (common random numbers): the same stream as
    :func:`losslab.metrics.noise_robustness_curve` with ``rng=seed``.

    Rows: ``(f"{split}_noisy_accuracy", f"{eps:g}", accuracy)``.

    Args:
        eps: noise variances >= 0 (default 0, 0.01, 0.05, 0.1, 0.2, 0.5, 1).
        split: default ``"train"`` (the paper's).
        repeats: noise draws averaged per eps (default 1).
        seed: seed of the noise (default 0).
        batch_size: inputs per forward pass (default 4096), bounding memory.
    """

    eps: Sequence[float] = (0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
    split: str = "train"
    repeats: int = 1
    seed: int = 0
    batch_size: int = 4096
    name: ClassVar[str] = "noise_robustness"
    when: ClassVar[str] = "final"
    needs_grads: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", _reals(self.eps, "noise_robustness eps", 0))
        object.__setattr__(self, "split", _split_tuple(self.split, "noise_robustness")[0])
        object.__setattr__(self, "repeats", check_int("noise_robustness repeats", self.repeats, 1))
        object.__setattr__(self, "seed", check_int("noise_robustness seed", self.seed, 0))
        object.__setattr__(
            self, "batch_size", check_int("noise_robustness batch_size", self.batch_size, 1)
        )

    def __call__(self, ctx: MeasureContextLike) -> Rows:
        x = ctx.inputs(self.split)
        if x is None:
            return [[] for _ in range(ctx.num_models)]
        labels = _labels(ctx, self.split).to(x.device)
        rng = np.random.default_rng(self.seed)
        correct = torch.zeros(len(self.eps), ctx.num_models, dtype=torch.float64)
        for _ in range(self.repeats):
            xi = torch.from_numpy(rng.standard_normal(tuple(x.shape))).to(x.device, x.dtype)
            for j, eps in enumerate(self.eps):
                for i in range(0, len(labels), self.batch_size):
                    part = slice(i, i + self.batch_size)
                    noisy = x[part] + math.sqrt(eps) * xi[part]
                    hit = ctx.predict(noisy).argmax(dim=2) == labels[part]
                    correct[j] += hit.sum(dim=1).cpu().double()
        accuracy = correct / (self.repeats * len(labels))
        name = f"{self.split}_noisy_accuracy"
        return [
            [(name, _label(e), float(accuracy[j, m])) for j, e in enumerate(self.eps)]
            for m in range(ctx.num_models)
        ]


@dataclass(frozen=True)
class DecisionBoundary:
    """The predicted class on a regular grid over a 2-D input plane, at the end.

    Janocha & Czarnecki Fig. 2 (decision boundaries of the toy nets). The grid spans the
    bounding box of the train and test inputs widened by ``margin`` of its size on each
    side, with ``resolution`` evenly spaced points per axis (``numpy.linspace``, ends
    included). Rows: ``("boundary_extent", "x_min" | "x_max" | "y_min" | "y_max", value)``
    and ``("boundary", f"{i},{j}", class)``, the class predicted at grid point ``(xs[j],
    ys[i])``: column j runs along the first input feature, row i along the second, as an
    image drawn with ``origin="lower"`` (see :meth:`grid`). Data whose samples are not
    2-D points gets no rows, so one ``[measure]`` table serves toy and image datasets.

    Args:
        resolution: points per axis (default 64, i.e. 4096 rows per model).
        margin: widening of the box, a fraction of its size (default 0.1).
    """

    resolution: int = 64
    margin: float = 0.1
    name: ClassVar[str] = "decision_boundary"
    when: ClassVar[str] = "final"
    needs_grads: ClassVar[bool] = False
    _extent_keys: ClassVar[tuple[str, ...]] = ("x_min", "x_max", "y_min", "y_max")

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "resolution", check_int("decision_boundary resolution", self.resolution, 2)
        )
        object.__setattr__(self, "margin", check_real("decision_boundary margin", self.margin, 0.0))

    def grid(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
        """``(xs (R,), ys (R,), extent)`` of the grid around ``points`` (P, 2).

        The grid point of row ``i`` and column ``j`` is ``(xs[j], ys[i])``.
        """
        low, high = points.min(axis=0), points.max(axis=0)
        pad = self.margin * np.maximum(high - low, 1e-12)
        low, high = low - pad, high + pad
        xs = np.linspace(low[0], high[0], self.resolution)
        ys = np.linspace(low[1], high[1], self.resolution)
        return xs, ys, (float(low[0]), float(high[0]), float(low[1]), float(high[1]))

    def __call__(self, ctx: MeasureContextLike) -> Rows:
        inputs = [x for x in (ctx.inputs(s) for s in ("train", "test")) if x is not None]
        if tuple(inputs[0].shape[1:]) != (2,):
            return [[] for _ in range(ctx.num_models)]
        points = np.concatenate([_numpy(x) for x in inputs])
        xs, ys, extent = self.grid(points)
        gx, gy = np.meshgrid(xs, ys)
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
        x0 = inputs[0]
        scores = ctx.predict(torch.from_numpy(grid).to(x0.device, x0.dtype))
        predicted = scores.argmax(dim=2).cpu().numpy()
        r = self.resolution
        index = [f"{i},{j}" for i in range(r) for j in range(r)]
        head = [("boundary_extent", k, v) for k, v in zip(self._extent_keys, extent, strict=True)]
        return [
            head + [("boundary", ij, float(c)) for ij, c in zip(index, predicted[m], strict=True)]
            for m in range(ctx.num_models)
        ]


#: Measurement name -> class; ``get_measurement(name, **options)`` builds one.
MEASUREMENTS: dict[str, type] = {
    m.name: m
    for m in (
        GradNorms,
        LossScales,
        Confidence,
        TopK,
        AccAt,
        Superclass,
        Histograms,
        NoiseRobustness,
        DecisionBoundary,
    )
}


def get_measurement(name: str, **options: Any) -> Any:
    """The measurement ``name`` of :data:`MEASUREMENTS` built with ``options``.

    Unknown names and options raise :class:`LosslabError` listing the valid ones.

    Example:
        >>> get_measurement("acc_at", ats=[0.01, 0.05]).when
        'eval'
    """
    return build(MEASUREMENTS, name, "measurement", **options)
