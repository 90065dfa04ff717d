"""Every activation of the seeds as a function + ``nn.Module`` pair.

Activations (seed: Mendez-Vazquez 2025 slides, "Activation Functions in Deep Learning";
lecture notes 2018, section 2). Each name of :data:`ACTIVATIONS` has

* a function ``name(x, **kwargs)`` working element-wise on a tensor of any shape, and
* an ``nn.Module`` class built with the same keyword arguments (``get_activation(name,
  **kwargs)``), whose ``forward`` calls that function.

Activations with trainable parameters (``prelu``, ``swish(trainable=True)``,
``adaptive_relu``) keep them as ``nn.Parameter`` so they join the optimizer through
``model.parameters()``; their functions take the parameter tensors as arguments. Their
per-channel parameters follow ``nn.PReLU``: channel dimension 1 of an (N, C, ...) input.

Each class carries ``recommended_init``, the initialiser matched to it
(:func:`recommended_init`); the initialisers themselves live in :mod:`losslab.init` (as
``torch.nn.init``), and are re-exported here.

Seed errata fixed here: the slides' piecewise-linear case formula is
discontinuous (we use ``clamp(x + 1/2, 0, 1)``); the slides print swish as
``x / (1 + exp(+beta x))`` (we use ``x * sigmoid(beta x)``); the notes print the
unit normal as ``N(1, 0)`` (mean 0, variance 1 is meant).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from losslab.checks import check_real
from losslab.errors import LosslabError
from losslab.init import (
    INITIALIZERS,
    He,
    LeCun,
    Normal,
    TorchDefault,
    Xavier,
    fan_in_and_fan_out,
    get_initializer,
    init_,
)
from losslab.registry import build, lookup

__all__ = [
    "ACTIVATIONS",
    "He",
    "LeCun",
    "Normal",
    "TorchDefault",
    "Xavier",
    "INITIALIZERS",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "ELU",
    "GELU",
    "AdaptiveReLU",
    "LeakyReLU",
    "PReLU",
    "PiecewiseLinear",
    "ReLU",
    "SELU",
    "Sigmoid",
    "Softplus",
    "Swish",
    "Tanh",
    "adaptive_relu",
    "elu",
    "fan_in_and_fan_out",
    "gelu",
    "get_activation",
    "get_initializer",
    "init_",
    "leaky_relu",
    "piecewise_linear",
    "prelu",
    "recommended_init",
    "relu",
    "selu",
    "sigmoid",
    "softplus",
    "swish",
    "tanh",
]

#: SELU constants of Klambauer et al. 2017 (the fixed point of mean 0, variance 1).
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def _channel_view(param: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Broadcast a shared (1,) or per-channel (C,) parameter against x of shape (N, C, ...)."""
    if param.numel() == 1:
        return param.reshape(())
    if x.dim() < 2 or x.shape[1] != param.numel():
        raise LosslabError(
            f"{kind}: {param.numel()} per-channel parameters need an input of shape "
            f"(N, {param.numel()}, ...), got {tuple(x.shape)}; use num_parameters=1 to "
            "share one parameter across channels"
        )
    return param.reshape((1, -1) + (1,) * (x.dim() - 2))


# --------------------------------------------------------------------------- functions
# Every function works element-wise: ``x`` has any shape (N, *) and the result has the same
# shape and dtype. The trainable units take their parameter tensors as arguments.


