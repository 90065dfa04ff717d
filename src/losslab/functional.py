"""``losslab.functional``: every stateless loss as a function, like ``torch.nn.functional``.

See :mod:`losslab.losses.functional` (this module re-exports its public functions)::

    import losslab.functional as LF
    LF.hinge(logits, labels, reduction="sum")
"""

from losslab.losses.functional import (
    alpha,
    cauchy_schwarz,
    chebyshev,
    cubed_hinge,
    expectation,
    gce,
    hinge,
    l1,
    l2,
    log,
    regularised_expectation,
    squared_hinge,
    squared_log,
    tanimoto,
    truncated_log,
)

__all__ = [
    "alpha",
    "cauchy_schwarz",
    "chebyshev",
    "cubed_hinge",
    "expectation",
    "gce",
    "hinge",
    "l1",
    "l2",
    "log",
    "regularised_expectation",
    "squared_hinge",
    "squared_log",
    "tanimoto",
    "truncated_log",
]
