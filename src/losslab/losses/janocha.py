r"""The twelve classification losses of Janocha & Czarnecki (2017), Table 1.

Notation: ``o`` logits (N, C); ``y`` target rows (N, C), one-hot or probabilities;
:math:`\hat y = 2y - 1` (the +/-1 coding); ``p`` = softmax(o) or, with
``probability="sigmoid"``, the element-wise sigmoid(o). Each loss is one
:func:`~losslab.losses.definition.define_loss` entry: its kernel from
:mod:`losslab.losses.kernels` and what the docs say of it; the class (validation, class
weights, reductions: :class:`~losslab.losses._base.ClassificationLoss`) and the function of
:mod:`losslab.losses.functional` follow from it.

Which losses take ``probability``: the seven written with :math:`\sigma(o)` in Table 1 —
expectation, regularised_expectation, chebyshev, log, squared_log, tanimoto and
cauchy_schwarz. For the non-log ones ``"sigmoid"`` substitutes
:math:`p_j = \mathrm{sigmoid}(o_j)` into the same formula. For the two log losses the
literal substitution :math:`-\sum_j y_j \log \mathrm{sigmoid}(o_j)` would only ever
push the correct logit up and never the others down, so ``"sigmoid"`` instead treats
each class as its own binary problem with probabilities :math:`(p_j, 1 - p_j)` and
target :math:`(y_j, 1 - y_j)`: log loss becomes the binary cross-entropy summed over
classes (``F.binary_cross_entropy_with_logits(o, y, reduction="none").sum(-1)``).
The raw-logit losses (l1, l2 and the three hinges) take no ``probability``.
"""

from __future__ import annotations

from functools import partial

from losslab.losses import kernels as K
from losslab.losses._base import ClassificationLoss
from losslab.losses.definition import define_loss

_SEED = "Janocha & Czarnecki 2017, Table 1"
_FAMILY = "Janocha & Czarnecki 2017"
_janocha = partial(define_loss, family=_FAMILY)
# Every probability loss here has a NumPy twin under its own name.
_on_p = partial(_janocha, probability=True)

L1Loss = _janocha(
    "l1", K.l1_kernel, npnet="l1",
    title="L1 loss on the raw logits", math=r"\ell(o, y) = \sum_j |y_j - o_j|",
    formula="Σ_j |y_j − o_j|", seed=_SEED + " (L1)", example="2.0",
)  # fmt: skip

L2Loss = _janocha(
    "l2", K.l2_kernel, npnet="l2",
    title="Squared L2 loss on the raw logits", math=r"\ell(o, y) = \sum_j (y_j - o_j)^2",
    formula="Σ_j (y_j − o_j)²", seed=_SEED + " (L2)", example="2.0",
)  # fmt: skip

ExpectationLoss = _on_p(
    "expectation", K.expectation_kernel, npnet="expectation",
    title="Expectation loss: L1 on the probabilities",
    math=r"\ell(o, y) = \sum_j |y_j - p_j| \quad (= 2 - 2 p_c \text{ for one-hot } y)",
    notes="""The identity is Proposition 1: the loss is the expected misclassification
    probability (up to the constant 2 and the factor 2) when a label is drawn from p.
    Its gradient vanishes for heavily misclassified samples (Proposition 2).""",
    formula="Σ_j |y_j − p_j|  (= 2 − 2 p_c)", seed=_SEED + " (L1∘σ), Prop. 1",
    example="0.9443",
)  # fmt: skip

RegularisedExpectationLoss = _on_p(
    "regularised_expectation", K.regularised_expectation_kernel,
    npnet="regularised_expectation",
    title="Regularised expectation loss: squared L2 on the probabilities",
    math=r"\ell(o, y) = \sum_j (y_j - p_j)^2 = 1 - 2 p_c + \|p\|^2 \text{ (one-hot } y)",
    notes="Proposition 1: the expected misclassification regularised by the squared norm of p.",
    formula="Σ_j (y_j − p_j)²", seed=_SEED + " (L2∘σ), Prop. 1", example="0.5185",
)  # fmt: skip

ChebyshevLoss = _on_p(
    "chebyshev", K.chebyshev_kernel, npnet="chebyshev",
    title="Chebyshev (L-infinity) loss on the probabilities",
    math=r"\ell(o, y) = \max_j |p_j - y_j|",
    notes=r"""The seed prints the bars of the absolute value as spaces; the name
    :math:`\mathcal{L}_\infty\circ\sigma` fixes the reading. At ties the subgradient
    is shared evenly among the maximising classes, so the gradient stays finite.""",
    formula="max_j |p_j − y_j|", seed=_SEED + " (L∞∘σ)", example="0.4721",
)  # fmt: skip

HingeLoss = _janocha(
    "hinge", K.hinge_kernel, fixed={"power": 1}, npnet="hinge",
    title="Hinge (margin) loss on the raw logits with the +/-1 target coding",
    math=r"\ell(o, y) = \sum_j \max(0, \tfrac12 - \hat y_j o_j), \quad \hat y = 2y - 1",
    notes=r"""For soft targets :math:`\hat y_j = 2y_j - 1` lies in [-1, 1] (our extension; the
    seed only uses one-hot targets).""",
    formula="Σ_j max(0, ½ − ŷ_j o_j)", seed=_SEED + " (hinge)", example="1.5",
)  # fmt: skip

