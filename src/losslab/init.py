"""The weight initialisers, as ``torch.nn.init``: each draws only from the generator passed in.

Seed: lecture notes 2018, section 7 "Weight initialization"; slides, "Initialization for
SELU"; Daza assignment (``N(0, 1e-4^2)``). :data:`INITIALIZERS` maps a name to its class,
an instance is called as ``scheme(tensor, generator)``; :func:`init_` fills a weight in
place. :func:`losslab.activations.recommended_init` names the one matched to an activation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from losslab.checks import check_real
from losslab.errors import LosslabError
from losslab.registry import build

__all__ = [
    "INITIALIZERS",
    "He",
    "LeCun",
    "Normal",
    "TorchDefault",
    "Xavier",
    "fan_in_and_fan_out",
    "get_initializer",
    "init_",
]


def fan_in_and_fan_out(tensor: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight: Linear (out, in) or Conv (out, in, *kernel).

    ``fan_in = in * prod(kernel)``, ``fan_out = out * prod(kernel)``.
    """
    if tensor.dim() < 2:
        raise LosslabError(
            f"initialisers need a weight of shape (out, in) or (out, in, *kernel), got a "
            f"tensor of shape {tuple(tensor.shape)}; initialise biases separately (e.g. zeros)"
        )
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


class He:
    """He (Kaiming) normal initialisation for ReLU-like units.

    .. math:: w \\sim \\mathcal{N}(0,\\ 2 / n), \\quad n = \\text{fan\\_in (or fan\\_out)}

    Seed: lecture notes 2018, "Weight initialization": ``N(0, 1) sqrt(2 / n^{[l-1]})``.

    Args:
        mode: ``"fan_in"`` (default, preserves forward variance) or ``"fan_out"``.

    Shape: weight (out, in) or (out, in, *kernel); fan_in = in * prod(kernel).
    """

    def __init__(self, mode: str = "fan_in") -> None:
        if mode not in ("fan_in", "fan_out"):
            raise LosslabError(f"he: mode must be 'fan_in' or 'fan_out', got {mode!r}")
        self.mode = mode

    def __call__(self, tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        fan_in, fan_out = fan_in_and_fan_out(tensor)
        fan = fan_in if self.mode == "fan_in" else fan_out
        return nn.init.normal_(tensor, 0.0, math.sqrt(2.0 / fan), generator=generator)


class Xavier:
    """Xavier (Glorot) initialisation for tanh / sigmoid units.

    .. math::
        \\text{normal: } w \\sim \\mathcal{N}\\left(0, \\frac{2 g^2}{n_{in} + n_{out}}\\right),
        \\qquad \\text{uniform: } w \\sim U(-a, a),\\ a = g\\sqrt{\\frac{6}{n_{in} + n_{out}}}

    Both have variance ``2 g^2 / (fan_in + fan_out)`` (Glorot & Bengio 2010). The lecture
    notes call ``N(0, 1/n^{[l-1]})`` "Xavier initialization" for tanh; that fan-in-only
    form is :class:`LeCun` here, and equals Glorot's when fan_in = fan_out.

    Args:
        distribution: ``"normal"`` (default) or ``"uniform"``.
        gain: scale factor ``g`` (default 1).

    Shape: weight (out, in) or (out, in, *kernel); fan_in = in * prod(kernel).
    """

    def __init__(self, distribution: str = "normal", gain: float = 1.0) -> None:
        if distribution not in ("normal", "uniform"):
            raise LosslabError(
                f"xavier: distribution must be 'normal' or 'uniform', got {distribution!r}"
            )
        self.distribution = distribution
        self.gain = check_real("xavier: gain", gain, 0.0, low_open=True)

    def __call__(self, tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        fan_in_and_fan_out(tensor)
        if self.distribution == "normal":
            return nn.init.xavier_normal_(tensor, self.gain, generator=generator)
        return nn.init.xavier_uniform_(tensor, self.gain, generator=generator)


class LeCun:
    """LeCun normal initialisation (for SELU).

    .. math:: w \\sim \\mathcal{N}(0,\\ 1 / \\text{fan\\_in})

    Seed: slides, "Initialization for SELU": ``N(0, (1/sqrt(in_channels k^2))^2)`` for
    Conv2d and ``N(0, (1/sqrt(in_features))^2)`` for Linear; the notes print the unit
    normal as ``N(1, 0)`` (mean 0, variance 1 is meant).

    Shape: weight (out, in) or (out, in, *kernel); fan_in = in * prod(kernel).
    """

    def __call__(self, tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        fan_in, _ = fan_in_and_fan_out(tensor)
        return nn.init.normal_(tensor, 0.0, 1.0 / math.sqrt(fan_in), generator=generator)


class Normal:
    """A fixed-width normal initialisation, independent of the layer size.

    .. math:: w \\sim \\mathcal{N}(0,\\ \\mathrm{std}^2)

    Seed: Daza assignment, the NumPy MLP's ``N(0, 1e-4^2)`` weights.

    Args:
        std: standard deviation, > 0 (default 1e-4, the assignment's).

    Shape: weight (out, in) or (out, in, *kernel); fan_in = in * prod(kernel).
    """

    def __init__(self, std: float = 1e-4) -> None:
        self.std = check_real("normal: std", std, 0.0, low_open=True)

    def __call__(self, tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        fan_in_and_fan_out(tensor)
        return nn.init.normal_(tensor, 0.0, self.std, generator=generator)


class TorchDefault:
    """PyTorch's default weight initialisation of ``nn.Linear`` / ``nn.ConvNd``.

    .. math::
        w \\sim U\\left(-\\frac{1}{\\sqrt{\\text{fan\\_in}}},
        \\frac{1}{\\sqrt{\\text{fan\\_in}}}\\right)

    (``kaiming_uniform_(a=sqrt(5))``, variance ``1 / (3 fan_in)``), the baseline of
    code that never chooses an initialiser.

    Shape: weight (out, in) or (out, in, *kernel); fan_in = in * prod(kernel).
    """

    def __call__(self, tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        fan_in_and_fan_out(tensor)
        return nn.init.kaiming_uniform_(tensor, a=math.sqrt(5), generator=generator)


#: Initialiser name -> class; an instance is called as ``scheme(tensor, generator)``.
INITIALIZERS: dict[str, Callable[..., Callable[..., torch.Tensor]]] = {
    "he": He,
    "xavier": Xavier,
    "lecun": LeCun,
    "normal": Normal,
    "torch": TorchDefault,
}


def get_initializer(name: str, **kwargs: Any) -> Callable[..., torch.Tensor]:
    """An initialiser by registry name, e.g. ``get_initializer("xavier", distribution="uniform")``;
    call it as ``scheme(tensor, generator)``."""
    return build(INITIALIZERS, name, "initializer", **kwargs)


def init_(
    tensor: torch.Tensor,
    scheme: str,
    generator: torch.Generator,
    **kwargs: Any,
) -> torch.Tensor:
    """Fill a weight in place with the initialiser ``scheme`` of :data:`INITIALIZERS`.

    Args:
        tensor: a Linear weight (out, in) or a Conv weight (out, in, *kernel); fan_in is
            ``in * prod(kernel)``. May be an ``nn.Parameter`` (filled without autograd).
        scheme: "he", "xavier", "lecun", "normal" or "torch".
        generator: the only source of randomness (required: library code never draws from
            PyTorch's global generator). The same generator state gives the same weights.
        **kwargs: the scheme's options (``mode``, ``distribution``, ``gain``, ``std``).

    Returns:
        ``tensor``.

    Example:
        >>> w = torch.empty(200, 784)
        >>> _ = init_(w, "he", generator=torch.Generator().manual_seed(0))
    """
    if not isinstance(generator, torch.Generator):
        raise LosslabError(
            f"init_: generator must be a torch.Generator, got {type(generator).__name__}; "
            "pass e.g. torch.Generator().manual_seed(0)"
        )
    initializer = get_initializer(scheme, **kwargs)
    with torch.no_grad():
        return initializer(tensor, generator)