def sigmoid(x: torch.Tensor, a: float = 1.0) -> torch.Tensor:
    """Logistic sigmoid with slope ``a``: ``1 / (1 + exp(-a x))``.

    Seed: slides, "Sigmoid/Logistic function" eq. 2.

    Args:
        x: input, any shape (N, *).
        a: slope, > 0 (default 1).
    """
    return torch.sigmoid(check_real("sigmoid: a", a, 0.0, low_open=True) * x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent ``(e^x - e^-x) / (e^x + e^-x)``, any shape (N, *).

    Seed: lecture notes 2018, section 2, eq. 2.
    """
    return torch.tanh(x)


def relu(x: torch.Tensor) -> torch.Tensor:
    """Rectified linear unit ``max(0, x)``, any shape (N, *).

    Seed: slides, "Rectified Linear Unit"; lecture notes 2018, section 2.
    """
    return torch.relu(x)


def softplus(x: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """Smooth ReLU ``ln(1 + exp(k x)) / k``.

    Seed: slides, "With a smooth approximation (Softplus function)". Computed by
    ``F.softplus(beta=k)``, which returns ``x`` once ``k x > 20`` (the difference is below
    ``exp(-20) / k``) so large inputs never overflow.

    Args:
        x: input, any shape (N, *).
        k: sharpness, > 0 (default 1); ``k -> inf`` gives the ReLU.
    """
    return F.softplus(x, beta=check_real("softplus: k", k, 0.0, low_open=True))


def piecewise_linear(x: torch.Tensor) -> torch.Tensor:
    """Saturating linear unit ``clamp(x + 1/2, 0, 1)``, any shape (N, *).

    Seed: slides, "Piecewise-Linear Function" eq. 1, corrected: the slides' cases give
    ``x`` on ``(-1/2, 1/2)``, jumping at both ends; the continuous function with unit slope
    and saturation at 0 and 1 is the shifted clamp.
    """
    return torch.clamp(x + 0.5, 0.0, 1.0)


def leaky_relu(x: torch.Tensor, alpha: float = 0.01) -> torch.Tensor:
    """Leaky ReLU ``max(0, x) + alpha min(0, x)``.

    Seed: slides, "Leaky ReLU (2013)".

    Args:
        x: input, any shape (N, *).
        alpha: negative slope, >= 0 (default 0.01).
    """
    return F.leaky_relu(x, check_real("leaky_relu: alpha", alpha, 0.0))


def prelu(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Parametric ReLU ``x`` if ``x > 0`` else ``a x``, with trainable slopes ``a``.

    Seed: slides, "Parametric ReLU (PReLU, 2014)".

    Args:
        x: (N, C, *) or any shape when ``weight`` has one element.
        weight: the slopes ``a``, shape (1,) or (C,) (channel dimension 1, as ``nn.PReLU``).
    """
    return torch.where(x > 0, x, _channel_view(weight, x, "prelu") * x)


def elu(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Exponential linear unit ``x`` if ``x > 0`` else ``alpha (exp(x) - 1)``.

    Seed: slides, "Exponential Linear Units (ELUs)".

    Args:
        x: input, any shape (N, *).
        alpha: ``-alpha`` is the saturation value for ``x -> -inf``; > 0 (default 1).
    """
    return F.elu(x, check_real("elu: alpha", alpha, 0.0, low_open=True))


def selu(x: torch.Tensor) -> torch.Tensor:
    """Scaled ELU ``lambda * elu(x, alpha)``, any shape (N, *).

    ``lambda`` = :data:`SELU_LAMBDA` ~ 1.0507 and ``alpha`` = :data:`SELU_ALPHA` ~ 1.6733.
    Seed: slides, "Scaled Exponential Linear Unit (SELU, 2017)".
    """
    return F.selu(x)


def swish(x: torch.Tensor, beta: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Swish ``x * sigmoid(beta x)``; ``beta = 1`` is SiLU.

    Seed: slides, "Swish (2017)" (they print ``1 + exp(+beta x)``, a sign typo).

    Args:
        x: input, any shape (N, *).
        beta: >= 0 (default 1), or a trainable tensor of shape (1,).
    """
    if isinstance(beta, torch.Tensor):
        beta = beta.reshape(())
    else:
        beta = check_real("swish: beta", beta, 0.0)
    return x * torch.sigmoid(beta * x)


def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """Gaussian error linear unit ``x * Phi(x)`` (``Phi`` the standard normal CDF).

    Seed: slides, "Gaussian Error Linear Units (GELUs, 2018)".

    Args:
        x: input, any shape (N, *).
        approximate: ``"none"`` (exact, default) or ``"tanh"`` for
            ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    """
    if approximate not in ("none", "tanh"):
        raise LosslabError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return F.gelu(x, approximate=approximate)


def adaptive_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Adaptive ReLU ``max(alpha(x) x, x)`` with ``alpha(x) = sigmoid(w x + b)``.

    Because ``alpha(x)`` lies in (0, 1), the max is ``x`` for ``x > 0`` and
    ``alpha(x) x`` for ``x <= 0``: a leaky ReLU whose negative slope depends on the input.
    Seed: slides, "Adaptive ReLU (2018)"; see :class:`AdaptiveReLU` for our reading.

    Args:
        x: (N, C, *) or any shape when the parameters have one element.
        weight: ``w``, shape (1,) or (C,).
        bias: ``b``, shape (1,) or (C,).
    """
    slope = torch.sigmoid(
        _channel_view(weight, x, "adaptive_relu") * x + _channel_view(bias, x, "adaptive_relu")
    )
    return torch.where(x > 0, x, slope * x)


# --------------------------------------------------------------------------- modules


class _Activation(nn.Module):
    """Base class: the module calls its function with its options, in order.

    Attributes:
        function: the element-wise function of this unit (``sigmoid``, ``elu``, ...).
        options: the attributes passed to it after ``x`` (and shown by ``repr``).
        monotone: True when the unit is non-decreasing on R for its default arguments.
        recommended_init: the :data:`INITIALIZERS` name matched to the unit.
    """

    function: Callable[..., torch.Tensor]
    options: tuple[str, ...] = ()
    monotone: bool = True
    recommended_init: str = "he"

    def __init__(self) -> None:
        # an explicit empty signature, so that get_activation("relu", alpha=0.1) is
        # rejected instead of swallowed by nn.Module's (*args, **kwargs)
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x, *[getattr(self, name) for name in self.options])

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in self.options)


class Sigmoid(_Activation):
    """Logistic sigmoid with a slope parameter.

    .. math:: \\sigma_a(x) = \\frac{1}{1 + e^{-a x}}

    Seed: Mendez-Vazquez slides, "Sigmoid/Logistic function" eq. 2 (``a`` is the slope).

    Args:
        a: slope, > 0 (default 1).

    Shape: input any shape (N, *), output the same shape.
    """

    function = staticmethod(sigmoid)
    options = ("a",)
    recommended_init = "xavier"

    def __init__(self, a: float = 1.0) -> None:
        super().__init__()
        self.a = check_real("sigmoid: a", a, 0.0, low_open=True)


class Tanh(_Activation):
    """Hyperbolic tangent.

    .. math:: \\tanh(x) = \\frac{e^x - e^{-x}}{e^x + e^{-x}}

    Seed: lecture notes 2018, section 2, eq. 2 (zero-mean, so preferred over the sigmoid).

    Shape: input any shape (N, *), output the same shape.
    """

    function = staticmethod(tanh)
    recommended_init = "xavier"


class ReLU(_Activation):
    """Rectified linear unit.

    .. math:: \\mathrm{ReLU}(x) = \\max(0, x)

    Seed: slides, "Fixing the Problem, Rectified Linear Unit"; lecture notes section 2.

    Shape: input any shape (N, *), output the same shape.
    """

    function = staticmethod(relu)


class Softplus(_Activation):
    """Softplus, the smooth approximation of the ReLU.

    .. math:: \\mathrm{softplus}_k(x) = \\frac{1}{k} \\ln(1 + e^{k x})

    Seed: slides, "With a smooth approximation (Softplus function)". ``k -> inf`` gives
    the ReLU. Equal to ``torch.nn.Softplus(beta=k)``.

    Args:
        k: sharpness, > 0 (default 1).

    Shape: input any shape (N, *), output the same shape.
    """

    function = staticmethod(softplus)
    options = ("k",)

    def __init__(self, k: float = 1.0) -> None:
        super().__init__()
        self.k = check_real("softplus: k", k, 0.0, low_open=True)


class PiecewiseLinear(_Activation):
    """Piecewise-linear (saturating) unit with unit slope.

    .. math:: \\varphi(x) = \\min(1, \\max(0, x + 1/2))

    Seed: slides, "Piecewise-Linear Function" eq. 1. The slides' cases (1 for
    ``x >= 1/2``, ``x`` in between, 0 for ``x <= -1/2``) jump at both ends; this is the
    continuous reading.

    Shape: input any shape (N, *), output the same shape.
    """

    function = staticmethod(piecewise_linear)
    recommended_init = "xavier"


class LeakyReLU(_Activation):
    """Leaky ReLU with a fixed negative slope.

    .. math:: \\mathrm{LReLU}(x) = \\max(0, x) + \\alpha \\min(0, x)

    Seed: slides, "Leaky ReLU (2013)"; lecture notes section 2.

    Args:
        alpha: negative slope, >= 0 (default 0.01).

    Shape: input any shape (N, *), output the same shape.
    """

    function = staticmethod(leaky_relu)
    options = ("alpha",)

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = check_real("leaky_relu: alpha", alpha, 0.0)


class PReLU(_Activation):
    """Parametric ReLU: a leaky ReLU whose slope is trained by backpropagation.

    .. math:: f(x) = x \\text{ if } x > 0 \\text{ else } a x

    Seed: slides, "Parametric ReLU (PReLU, 2014)". Same as ``torch.nn.PReLU``.

    Args:
        num_parameters: 1 (one slope shared by all units, default) or C (one per channel,
            channel dimension 1).
        init: initial slope ``a`` (default 0.25).

    Attributes:
        weight: trainable slopes, shape (num_parameters,).

    Shape: input (N, C, *) (any shape when ``num_parameters = 1``), output the same shape.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25) -> None:
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int):
            raise LosslabError(f"prelu: num_parameters must be an integer, got {num_parameters!r}")
        if num_parameters < 1:
            raise LosslabError(f"prelu: num_parameters must be >= 1, got {num_parameters}")
        init = check_real("prelu: init", init)
        self.weight = nn.Parameter(torch.full((num_parameters,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.weight.numel()}"


class ELU(_Activation):
    """Exponential linear unit.

    .. math:: f(x) = x \\text{ if } x > 0 \\text{ else } \\alpha (e^x - 1)

    Seed: slides, "Exponential Linear Units (ELUs)" (Clevert et al.; ``0 < alpha``):
    negative values push mean activations towards zero, like the natural gradient.

    Args:
        alpha: saturation value for ``x -> -inf`` is ``-alpha``; > 0 (default 1).

    Shape: input any shape (N, *), output the same shape.
    """

    function = staticmethod(elu)
    options = ("alpha",)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = check_real("elu: alpha", alpha, 0.0, low_open=True)


class SELU(_Activation):
    """Scaled exponential linear unit (self-normalising).

    .. math:: \\mathrm{selu}(x) = \\lambda \\,(x \\text{ if } x > 0
        \\text{ else } \\alpha (e^x - 1)),\\quad \\lambda \\approx 1.0507,\\ \\alpha \\approx 1.6733

    Seed: slides, "Scaled Exponential Linear Unit (SELU, 2017)"; it needs the LeCun
    initialisation ``N(0, 1/fan_in)`` ("Initialization for SELU"), hence
    ``recommended_init = "lecun"``.

    Shape: input any shape (N, *), output the same shape.
    """

    function = staticmethod(selu)
    recommended_init = "lecun"


class Swish(_Activation):
    """Swish, optionally with a trainable ``beta``.

    .. math:: \\mathrm{swish}_\\beta(x) = x\\, \\sigma(\\beta x) = \\frac{x}{1 + e^{-\\beta x}}

    Seed: slides, "Swish (2017)" (printed with ``e^{+beta x}``: a sign typo).
    ``beta = 1`` is ``torch.nn.SiLU``; ``beta -> inf`` gives the ReLU. Not monotone.

    Args:
        beta: >= 0 (default 1).
        trainable: make ``beta`` an ``nn.Parameter`` of shape (1,) (default False).

    Shape: input any shape (N, *), output the same shape.
    """

    monotone = False

    def __init__(self, beta: float = 1.0, trainable: bool = False) -> None:
        super().__init__()
        beta = check_real("swish: beta", beta, 0.0)
        if not isinstance(trainable, bool):
            raise LosslabError(f"swish: trainable must be True or False, got {trainable!r}")
        self.trainable = trainable
        self.beta: nn.Parameter | float
        if trainable:
            self.beta = nn.Parameter(torch.tensor([beta]))
        else:
            self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swish(x, self.beta)

    def extra_repr(self) -> str:
        return f"trainable={self.trainable}"


class GELU(_Activation):
    """Gaussian error linear unit.

    .. math::
        \\mathrm{gelu}(x) = x\\, \\Phi(x)
        = \\frac{x}{2}\\left(1 + \\mathrm{erf}(x/\\sqrt{2})\\right)

    with ``approximate="tanh"``:
    :math:`\\frac{x}{2}\\left(1 + \\tanh\\left(\\sqrt{2/\\pi}\\,(x + 0.044715 x^3)\\right)\\right)`.

    Seed: slides, "Gaussian Error Linear Units (GELUs, 2018)". Not monotone (minimum
    near ``x = -0.75``). Equal to ``torch.nn.GELU(approximate=...)``.

    Args:
        approximate: ``"none"`` (exact, default) or ``"tanh"``.

    Shape: input any shape (N, *), output the same shape.
    """

    function = staticmethod(gelu)
    options = ("approximate",)
    monotone = False

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise LosslabError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate


class AdaptiveReLU(_Activation):
    """Adaptive ReLU: a ReLU whose negative slope is learned and depends on the input.

    .. math::
        f(x) = \\max\\{\\alpha(x)\\, x,\\ x\\}, \\qquad \\alpha(x) = \\sigma(w x + b) \\in (0, 1)

    Seed: slides, "Adaptive ReLU (2018)": "make the ReLU slope adaptive to input data",
    ``f(x) = max{alpha(x) x, x}``. The slides leave ``alpha(x)`` unspecified. Our reading:
    a one-input gate per unit (or per channel), ``alpha(x) = sigmoid(w x + b)`` with
    trainable ``w``, ``b``; the sigmoid keeps the slope in (0, 1) as the max requires
    (with a slope above 1 the max would pick ``alpha(x) x`` for positive ``x``). Hence
    ``f(x) = x`` for ``x > 0`` and ``sigmoid(w x + b) x`` for ``x <= 0``. With ``w = 0`` it
    is a PReLU of slope ``sigmoid(b)``; with ``w > 0`` the slope fades for very negative
    inputs and the unit saturates to 0 like the ELU; the cost is two parameters per
    channel ("increases model complexity"). Not monotone for large ``w``.

    Args:
        num_parameters: 1 (shared, default) or C (per channel, channel dimension 1).
        init_slope: initial ``alpha = sigmoid(b)``, in (0, 1) (default 0.25, as PReLU).
        init_weight: initial ``w`` (default 0: training starts from a PReLU and learns
            the input dependence; ``d f / d w = sigma'(b) x^2`` is nonzero, so it does).

    Attributes:
        weight: ``w``, shape (num_parameters,).
        bias: ``b``, shape (num_parameters,).

    Shape: input (N, C, *) (any shape when ``num_parameters = 1``), output the same shape.
    """

    monotone = False

    def __init__(
        self, num_parameters: int = 1, init_slope: float = 0.25, init_weight: float = 0.0
    ) -> None:
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int):
            raise LosslabError(
                f"adaptive_relu: num_parameters must be an integer, got {num_parameters!r}"
            )
        if num_parameters < 1:
            raise LosslabError(f"adaptive_relu: num_parameters must be >= 1, got {num_parameters}")
        init_slope = check_real("adaptive_relu: init_slope", init_slope, 0.0, low_open=True)
        if init_slope >= 1.0:
            raise LosslabError(f"adaptive_relu: init_slope must be in (0, 1), got {init_slope}")
        init_weight = check_real("adaptive_relu: init_weight", init_weight)
        logit = math.log(init_slope) - math.log1p(-init_slope)
        self.weight = nn.Parameter(torch.full((num_parameters,), init_weight))
        self.bias = nn.Parameter(torch.full((num_parameters,), logit))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return adaptive_relu(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"num_parameters={self.weight.numel()}"


#: Activation name -> ``nn.Module`` class; :func:`get_activation` builds one.
ACTIVATIONS: dict[str, type[_Activation]] = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "softplus": Softplus,
    "piecewise_linear": PiecewiseLinear,
    "leaky_relu": LeakyReLU,
    "prelu": PReLU,
    "elu": ELU,
    "selu": SELU,
    "swish": Swish,
    "gelu": GELU,
    "adaptive_relu": AdaptiveReLU,
}


def get_activation(name: str, **kwargs: Any) -> nn.Module:
    """A new activation module by registry name, e.g. ``get_activation("elu", alpha=0.5)``.

    Unknown names and wrong keywords raise :class:`LosslabError` listing the valid ones.
    """
    return build(ACTIVATIONS, name, "activation", **kwargs)


def recommended_init(activation: str) -> str:
    """The initialiser matched to an activation: ``"he"`` for ReLU-like units,
    ``"xavier"`` for sigmoid / tanh / piecewise-linear, ``"lecun"`` for SELU.

    Seed: lecture notes 2018, "Weight initialization" (ReLU -> ``2/n``, tanh -> ``1/n``);
    slides, "Initialization for SELU".
    """
    return lookup(ACTIVATIONS, activation, "activation").recommended_init
