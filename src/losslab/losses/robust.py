r"""Losses that bound or flatten the penalty on badly misclassified samples.

alpha-loss (Mendez-Vazquez slides, "alpha-Loss"), the generalised cross-entropy of
Zhang & Sabuncu (2018) and the truncated log loss (Berlyand et al. eq. 12). All three
are functions of the correct-class probability :math:`p_c` = softmax(o)_c. For soft
targets they are extended as the expectation over the target distribution,
:math:`\sum_j y_j f(p_j)`, which is :math:`f(p_c)` for a one-hot row. For index targets
each is computed from the per-sample cross-entropy :math:`-\log p_c` (one
``F.cross_entropy`` plus O(N) work; see :mod:`losslab.losses.kernels`).

Stability: :math:`p^q` is computed as :math:`\exp(q \log p)` with log-softmax, and
:math:`1 - p^q` as ``-expm1(q log p)`` so that alpha near 1 does not cancel. Classes
with :math:`y_j = 0` are masked *before* the power (not multiplied by zero after it),
so that an infinite :math:`p_j^{q}` of a wrong class (alpha < 1) cannot produce
``0 * inf = NaN`` in the value or the gradient.
"""

from __future__ import annotations

from functools import partial

from losslab.losses import kernels as K
from losslab.losses._base import ClassificationLoss
from losslab.losses.definition import Hyper, define_loss

_robust = partial(define_loss, family="robust")

AlphaLoss = _robust(
    "alpha", K.alpha_kernel, npnet="alpha",
    title="alpha-loss, a family from log loss to 1 - p_c",
    math=r"\ell(o, c) = \frac{\alpha}{\alpha - 1}\left(1 - p_c^{\,1 - 1/\alpha}\right),"
    r" \quad \ell^{1} = -\log p_c, \quad \ell^{\infty} = 1 - p_c",
    notes=r"""The two limits are the continuous extensions. The slides print
    :math:`\alpha/(1-\alpha)` and :math:`\ell^\infty = 1 - \log P`: both typos (the first
    makes the loss negative, the second contradicts the slides' own limit). With
    :math:`q = 1 - 1/\alpha` this is exactly :class:`GCELoss` (q in (0, 1] for
    alpha > 1; alpha < 1 gives q < 0). For alpha < 1 the loss is unbounded:
    it grows like :math:`p_c^{-(1/\alpha - 1)}` and overflows to inf once that
    exceeds the dtype's range (a truly lost sample "pays an infinite cost"), so
    only alpha >= 1 is finite for every input.""",
    hyper={"alpha": Hyper(
        2.0, "alpha > 0, ``float(\"inf\")`` allowed; 2 is our choice (the seed gives none): "
        "the member halfway between log loss and 1 - p_c, 2(1 - sqrt(p_c)) = gce(q=1/2).",
        K.check_alpha,
    )},
    formula="α/(α−1) (1 − p_c^(1−1/α)); α=1: −log p_c; α=∞: 1 − p_c",
    seed="Mendez-Vazquez 2025 slides, alpha-Loss (typos fixed)",
    example="0.5637", example_kwargs={"alpha": 3.0},
)  # fmt: skip

GCELoss = _robust(
    "gce", K.gce_kernel, npnet="gce", class_name="GCELoss",
    title="Generalised cross-entropy, Zhang & Sabuncu 2018",
    math=r"\ell(o, c) = \frac{1 - p_c^{\,q}}{q}, \quad q \in (0, 1]",
    notes="""q -> 0 recovers log loss, q = 1 gives 1 - p_c (half the expectation loss).
    alpha-loss with alpha = 1 / (1 - q) is the same function.""",
    hyper={"q": Hyper(0.7, "exponent in (0, 1]; 0.7 is Zhang & Sabuncu's recommended value.",
                      K.check_q)},
    formula="(1 − p_c^q) / q",
    seed="Zhang & Sabuncu 2018 (Berlyand et al. ref. 15); = alpha(α = 1/(1−q))",
    example="0.621", example_kwargs={"q": 0.5},
)  # fmt: skip

TruncatedLogLoss = _robust(
    "truncated_log", K.truncated_log_kernel, npnet="truncated_log",
    title="Truncated log loss: log loss capped at -log k",
    math=r"\ell(o, c) = -\log \max(p_c, k)",
    notes=r"""A sample whose correct-class probability is below k costs the constant -log k and
    contributes no gradient, which limits the pull of outliers and mislabelled samples.
    The seed's case split compares :math:`\delta X` with k in its second branch; that
    mixes two quantities (a typo): both branches compare :math:`p_c` with k. k = 0 is
    log loss.""",
    hyper={"k": Hyper(0.5, "truncation level in [0, 1].", K.check_k)},
    formula="−log max(p_c, k)", seed="Berlyand, Creese & Jabin 2021, eq. 12",
    example="0.6869", example_kwargs={"k": 0.3},
)  # fmt: skip

ROBUST_LOSSES: dict[str, type[ClassificationLoss]] = {
    cls.definition.name: cls  # type: ignore[attr-defined]
    for cls in (AlphaLoss, GCELoss, TruncatedLogLoss)
}