SquaredHingeLoss = _janocha(
    "squared_hinge", K.hinge_kernel, fixed={"power": 2}, npnet="squared_hinge",
    title="Squared hinge loss", math=r"\ell(o, y) = \sum_j \max(0, \tfrac12 - \hat y_j o_j)^2",
    notes=r"The seed's summation bounds (:math:`j = 1..3`) are a typo: the sum runs over all "
    "classes.",
    formula="Σ_j max(0, ½ − ŷ_j o_j)²", seed=_SEED + " (hinge²)", example="1.5",
)  # fmt: skip

CubedHingeLoss = _janocha(
    "cubed_hinge", K.hinge_kernel, fixed={"power": 3}, npnet="cubed_hinge",
    title="Cubed hinge loss", math=r"\ell(o, y) = \sum_j \max(0, \tfrac12 - \hat y_j o_j)^3",
    formula="Σ_j max(0, ½ − ŷ_j o_j)³", seed=_SEED + " (hinge³)", example="1.875",
)  # fmt: skip

LogLoss = _on_p(
    "log", K.log_kernel, npnet="log",
    title="Log loss (cross-entropy) computed with log-softmax",
    math=r"\ell(o, y) = -\sum_j y_j \log p_j",
    notes=r"""With ``probability="sigmoid"`` it is the binary cross-entropy summed over classes,
    :math:`-\sum_j [y_j \log p_j + (1 - y_j)\log(1 - p_j)]` (see the module docstring
    for why not the literal substitution). With index targets and ``"softmax"`` it
    equals ``F.cross_entropy`` (class weights included). Also Berlyand et al. 2021, eq. 4.""",
    formula="−Σ_j y_j log p_j", seed=_SEED + " (log)",
    example="1.0909", example_kwargs={"weight": [1.0, 1.0, 2.0]},
)  # fmt: skip

SquaredLogLoss = _on_p(
    "squared_log", K.squared_log_kernel, npnet="squared_log",
    title="Squared log loss",
    math=r"\ell(o, y) = \sum_j (y_j \log p_j)^2 \quad (= (\log p_c)^2 \text{ one-hot})",
    notes=r"""The seed's table prints a leading minus sign: a typo, since it would reward
    confident wrong answers. With ``probability="sigmoid"`` each class is a binary
    problem: :math:`\sum_j [(y_j \log p_j)^2 + ((1-y_j)\log(1-p_j))^2]`.""",
    formula="Σ_j (y_j log p_j)²", seed=_SEED + " (log², sign typo fixed)", example="1.2179",
)  # fmt: skip

TanimotoLoss = _on_p(
    "tanimoto", K.tanimoto_kernel, npnet="tanimoto",
    title="Tanimoto loss; values lie in [-1, 0]",
    math=r"\ell(o, y) = -\frac{\sum_j p_j y_j}{\|p\|^2 + \|y\|^2 - \sum_j p_j y_j}",
    formula="−p·y / (‖p‖² + ‖y‖² − p·y)", seed=_SEED + " (Tanimoto)", example="-0.5654",
)  # fmt: skip

CauchySchwarzLoss = _on_p(
    "cauchy_schwarz", K.cauchy_schwarz_kernel, npnet="cauchy_schwarz",
    title="Cauchy-Schwarz divergence; non-negative",
    math=r"\ell(o, y) = -\log\frac{\sum_j p_j y_j}{\|p\|_2 \|y\|_2}"
    r" \quad (= -\log p_c + \tfrac12 \log\|p\|^2 \text{ for one-hot } y)",
    notes=r"""The identity is Proposition 3. With the Rényi quadratic entropy
    :math:`H_2(p) = -\log\|p\|^2` it reads :math:`-\log p_c - \tfrac12 H_2(p)`: log loss
    *minus* half the Rényi entropy, so the loss rewards low-entropy (peaked) predictions.
    The paper says "regularised by half the Rényi quadratic entropy", a sign slip: its
    own formula :math:`-\log p_c + \tfrac12\log\|p\|^2` has the minus. Computed in the
    log domain (see :func:`losslab.losses.kernels.cauchy_schwarz_kernel`).""",
    formula="−log(p·y / (‖p‖ ‖y‖))", seed=_SEED + " (D_CS), Prop. 3",
    example="0.4419", example_kwargs={"probability": "sigmoid"},
)  # fmt: skip

JANOCHA_LOSSES: dict[str, type[ClassificationLoss]] = {
    cls.definition.name: cls  # type: ignore[attr-defined]
    for cls in (
        L1Loss, L2Loss, ExpectationLoss, RegularisedExpectationLoss, ChebyshevLoss, HingeLoss,
        SquaredHingeLoss, CubedHingeLoss, LogLoss, SquaredLogLoss, TanimotoLoss,
        CauchySchwarzLoss,
    )
}  # fmt: skip
