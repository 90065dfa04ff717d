r"""Every stateless loss as a function (``torch.nn.functional`` style).

::

    import losslab.functional as LF
    LF.cauchy_schwarz(logits, labels)                      # a 0-dim tensor
    LF.gce(logits, labels, q=0.5, reduction="none")        # (N,)

Each function takes logits (N, C) and a target: (N,) int64 class indices or (N, C)
probability rows; keyword-only ``reduction="mean"|"sum"|"none"``, ``weight=`` (C,) class
weights (as ``F.cross_entropy``), ``validate=True|False|"full"`` (see
:class:`~losslab.losses.ClassificationLoss`) and the loss's own hyper-parameters. Each is
:func:`~losslab.losses.definition.functional_form` of its module class, so both run the
same kernel (:mod:`losslab.losses.kernels`) through the same code path and give identical
numbers; ``functional_form(LOSSES[name])`` gives the function of a plugin's loss too.
"""

from __future__ import annotations

from losslab.losses import janocha, robust
from losslab.losses.definition import functional_form

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

l1 = functional_form(janocha.L1Loss)
l2 = functional_form(janocha.L2Loss)
expectation = functional_form(janocha.ExpectationLoss)
regularised_expectation = functional_form(janocha.RegularisedExpectationLoss)
chebyshev = functional_form(janocha.ChebyshevLoss)
hinge = functional_form(janocha.HingeLoss)
squared_hinge = functional_form(janocha.SquaredHingeLoss)
cubed_hinge = functional_form(janocha.CubedHingeLoss)
log = functional_form(janocha.LogLoss)
squared_log = functional_form(janocha.SquaredLogLoss)
tanimoto = functional_form(janocha.TanimotoLoss)
cauchy_schwarz = functional_form(janocha.CauchySchwarzLoss)
alpha = functional_form(robust.AlphaLoss)
gce = functional_form(robust.GCELoss)
truncated_log = functional_form(robust.TruncatedLogLoss)
