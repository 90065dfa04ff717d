"""Models of the seeds, the model stack (M models as one), and the parameter scale R.

Registry ``MODELS`` maps a name to a factory; :func:`get_model` builds one by name.
Every factory takes ``init=`` (default "he") and ``seed=`` / ``generator=`` and draws
its weights only from that generator: the same seed gives the same initial weights,
whatever loss or optimizer the model is then trained with.

:func:`stack_models` runs M models of one architecture as one batched computation
(:class:`ModelStack`), the engine of loss x seed grids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

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
from losslab.registry import build

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

    Example:
        >>> net = get_model("mnist1d_cnn", seed=0)
        >>> net(torch.zeros(100, 40)).shape
        torch.Size([100, 10])
    """
    return build(MODELS, name, "model", **kwargs)


__all__ = [
    "MLP",
    "MNIST1DCNN",
    "MNIST1DMLP",
    "MODELS",
    "JanochaConvNet",
    "LeNet5",
    "ModelStack",
    "VGGSmall",
    "get_model",
    "initialise_",
    "janocha_convnet",
    "lenet5",
    "make_generator",
    "mlp",
    "mnist1d_cnn",
    "mnist1d_mlp",
    "parameter_scale",
    "stack_models",
    "vgg_small",
]
