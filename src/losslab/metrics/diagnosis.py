"""Bias / variance diagnosis from the training and development errors.

Seed: lecture notes 2018, section 6.2 "Bias and Variance", Table 1:

* M1: train 1 %, dev 11 % -> high variance
* M2: train 15 %, dev 16 % -> high bias
* M3: train 15 %, dev 30 % -> high bias and high variance
* M4: train 0.5 %, dev 1 % -> low bias and low variance

The table assumes a Bayes (human-level) error of 0 %; with blurry data the bias is
measured against the Bayes error instead ("avoidable bias").
"""

from __future__ import annotations

from dataclasses import dataclass

from losslab.metrics._inputs import real

__all__ = ["BiasVarianceDiagnosis", "bias_variance_diagnosis"]

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
        avoidable_bias: ``train_error - bayes_error``.
        variance: ``dev_error - train_error``.
        train_error, dev_error, bayes_error, tol: the inputs.
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

    @property
    def high_bias(self) -> bool:
        """``avoidable_bias > tol``."""
        return self.avoidable_bias > self.tol

    @property
    def high_variance(self) -> bool:
        """``variance > tol``."""
        return self.variance > self.tol

    def __str__(self) -> str:
        text = (
            f"{self.diagnosis}: train error {self.train_error:.2%}, dev error "
            f"{self.dev_error:.2%}, Bayes error {self.bayes_error:.2%} -> avoidable bias "
            f"{self.avoidable_bias:.2%}, variance {self.variance:.2%} (tolerance {self.tol:.2%})"
        )
        return text + (f"; try: {', '.join(self.advice)}" if self.advice else "")


def bias_variance_diagnosis(
    train_error: float, dev_error: float, bayes_error: float = 0.0, tol: float = 0.05
) -> BiasVarianceDiagnosis:
    """Classify a model into one of the four cases of the lecture notes' Table 1.

    .. math::
        \\text{bias} = e_{train} - e_{Bayes}, \\qquad
        \\text{variance} = e_{dev} - e_{train}

    Bias is high when ``bias > tol``, variance is high when ``variance > tol``. With the
    default ``tol = 0.05`` the notes' four models M1 - M4 get the notes' diagnoses (any
    tol in [0.01, 0.10) does). Seed: lecture notes 2018, section 6.2.

    Args:
        train_error: training-set error, a fraction in [0, 1] (not a percentage).
        dev_error: development-set error, a fraction in [0, 1].
        bayes_error: the lowest achievable (e.g. human-level) error, in [0, 1] (default 0,
            the notes' assumption).
        tol: how large a gap counts as "high", in [0, 1] (default 0.05, five points).

    Returns:
        A :class:`BiasVarianceDiagnosis` with the case and the numbers behind it.
    """
    hint = " (errors are fractions: divide percentages by 100)"
    train_error = real(train_error, "train_error" + hint, low=0.0, high=1.0)
    dev_error = real(dev_error, "dev_error" + hint, low=0.0, high=1.0)
    bayes_error = real(bayes_error, "bayes_error" + hint, low=0.0, high=1.0)
    tol = real(tol, "tol", low=0.0, high=1.0)
    bias, variance = train_error - bayes_error, dev_error - train_error
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
    )
