"""What guessing scores: an accuracy bound that a classifier ignoring its input exceeds only
with a stated, tiny probability.

A classifier whose predictions do not depend on the inputs gets each of n test samples right
with probability at most the largest class frequency p0 (it does best by always naming the
most frequent class), independently across samples given its random choices, so its number
of correct answers is dominated by Binomial(n, p0). Its accuracy stays at or below the
(1 - failure) quantile of that binomial over n except with probability ``failure``: a run
above the bound learned something from its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import binom

FAILURE = 1e-9  # a test that asserts "learned" fails for a guesser once in 1e9 runs


def above_chance(labels: Sequence[int] | np.ndarray, failure: float = FAILURE) -> float:
    """The accuracy a guesser exceeds with probability < ``failure`` on test ``labels`` (n,)."""
    labels = np.asarray(labels)
    p0 = np.bincount(labels).max() / len(labels)
    return float(binom.ppf(1.0 - failure, len(labels), p0)) / len(labels)
