"""Fully connected networks: the MLPs of the seeds and the MNIST-1D residual MLP.

Also holds the pieces every model factory shares: turning ``seed`` / ``generator``
into one ``torch.Generator``, initialising the weights from it, and argument checks.
Drawing weights ONLY from that generator is what makes two models built with the same
seed identical whatever else differs (their loss, learning rate, ...): the common random
numbers of paired comparisons between losses.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from losslab.activations import get_activation
from losslab.checks import check_int, check_real
from losslab.errors import LosslabError
from losslab.init import init_
from losslab.seeding import seeded_global_rng, torch_generator

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)
_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD


def make_generator(
    seed: int | None = None, generator: torch.Generator | None = None
) -> torch.Generator:
    """The generator a factory draws its weights from.

    Args:
        seed: a non-negative integer seed: its ``"weights"`` stream
            (:func:`losslab.seeding.torch_generator`). ``None`` together with
            ``generator=None`` means seed 0, so that models are reproducible by default
            (the global RNG is never used).
        generator: a ``torch.Generator`` to draw from (advanced by the draws). Give at
            most one of ``seed`` and ``generator``.
    """
    if seed is not None and generator is not None:
        raise LosslabError("give either seed= or generator=, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise LosslabError(
                f"generator must be a torch.Generator, got {type(generator).__name__}; "
                "pass an integer as seed= instead"
            )
        return generator
    return torch_generator(0 if seed is None else seed, "weights")


def initialise_(model: nn.Module, init: str, generator: torch.Generator) -> nn.Module:
    """Draw every Linear/Conv weight of ``model`` with ``init``; biases to 0, BN to (1, 0).

    The weights are visited in ``model.modules()`` order and drawn only from
    ``generator``, so one seed always yields the same model. ``init="torch"`` keeps
    PyTorch's default scheme for biases too (uniform in ``±1/sqrt(fan_in)``), drawn from
    the same generator; every other scheme starts biases at zero as the lecture notes do.

    Args:
        model: the module to initialise in place.
        init: a name of ``losslab.init.INITIALIZERS`` ("he", "xavier", "lecun",
            "normal", "torch").
        generator: the source of randomness.

    Returns:
        ``model``.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _WEIGHTED):
                init_(module.weight, init, generator=generator)
                if module.bias is not None:
                    if init == "torch":
                        fan_in = module.weight[0].numel()
                        bound = 1.0 / math.sqrt(fan_in)
                        module.bias.uniform_(-bound, bound, generator=generator)
                    else:
                        module.bias.zero_()
            elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                module.weight.fill_(1.0)
                module.bias.zero_()
    return model


def build_initialised(
    cls: type[nn.Module],
    *args: Any,
    init: str,
    seed: int | None,
    generator: torch.Generator | None,
) -> nn.Module:
    """``cls(*args)`` with its weights drawn by :func:`initialise_` from ``seed`` / ``generator``.

    PyTorch's layer constructors draw their default weights from the global RNG; building
    under :func:`~losslab.seeding.seeded_global_rng` restores it afterwards, so making a
    model never changes the random numbers the rest of a program sees.

    Args:
        cls: the model class; ``args`` its positional arguments.
        init: a name of ``losslab.init.INITIALIZERS``.
        seed, generator: see :func:`make_generator` (at most one; neither means seed 0).
    """
    generator = make_generator(seed, generator)
    with seeded_global_rng(0):
        model = cls(*args)
    return initialise_(model, init, generator)


def initialised(
    cls: type[nn.Module], name: str, summary: str, default_init: str = "he", init_note: str = ""
) -> Callable[..., Any]:
    """The factory of ``cls``: ``cls``'s arguments, then ``init=default_init``, ``seed=None``,
    ``generator=None``; it builds with :func:`build_initialised`.

    Args:
        cls: the model class, whose ``__init__`` signature the factory takes over and whose
            docstring (Args, Shape) ends the factory's.
        name: the factory's name (its registry name).
        summary: the first paragraph of the factory's docstring (which seed it builds).
        default_init: the default weight initialiser.
        init_note: said of ``init`` after its default (e.g. what the paper used).
    """
    own = list(inspect.signature(cls).parameters.values())
    signature = inspect.Signature([
        *own,
        inspect.Parameter("init", _KEYWORD, default=default_init, annotation=str),
        inspect.Parameter("seed", _KEYWORD, default=None, annotation=int | None),
        inspect.Parameter("generator", _KEYWORD, default=None,
                          annotation=torch.Generator | None),
    ], return_annotation=cls)

    def factory(*args: Any, **kwargs: Any) -> nn.Module:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        return build_initialised(cls, *(given[p.name] for p in own), init=given["init"],
                                 seed=given["seed"], generator=given["generator"])  # fmt: skip

    factory.__signature__ = signature  # type: ignore[attr-defined]
    factory.__doc__ = (
        f"{inspect.cleandoc(summary)}\n\nTakes the arguments of :class:`{cls.__name__}`, then "
        f"``init``, the weight initialiser (default {default_init!r}{init_note}), and ``seed`` "
        "or ``generator``, where the weights come from (see :func:`make_generator`).\n\n"
        f"{inspect.cleandoc(cls.__doc__ or '')}"
    )
    factory.__module__ = cls.__module__
    factory.__name__ = factory.__qualname__ = name
    return factory


def make_activation(name: str, kwargs: Mapping[str, Any] | None) -> nn.Module:
    """A fresh activation module (each layer gets its own, so trainable slopes are per layer)."""
    return get_activation(name, **dict(kwargs or {}))


