"""Models of the seeds, the model stack (M models as one), and the parameter scale R.

Registry ``MODELS`` maps a name to a factory; :func:`get_model` builds one by name and
:func:`for_data` builds one sized for a dataset (sample shape, number of classes).
Every factory takes ``init=`` (default "he") and ``seed=`` / ``generator=`` and draws
its weights only from that generator: the same seed gives the same initial weights,
whatever loss or optimizer the model is then trained with.

:func:`stack_models` runs M models of one architecture as one batched computation
(:class:`ModelStack`), the engine of loss x seed grids.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from losslab.errors import LosslabError
from losslab.models.batched import ModelStack, stack_models
from losslab.models.convnets import (
    MNIST1DCNN,
    JanochaConvNet,
    LeNet5,
    VGGSmall,
    janocha_convnet,
    lenet5,
    mnist1d_cnn,
    vgg_small,
)
from losslab.models.mlp import MLP, MNIST1DMLP, initialise_, make_generator, mlp, mnist1d_mlp
from losslab.models.scale import parameter_scale
from losslab.registry import build, resolve

MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "janocha_convnet": janocha_convnet,
    "lenet5": lenet5,
    "vgg_small": vgg_small,
    "mnist1d_mlp": mnist1d_mlp,
    "mnist1d_cnn": mnist1d_cnn,
}


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` with the factory's keyword arguments.

    Unknown names and wrong keywords raise a LosslabError listing the valid ones.

    Args:
        name: a key of :data:`MODELS` (case-insensitive, ``-`` read as ``_``).
        **kwargs: the factory's arguments (see each factory; sizes other than mlp's
            in_features default to the seeds' CIFAR-10 / MNIST-1D shapes, ``seed`` to 0).
            :func:`for_data` fills the sizes from a dataset instead.

    Returns:
        The initialised model, input (N, ...) -> logits (N, C).

    Example:
        >>> net = get_model("mnist1d_cnn", seed=0)
        >>> net(torch.zeros(100, 40)).shape
        torch.Size([100, 10])
    """
    return build(MODELS, name, "model", **kwargs)


def _flat(shape: tuple[int, ...]) -> dict[str, int] | None:
    return {"in_features": math.prod(shape)}


def _image(minimum: int) -> Callable[[tuple[int, ...]], dict[str, int] | None]:
    def sizes(shape: tuple[int, ...]) -> dict[str, int] | None:
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or shape[1] != shape[2] or shape[1] < minimum:
            return None
        return {"in_channels": shape[0], "image_size": shape[1]}

    return sizes


def _signal(shape: tuple[int, ...]) -> dict[str, int] | None:
    if len(shape) == 2 and shape[0] == 1:
        shape = shape[1:]
    return {"length": shape[0]} if len(shape) == 1 and shape[0] >= 8 else None


# How each model reads one sample: (the factory's size arguments for a sample shape, or
# None when the model cannot read it; the accepted shapes in words, for error messages).
_INPUTS: dict[str, tuple[Callable[[tuple[int, ...]], dict[str, int] | None], str]] = {
    "mlp": (_flat, "any shape (flattened to D = prod(shape) features)"),
    "mnist1d_mlp": (_flat, "any shape (flattened to D = prod(shape) features)"),
    "janocha_convnet": (_image(4), "square images (C, S, S) or (S, S), S >= 4"),
    "lenet5": (_image(16), "square images (C, S, S) or (S, S), S >= 16"),
    "vgg_small": (_image(1), "square images (C, S, S) or (S, S)"),
    "mnist1d_cnn": (_signal, "1-D signals (L,) or (1, L), L >= 8"),
}


def _sample_shape(input_shape: Any) -> tuple[int, ...]:
    shape = tuple(input_shape) if isinstance(input_shape, Sequence) else None
    if (
        not shape
        or isinstance(input_shape, str)
        or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in shape)
    ):
        raise LosslabError(
            f"input_shape must be the shape of ONE sample as a tuple of positive integers, "
            f"e.g. (2,), (1, 28, 28) or (40,), got {input_shape!r}"
        )
    return tuple(int(s) for s in shape)


def models_for(input_shape: Sequence[int]) -> list[str]:
    """Names of the registered models that can read samples of shape ``input_shape``.

    Args:
        input_shape: the shape of one sample, without the batch dimension, e.g. (3, 32, 32).
    """
    shape = _sample_shape(input_shape)
    return [name for name in MODELS if name in _INPUTS and _INPUTS[name][0](shape) is not None]


def for_data(name: str, input_shape: Sequence[int], num_classes: int, **kwargs: Any) -> nn.Module:
    """Build model ``name`` sized for a dataset: its sample shape and number of classes.

    The sample shape fills the factory's size arguments: ``mlp`` / ``mnist1d_mlp``
    ``in_features = prod(shape)``; ``janocha_convnet`` / ``lenet5`` / ``vgg_small``
    ``in_channels, image_size`` from (C, S, S), or (S, S) for grey images;
    ``mnist1d_cnn`` ``length`` from (L,) or (1, L). ``num_classes`` becomes ``classes``.
    Every other keyword (hidden, activation, dropout, batchnorm, bias, init, seed,
    generator, ...) goes to the factory unchanged.

    Args:
        name: a name of :data:`MODELS`.
        input_shape: the shape of one sample, without the batch dimension.
        num_classes: C >= 2.
        **kwargs: the factory's other keyword arguments (defaults: the factory's).

    Returns:
        The initialised model: input (N, *input_shape), output (N, C).

    Raises:
        LosslabError: unknown model, a shape the model cannot read (the message lists
            the models that can), size arguments given twice, or a keyword the factory
            does not take.

    Example:
        >>> net = for_data("lenet5", (1, 28, 28), 10, seed=0)
        >>> net(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 10])
    """
    key, _ = resolve(MODELS, name, "model")
    shape = _sample_shape(input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise LosslabError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if key not in _INPUTS:
        raise LosslabError(
            f"for_data does not know how model {key!r} reads its input; build it with "
            f"get_model({key!r}, ...) and its own size arguments"
        )
    sizes, accepted = _INPUTS[key]
    derived = sizes(shape)
    if derived is None:
        fitting = ", ".join(models_for(shape)) or "none"
        raise LosslabError(
            f"model {key!r} cannot read samples of shape {shape}: it takes {accepted}. "
            f"Models that fit this shape: {fitting}"
        )
    derived["classes"] = num_classes
    twice = sorted(set(derived) & set(kwargs))
    if twice:
        raise LosslabError(
            f"for_data sets {', '.join(twice)} from the data (input_shape={shape}, "
            f"num_classes={num_classes}); drop {'it' if len(twice) == 1 else 'them'} "
            "from the keyword arguments or call get_model directly"
        )
    return build(MODELS, key, "model", **derived, **kwargs)


__all__ = [
    "MLP",
    "MNIST1DCNN",
    "MNIST1DMLP",
    "MODELS",
    "JanochaConvNet",
    "LeNet5",
    "ModelStack",
    "VGGSmall",
    "for_data",
    "get_model",
    "initialise_",
    "janocha_convnet",
    "lenet5",
    "make_generator",
    "mlp",
    "mnist1d_cnn",
    "mnist1d_mlp",
    "models_for",
    "parameter_scale",
    "stack_models",
    "vgg_small",
]
