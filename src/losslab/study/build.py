"""What every engine's cell trainer shares: the model a cell names, and a failure's line.

Both the torch stacks (:mod:`losslab.study.executors`) and the NumPy cells
(:mod:`losslab.study.npnet_cells`, whose initial weights are the torch model's) build
their models here, so the two engines start from the same weights.
"""

from __future__ import annotations

import inspect
import os
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from losslab.errors import LosslabError

if TYPE_CHECKING:
    from torch import nn


def takes_data_shape(factory: Callable[..., Any]) -> bool:
    """A (user) model factory that sizes itself from ``input_shape`` and ``num_classes``."""
    params = inspect.signature(factory).parameters
    return "input_shape" in params and "num_classes" in params


def build_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, **kwargs: Any
) -> nn.Module:
    """Model ``name`` for samples of ``input_shape`` and ``num_classes`` classes:
    :func:`losslab.models.for_data`, or the factory itself where it takes the data shape
    (plugins, :mod:`losslab.plugins`)."""
    from losslab.models import MODELS, for_data
    from losslab.registry import lookup

    factory = lookup(MODELS, name, "model")
    if takes_data_shape(factory):
        return factory(input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)
    return for_data(name, input_shape, num_classes, **kwargs)


def one_line(err: BaseException) -> str:
    """``err`` as one line of at most 1000 characters, for a stored outcome; an
    unexpected error (not a LosslabError) names its type and where it was raised."""
    text = " ".join(str(err).split()) or repr(err)
    if not isinstance(err, LosslabError):
        frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
        where = f" (at {os.path.basename(frame.filename)}:{frame.lineno})" if frame else ""
        text = f"{type(err).__name__}: {text}{where}"
    return text[:1000]
