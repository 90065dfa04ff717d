"""Bias / variance diagnosis from the training and development errors.

Seed: lecture notes 2018, section 6.2 "Bias and Variance", Table 1:

* M1: train 1 %, dev 11 % -> high variance
* M2: train 15 %, dev 16 % -> high bias
* M3: train 15 %, dev 30 % -> high bias and high variance
* M4: train 0.5 %, dev 1 % -> low bias and low variance

The table assumes a Bayes (human-level) error of 0 %; with blurry data the bias is
measured against the Bayes error instead ("avoidable bias"). Injected label noise is such
a case: on training labels of which a share ``rate`` was flipped, the best a classifier of
the inputs can score is :func:`reachable_accuracy` (e.g. ``1 - rate``), so the Bayes error
of the noisy training set is ``1 - reachable_accuracy``, while a clean dev or test set
keeps its own (0). :func:`bias_variance_diagnosis` takes the two references apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from losslab.errors import LosslabError
from losslab.metrics._inputs import real

__all__ = ["BiasVarianceDiagnosis", "bias_variance_diagnosis", "reachable_accuracy"]

# The lecture notes' strategies, section 6.2.
_REDUCE_BIAS = (
    "bigger network (more layers / units, hyperparameter search)",
    "train longer",
    "another optimisation algorithm",
    "different architecture",
)
_REDUCE_VARIANCE = ("more training data", "regularisation", "different architecture")


@dataclass(frozen=True)
class BiasVarianceDiagnosis:
    """The outcome of :func:`bias_variance_diagnosis`.

    Attributes:
        diagnosis: "high bias", "high variance", "high bias and high variance" or
            "low bias and low variance" (the lecture notes' Table 1 cases).
        avoidable_bias: ``train_error - bayes_error`` (negative when the model fits the
            noise of its training labels beyond what the inputs explain).
        variance: ``(dev_error - dev_bayes_error) - (train_error - bayes_error)``, the
            notes' ``dev_error - train_error`` when both sets share one Bayes error.
        train_error, dev_error, bayes_error, dev_bayes_error, tol: the inputs
            (``dev_bayes_error`` defaults to ``bayes_error``).
        advice: the notes' strategies for what is high (empty when nothing is).
    """

    diagnosis: str
    avoidable_bias: float
    variance: float
    train_error: float
    dev_error: float
    bayes_error: float
    tol: float
    advice: tuple[str, ...]
    dev_bayes_error: float | None = None

    @property
    def high_bias(self) -> bool:
        """``avoidable_bias > tol``."""
        return self.avoidable_bias > self.tol

    @property
    def high_variance(self) -> bool:
        """``variance > tol``."""
        return self.variance > self.tol

    def __str__(self) -> str:
        dev_bayes = self.bayes_error if self.dev_bayes_error is None else self.dev_bayes_error
        bayes = (
            f"Bayes error {self.bayes_error:.2%}"
            if dev_bayes == self.bayes_error
            else f"Bayes error {self.bayes_error:.2%} (train), {dev_bayes:.2%} (dev)"
        )
        text = (
            f"{self.diagnosis}: train error {self.train_error:.2%}, dev error "
            f"{self.dev_error:.2%}, {bayes} -> avoidable bias "
            f"{self.avoidable_bias:.2%}, variance {self.variance:.2%} (tolerance {self.tol:.2%})"
        )
        return text + (f"; try: {', '.join(self.advice)}" if self.advice else "")


def reachable_accuracy(rate: float, kind: str = "symmetric", num_classes: int | None = None
                       ) -> float:
    """The best accuracy a classifier of the inputs can reach on labels with injected noise.

    Of the labels, a share ``rate`` was flipped (:func:`losslab.data.label_noise`); with
    clean labels that the inputs determine (the lecture notes' Bayes error of 0), the best
    prediction for an input is the most frequent of its noisy labels:

    * ``"symmetric"``: the clean class keeps ``1 - rate``, each of the C - 1 others gets
      ``rate / (C - 1)``: ``max(1 - rate, rate / (C - 1))``, which is ``1 - rate`` for any
      C >= 2 when rate <= 1/2 (and whenever C is not given: then the clean class is
      assumed to stay the most frequent, i.e. rate <= (C - 1) / C);
    * ``"pairflip"``: ``c -> c + 1``: the clean class keeps ``1 - rate``, the next one gets
      ``rate``: ``max(1 - rate, rate)``.

    A model scoring above it on its training labels has memorised flipped labels. Seed:
    lecture notes 2018, section 6.2 (the Bayes error as the reference of the bias).

    Args:
        rate: share of flipped labels, in [0, 1).
        kind: ``"symmetric"`` (default) or ``"pairflip"``.
        num_classes: C >= 2, if known.

    Returns:
        The reachable accuracy in (0, 1]; its complement is the Bayes error of the noisy set.
    """
    rate = real(rate, "label noise rate", low=0.0, high=1.0)
    if rate >= 1.0:
        raise LosslabError("label noise rate must be below 1")
    if kind == "pairflip":
        return max(1.0 - rate, rate)
    if kind != "symmetric":
        raise LosslabError(f"unknown label noise kind {kind!r}; choose symmetric or pairflip")
    if num_classes is None:
        return 1.0 - rate
    c = int(num_classes)
    if c < 2:
        raise LosslabError(f"num_classes must be at least 2, got {num_classes!r}")
    return max(1.0 - rate, rate / (c - 1))


def bias_variance_diagnosis(
    train_error: float,
    dev_error: float,
    bayes_error: float = 0.0,
    tol: float = 0.05,
    dev_bayes_error: float | None = None,
) -> BiasVarianceDiagnosis:
    """Classify a model into one of the four cases of the lecture notes' Table 1.

    .. math::
        \\text{bias} = e_{train} - e_{Bayes}, \\qquad
        \\text{variance} = (e_{dev} - e^{dev}_{Bayes}) - (e_{train} - e_{Bayes})

    Bias is high when ``bias > tol``, variance is high when ``variance > tol``. With one
    Bayes error for both sets the variance is the notes' ``e_dev - e_train``; with label
    noise on the training set only, its Bayes error is ``1 - reachable_accuracy(rate)``
    and the clean dev set's is 0, and the variance compares the two excess errors (a
    model that learned the clean labels exactly scores train error = rate, dev error 0:
    no bias, no variance). With the default ``tol = 0.05`` the notes' four models M1 - M4
    get the notes' diagnoses (any tol in [0.01, 0.10) does). Seed: lecture notes 2018,
    section 6.2.

    Args:
        train_error: training-set error, a fraction in [0, 1] (not a percentage).
        dev_error: development-set error, a fraction in [0, 1].
        bayes_error: the lowest achievable (e.g. human-level) error, in [0, 1] (default 0,
            the notes' assumption).
        tol: how large a gap counts as "high", in [0, 1] (default 0.05, five points).
        dev_bayes_error: the development set's own Bayes error, in [0, 1] (default: the
            same as ``bayes_error``).

    Returns:
        A :class:`BiasVarianceDiagnosis` with the case and the numbers behind it.
    """
    hint = " (errors are fractions: divide percentages by 100)"
    train_error = real(train_error, "train_error" + hint, low=0.0, high=1.0)
    dev_error = real(dev_error, "dev_error" + hint, low=0.0, high=1.0)
    bayes_error = real(bayes_error, "bayes_error" + hint, low=0.0, high=1.0)
    tol = real(tol, "tol", low=0.0, high=1.0)
    dev_bayes = bayes_error if dev_bayes_error is None else real(
        dev_bayes_error, "dev_bayes_error" + hint, low=0.0, high=1.0)
    bias = train_error - bayes_error
    variance = (dev_error - dev_bayes) - bias
    high_bias, high_variance = bias > tol, variance > tol
    if high_bias and high_variance:
        diagnosis = "high bias and high variance"
    elif high_bias:
        diagnosis = "high bias"
    elif high_variance:
        diagnosis = "high variance"
    else:
        diagnosis = "low bias and low variance"
    advice = (_REDUCE_BIAS if high_bias else ()) + (_REDUCE_VARIANCE if high_variance else ())
    return BiasVarianceDiagnosis(
        diagnosis=diagnosis,
        avoidable_bias=bias,
        variance=variance,
        train_error=train_error,
        dev_error=dev_error,
        bayes_error=bayes_error,
        tol=tol,
        advice=tuple(dict.fromkeys(advice)),
        dev_bayes_error=dev_bayes,
    )