def flatten_input(x: torch.Tensor, in_features: int, model: str) -> torch.Tensor:
    """(N, ...) -> (N, D); a LosslabError naming the expected shape when D is wrong."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x[0].numel() != in_features:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise LosslabError(
            f"{model} expects input of shape (N, {in_features}) (or (N, ...) with "
            f"{in_features} values per sample), got {shape}"
        )
    return x.reshape(x.shape[0], in_features)


class MLP(nn.Sequential):
    """A multi-layer perceptron: ``Flatten`` then, per hidden layer,
    ``Linear -> [BatchNorm1d] -> activation -> [Dropout]``, then an output ``Linear``.

    .. math::
        h_0 = \\mathrm{flatten}(x), \\quad
        h_l = \\mathrm{drop}(\\sigma(\\mathrm{BN}(W_l h_{l-1} + b_l))), \\quad
        o = W_{L} h_{L-1} + b_{L}

    With no hidden layer it is multinomial logistic regression. Build it with
    :func:`mlp`, which also initialises the weights. Being an ``nn.Sequential`` of
    standard layers is what lets :func:`losslab.models.stack_models` run M of them as
    batched matmuls.

    Args:
        in_features: D, values per sample (the input is flattened).
        hidden: widths of the hidden layers, default ``()`` (logistic regression); e.g.
            ``[200] * 5`` for Janocha's toy net.
        classes: C, number of logits (default 10).
        activation: a name of ``losslab.activations.ACTIVATIONS`` (default "relu").
        activation_kwargs: keyword arguments of the activation (default none).
        dropout: inverted-dropout probability after each hidden activation, in [0, 1)
            (default 0).
        batchnorm: ``BatchNorm1d`` between each hidden Linear and its activation
            (default False).
        bias: whether the Linear layers have biases (default True; False gives the
            positively homogeneous net of the two-scale losses).

    Shape:
        input (N, D) or (N, ...) with D values per sample; output (N, C).

    Example:
        >>> net = mlp(2, hidden=[200] * 5, classes=4, seed=0)
        >>> net(torch.zeros(50, 2)).shape
        torch.Size([50, 4])
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (),
        classes: int = 10,
        activation: str = "relu",
        activation_kwargs: Mapping[str, Any] | None = None,
        dropout: float = 0.0,
        batchnorm: bool = False,
        bias: bool = True,
    ):
        self.in_features = check_int("in_features", in_features, 1)
        if isinstance(hidden, int):
            hidden = (hidden,)
        widths = [check_int("each hidden width", h, 1) for h in hidden]
        check_int("classes", classes, 1)
        dropout = check_real("dropout", dropout, 0.0, 1.0, high_open=True)
        # built once up front so that a bad name is reported even with no hidden layer
        make_activation(activation, activation_kwargs)
        layers: list[nn.Module] = [nn.Flatten()]
        previous = in_features
        for width in widths:
            layers.append(nn.Linear(previous, width, bias=bias))
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(make_activation(activation, activation_kwargs))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            previous = width
        layers.append(nn.Linear(previous, classes, bias=bias))
        super().__init__(*layers)
        self.sample_shape = (in_features,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(flatten_input(x, self.in_features, "mlp"))


mlp = initialised(
    MLP,
    "mlp",
    """An initialised :class:`MLP` (seeds: Janocha & Czarnecki 2017 §3, toy 2-200xK-4 and
    MNIST 784-512xK-10 nets; Daza assignment, PyTorch MLP; lecture notes, MLP + dropout).""",
    init_note=": N(0, 2/n_in), right for ReLU-like activations; use 'xavier' for "
    "tanh/sigmoid, 'lecun' for SELU",
)


class MNIST1DMLP(nn.Module):
    """The MNIST-1D MLP with a residual second layer (Greydanus & Kobak 2024).

    .. math::
        h = \\sigma(W_1 x + b_1), \\quad h \\leftarrow h + \\sigma(W_2 h + b_2), \\quad
        o = W_3 h + b_3

    Args:
        in_features: D (default 40, the MNIST-1D length).
        hidden: width of both hidden layers (default 100).
        classes: C (default 10).
        activation, activation_kwargs: as in :class:`MLP` (default "relu").
        bias: Linear biases (default True).

    Shape:
        input (N, D) or (N, 1, D); output (N, C).
    """

    def __init__(
        self,
        in_features: int = 40,
        hidden: int = 100,
        classes: int = 10,
        activation: str = "relu",
        activation_kwargs: Mapping[str, Any] | None = None,
        bias: bool = True,
    ):
        super().__init__()
        self.in_features = check_int("in_features", in_features, 1)
        check_int("hidden", hidden, 1)
        check_int("classes", classes, 1)
        self.linear1 = nn.Linear(in_features, hidden, bias=bias)
        self.act1 = make_activation(activation, activation_kwargs)
        self.linear2 = nn.Linear(hidden, hidden, bias=bias)
        self.act2 = make_activation(activation, activation_kwargs)
        self.linear3 = nn.Linear(hidden, classes, bias=bias)
        self.sample_shape = (in_features,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.linear1(flatten_input(x, self.in_features, "mnist1d_mlp")))
        h = h + self.act2(self.linear2(h))
        return self.linear3(h)


mnist1d_mlp = initialised(
    MNIST1DMLP,
    "mnist1d_mlp",
    """An initialised :class:`MNIST1DMLP`, 40-100-100-10 by default: 15,210 parameters
    (Greydanus & Kobak, "Scaling down deep learning", ICML 2024).""",
    init_note="; the paper used PyTorch's default, 'torch'",
)
