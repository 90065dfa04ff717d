"""``losslab.functional``: every stateless loss as a function, like ``torch.nn.functional``.

See :mod:`losslab.losses.functional` (this module re-exports its public functions)::

    import losslab.functional as LF
    LF.hinge(logits, labels, reduction="sum")
"""

from losslab.losses.functional import *  # noqa: F403  (the one list of names lives there)
from losslab.losses.functional import __all__  # noqa: F401
