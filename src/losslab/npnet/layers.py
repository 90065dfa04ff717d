"""Layers: stateful wrappers of :mod:`losslab.npnet.functional` with ``params`` and ``grads``.

Every layer has

* ``params`` and ``grads``: dicts with the same keys (numpy-ml style); ``backward``
  fills ``grads``, an optimizer updates ``params`` in place;
* ``forward(x) -> out`` (keeps the cache) and ``backward(dout) -> dx``;
* ``train()`` / ``eval()`` switching ``training`` (dropout, batch-norm).

Parameters named ``"W"`` are weights (decayed by L2 weight decay); biases, batch-norm
scales/shifts and activation parameters are not. Shapes: N batch, D features, C
channels, H x W image size.

Seeds: Daza §1-§4 (MLP, batch-norm, VGG-like CNN); lecture notes §6.3 (dropout),
§7.3 (He / Xavier initialisation); Janocha & Czarnecki 2017 §3 (CIFAR-10 convnet).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from losslab.errors import LosslabError
from losslab.npnet import functional as F
from losslab.registry import build, lookup
from losslab.seeding import as_rng

Array = np.ndarray


# ---------------------------------------------------------------------------
# Initialisers (lecture notes §7.3; Daza §1.2; Mendez-Vazquez slides)
# ---------------------------------------------------------------------------


def _he(fan_in: int, fan_out: int) -> float:
    return math.sqrt(2.0 / fan_in)


def _xavier(fan_in: int, fan_out: int) -> float:
    return math.sqrt(2.0 / (fan_in + fan_out))


def _lecun(fan_in: int, fan_out: int) -> float:
    return math.sqrt(1.0 / fan_in)


def _daza(fan_in: int, fan_out: int) -> float:
    return 1e-4


INITIALISERS: dict[str, Callable[[int, int], float]] = {
    "he": _he,
    "xavier": _xavier,
    "lecun": _lecun,
    "daza": _daza,
}
"""Standard deviation of the zero-mean normal each initialiser draws weights from:
``he`` sqrt(2/fan_in) (ReLU), ``xavier`` (Glorot) sqrt(2/(fan_in+fan_out)) (tanh),
``lecun`` sqrt(1/fan_in) (SELU; the notes call this one "Xavier"), ``daza`` 1e-4
(the assignment's N(0, 1e-4^2))."""


def init_weight(
    name: str,
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype: npt.DTypeLike = np.float64,
) -> Array:
    """Draw a weight array of ``shape`` from N(0, std^2), std given by :data:`INITIALISERS`.

    Args:
        name: "he", "xavier", "lecun" or "daza".
        shape: the array shape.
        fan_in, fan_out: inputs and outputs per unit (times the kernel area for convs).
        rng: the generator to draw from.
        dtype: dtype of the result (drawn in float64, then cast, so a seed gives the
            same weights in float32 and float64).
    """
    std = lookup(INITIALISERS, name, "initialiser")(fan_in, fan_out)
    return (std * rng.standard_normal(shape)).astype(dtype)


# ---------------------------------------------------------------------------
# Base class and parameter-free layers
# ---------------------------------------------------------------------------


class Layer:
    """Base class: ``params``/``grads`` dicts, train/eval mode, ``__call__ = forward``.

    A layer that wraps one functional pair names it in ``op``: ``forward`` then runs
    ``F.<op>_forward(x, *self._op_args())`` and keeps the cache, and ``backward`` runs
    ``F.<op>_backward(dout, cache)``, storing the parameter gradients it returns after dx
    under ``grad_names``.
    """

    op: str | None = None
    grad_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.training = True
        # what forward keeps for backward (a tuple, a shape...); None: forward not run
        self._cache: Any = None

    def _op_args(self) -> tuple:
        """The arguments after x of ``F.<op>_forward``."""
        return ()

    def forward(self, x: Array) -> Array:
        if self.op is None:
            raise NotImplementedError
        out, self._cache = getattr(F, f"{self.op}_forward")(x, *self._op_args())
        return out

    def backward(self, dout: Array) -> Array:
        if self.op is None:
            raise NotImplementedError
        self._check_cache()
        result = getattr(F, f"{self.op}_backward")(dout, self._cache)
        if not self.grad_names:
            return result
        dx, *grads = result
        self.grads.update(zip(self.grad_names, grads, strict=True))
        return dx

    def train(self) -> Layer:
        """Training mode (dropout active, batch-norm on batch statistics)."""
        self.training = True
        return self

    def eval(self) -> Layer:
        """Evaluation mode (dropout off, batch-norm on running statistics)."""
        self.training = False
        return self

    def __call__(self, x: Array) -> Array:
        return self.forward(x)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"

    def _check_cache(self) -> None:
        if self._cache is None:
            raise LosslabError(f"{type(self).__name__}: call forward before backward")


class Activation(Layer):
    """An element-wise activation without parameters, from a functional forward/backward pair.

    Args:
        name: its registry name (for messages and ``repr``).
        forward, backward: the pair from :mod:`losslab.npnet.functional`.
        **kwargs: keyword arguments of the forward (e.g. ``alpha`` of leaky_relu).
    """

    def __init__(
        self, name: str, forward: Callable[..., Any], backward: Callable[..., Any], **kwargs: Any
    ) -> None:
        super().__init__()
        self.name, self._forward, self._backward, self.kwargs = name, forward, backward, kwargs

    def forward(self, x: Array) -> Array:
        out, self._cache = self._forward(x, **self.kwargs)
        return out

    def backward(self, dout: Array) -> Array:
        self._check_cache()
        return self._backward(dout, self._cache)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"Activation({self.name}{', ' if args else ''}{args})"


class PReLU(Layer):
    """Leaky ReLU with trainable slope(s) (param "weight", shape (num_parameters,), the
    name ``torch.nn.PReLU`` uses).

    Args:
        num_parameters: 1 (one shared slope) or C (one per channel, axis 1).
        init: initial slope (0.25, as PyTorch).
        dtype: parameter dtype.
    """

    op, grad_names = "prelu", ("weight",)

    def __init__(
        self, num_parameters: int = 1, init: float = 0.25, dtype: npt.DTypeLike = np.float64
    ) -> None:
        super().__init__()
        self.params["weight"] = np.full(num_parameters, init, dtype=dtype)

    def _op_args(self) -> tuple:
        return (self.params["weight"],)


class AdaptiveReLU(Layer):
    """:math:`\\max(\\sigma(w x + b)\\, x, x)`, params "weight" (w) and "bias" (b), shape
    (num_parameters,), named as in ``losslab.activations.AdaptiveReLU``.

    Args:
        num_parameters: 1 (shared) or C (per channel, axis 1).
        init_slope: initial slope :math:`\\sigma(b)` in (0, 1) (default 0.25).
        init_weight: initial w (default 0: starts as a PReLU of slope ``init_slope``).
        dtype: parameter dtype.
    """

    op, grad_names = "adaptive_relu", ("weight", "bias")

    def __init__(
        self,
        num_parameters: int = 1,
        init_slope: float = 0.25,
        init_weight: float = 0.0,
        dtype: npt.DTypeLike = np.float64,
    ) -> None:
        super().__init__()
        if not 0 < init_slope < 1:
            raise LosslabError(f"adaptive_relu: init_slope must be in (0, 1), got {init_slope}")
        logit = math.log(init_slope) - math.log1p(-init_slope)
        self.params["weight"] = np.full(num_parameters, init_weight, dtype=dtype)
        self.params["bias"] = np.full(num_parameters, logit, dtype=dtype)

    def _op_args(self) -> tuple:
        return self.params["weight"], self.params["bias"]


class Swish(Layer):
    """:math:`x \\sigma(\\beta x)`; with ``trainable=True`` beta is the parameter "beta" (1,).

    Args:
        beta: the (initial) beta, default 1.
        trainable: learn beta.
        dtype: parameter dtype.
    """

    op = "swish"

    def __init__(
        self, beta: float = 1.0, trainable: bool = False, dtype: npt.DTypeLike = np.float64
    ) -> None:
        super().__init__()
        self.trainable = trainable
        self.beta = np.full(1, beta, dtype=dtype)
        if trainable:
            self.params["beta"] = self.beta

    def _op_args(self) -> tuple:
        return (self.beta,)

    def backward(self, dout: Array) -> Array:
        # A fixed beta gets a gradient too; it is dropped, not stored.
        dx, dbeta = super().backward(dout)
        if self.trainable:
            self.grads["beta"] = dbeta
        return dx


def _fixed(name: str) -> Callable[..., Activation]:
    forward = getattr(F, f"{name}_forward")
    backward = getattr(F, f"{name}_backward")
    params = list(inspect.signature(forward).parameters)[1:]

    def make(**kwargs: Any) -> Activation:
        unknown = set(kwargs) - set(params)
        if unknown:
            raise LosslabError(
                f"bad arguments for activation {name!r}: {sorted(unknown)}. "
                f"It accepts: {', '.join(params) or 'no arguments'}"
            )
        return Activation(name, forward, backward, **kwargs)

    make.__name__ = name
    make.__doc__ = forward.__doc__
    return make


ACTIVATIONS: dict[str, Callable[..., Layer]] = {
    name: _fixed(name)
    for name in (
        "sigmoid",
        "tanh",
        "relu",
        "softplus",
        "piecewise_linear",
        "leaky_relu",
        "elu",
        "selu",
        "gelu",
    )
}
ACTIVATIONS["prelu"] = PReLU
ACTIVATIONS["swish"] = Swish
ACTIVATIONS["adaptive_relu"] = AdaptiveReLU


def get_activation(name: str, **kwargs: Any) -> Layer:
    """Build the npnet activation layer registered as ``name`` (Mendez-Vazquez slides).

    Example:
        >>> act = get_activation("leaky_relu", alpha=0.1)
        >>> out = act.forward(x); dx = act.backward(dout)
    """
    return build(ACTIVATIONS, name, "npnet activation", **kwargs)


# ---------------------------------------------------------------------------
# Layers with weights
# ---------------------------------------------------------------------------


class _Weighted(Layer):
    """Linear and Conv2d: a weight "W", an optional bias "b", and a backward that can skip dx.

    Args:
        shape: of W.
        fan_in, fan_out, init, rng, dtype: as :func:`init_weight` (``rng`` a seed or a
            generator).
        bias: learn a bias, initialised to 0.
        outputs: the bias's length.
    """

    def __init__(self, shape: tuple[int, ...], fan_in: int, fan_out: int, outputs: int,
                 bias: bool, init: str, rng: np.random.Generator | int,
                 dtype: npt.DTypeLike) -> None:
        super().__init__()
        self.params["W"] = init_weight(init, shape, fan_in, fan_out, as_rng(rng), dtype)
        if bias:
            self.params["b"] = np.zeros(outputs, dtype=dtype)

    # input_grad=False returns None: only the first layer of a net may skip dx.
    @overload
    def backward(self, dout: Array, input_grad: Literal[True] = True) -> Array: ...

    @overload
    def backward(self, dout: Array, input_grad: bool) -> Array | None: ...

    def backward(self, dout: Array, input_grad: bool = True) -> Array | None:
        """Fill ``grads``; return dx, or None with ``input_grad=False`` (first layer)."""
        self._check_cache()
        grads: tuple[Array | None, Array, Array | None] = getattr(F, f"{self.op}_backward")(
            dout, self._cache, input_grad)
        dx, self.grads["W"], db = grads
        if db is not None:
            self.grads["b"] = db
        return dx


class Linear(_Weighted):
    """``out = x @ W + b`` (params "W" (D, M) and "b" (M,); Daza §1).

    Args:
        in_features: D.
        out_features: M.
        bias: learn a bias (default True), initialised to 0.
        init: weight initialiser name (default "he"), see :data:`INITIALISERS`.
        rng: generator or seed for the initial weights (default 0).
        dtype: parameter dtype (default float64).
    """

    op = "linear"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str = "he",
        rng: np.random.Generator | int = 0,
        dtype: npt.DTypeLike = np.float64,
    ) -> None:
        super().__init__((in_features, out_features), in_features, out_features, out_features,
                         bias, init, rng, dtype)

    def _op_args(self) -> tuple:
        return self.params["W"], self.params.get("b")


class Conv2d(_Weighted):
    """2-D convolution (params "W" (F, C, kh, kw), "b" (F,)), im2col based.

    Args:
        in_channels: C.
        out_channels: F.
        kernel_size: int or (kh, kw).
        stride, padding: ints or pairs (defaults 1 and 0).
        bias: learn a bias (default True), initialised to 0.
        init: weight initialiser (default "he", fan_in = C*kh*kw).
        rng, dtype: as :class:`Linear`.
    """

    op = "conv2d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        init: str = "he",
        rng: np.random.Generator | int = 0,
        dtype: npt.DTypeLike = np.float64,
    ) -> None:
        kh, kw = F._pair(kernel_size)
        super().__init__((out_channels, in_channels, kh, kw), in_channels * kh * kw,
                         out_channels * kh * kw, out_channels, bias, init, rng, dtype)
        self.stride, self.padding = stride, padding

    def _op_args(self) -> tuple:
        return self.params["W"], self.params.get("b"), self.stride, self.padding


class BatchNorm(Layer):
    """Batch normalisation over (N, D) or (N, C, H, W) inputs (Daza §3).

    Params "gamma" (init 1) and "beta" (init 0), shape (D,) or (C,); running
    statistics in ``running`` ("mean", "var"), updated in training mode.

    Args:
        num_features: D or C.
        eps: variance offset (1e-5).
        momentum: running-average weight of a new batch (0.1, PyTorch's convention).
        dtype: parameter dtype.
    """

    op, grad_names = "batchnorm", ("gamma", "beta")

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        dtype: npt.DTypeLike = np.float64,
    ) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.params["gamma"] = np.ones(num_features, dtype=dtype)
        self.params["beta"] = np.zeros(num_features, dtype=dtype)
        self.running = {
            "mean": np.zeros(num_features, dtype=dtype),
            "var": np.ones(num_features, dtype=dtype),
        }

    def _op_args(self) -> tuple:
        return (self.params["gamma"], self.params["beta"], self.eps, self.running,
                self.momentum, self.training)


class Dropout(Layer):
    """Inverted dropout with drop probability ``p`` (lecture notes §6.3).

    Args:
        p: drop probability in [0, 1) (default 0.5).
        rng: generator or seed the masks are drawn from (default 0).
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int = 0) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise LosslabError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.rng = p, as_rng(rng)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def forward(self, x: Array) -> Array:
        out, mask = F.dropout_forward(x, self.p, self.rng, self.training)
        # Wrapped so that "no mask" (evaluation mode) differs from "forward not run".
        self._cache = (mask,)
        return out

    def backward(self, dout: Array) -> Array:
        self._check_cache()
        return F.dropout_backward(dout, self._cache[0])


class MaxPool2d(Layer):
    """Max pooling over (N, C, H, W); ``stride`` defaults to ``kernel_size``."""

    op = "max_pool2d"

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def _op_args(self) -> tuple:
        return self.kernel_size, self.stride, self.padding


class AvgPool2d(MaxPool2d):
    """Average pooling over (N, C, H, W), zero padding counted (PyTorch's default)."""

    op = "avg_pool2d"


class Softmax(Layer):
    """Row-wise softmax of (N, C) scores (Daza eqs. 5 and 29); for probability outputs.

    Training uses a loss on the logits instead (``get_loss("log")`` fuses the softmax).
    """

    op = "softmax"


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)); backward reshapes back."""

    def forward(self, x: Array) -> Array:
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: Array) -> Array:
        self._check_cache()
        return dout.reshape(self._cache)


# ---------------------------------------------------------------------------
# Containers and ready-made networks
# ---------------------------------------------------------------------------


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse.

    ``params``/``grads`` are flat views keyed "<index>.<name>" (e.g. "0.W"); the
    arrays are the layers' own, so an optimizer updating ``params`` in place updates
    the layers.

    Args:
        *layers: the layers.
    """

    def __init__(self, *layers: Layer) -> None:
        # No Layer.__init__: params and grads are views of the layers', not own dicts.
        self.layers = list(layers)
        self.training = True

    @property
    def params(self) -> dict[str, Array]:  # type: ignore[override]
        return {f"{i}.{k}": v for i, lay in enumerate(self.layers) for k, v in lay.params.items()}

    @property
    def grads(self) -> dict[str, Array]:  # type: ignore[override]
        return {f"{i}.{k}": v for i, lay in enumerate(self.layers) for k, v in lay.grads.items()}

    def forward(self, x: Array) -> Array:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    @overload
    def backward(self, dout: Array, input_grad: Literal[True] = True) -> Array: ...

    @overload
    def backward(self, dout: Array, input_grad: bool) -> Array | None: ...

    def backward(self, dout: Array, input_grad: bool = True) -> Array | None:
        """Backpropagate through every layer, filling their ``grads``; return dx.

        ``input_grad=False`` (training, where the data need no gradient) lets a first
        :class:`Linear` or :class:`Conv2d` skip dx, and returns None.
        """
        *rest, first = reversed(self.layers)
        for layer in rest:
            dout = layer.backward(dout)
        if not input_grad and isinstance(first, _Weighted):
            return first.backward(dout, input_grad=False)
        return first.backward(dout)

    def train(self) -> Sequential:
        self.training = True
        for layer in self.layers:
            layer.train()
        return self

    def eval(self) -> Sequential:
        self.training = False
        for layer in self.layers:
            layer.eval()
        return self

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}(\n  {inner}\n)"


class MLP(Sequential):
    """Fully connected net: for each hidden size, Linear -> [BatchNorm] -> act -> [Dropout];
    then a Linear to the logits.

    Args:
        sizes: (D, h1, ..., hk, C); at least input and output size.
        activation: registry name of the hidden activation (default "relu").
        dropout: drop probability after each hidden activation (default 0: none).
        batchnorm: BatchNorm after each hidden Linear (default False).
        init: weight initialiser (default "he"; "daza" for the assignment's N(0, 1e-4^2)).
        rng: generator or seed for weights and dropout masks (default 0).
        dtype: parameter dtype (default float64).
        activation_kwargs: keyword arguments of the activation.

    Shape:
        input (N, D) -> logits (N, C).

    Example:
        >>> net = MLP([784, 100, 10], init="daza", rng=0)
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        init: str = "he",
        rng: np.random.Generator | int = 0,
        dtype: npt.DTypeLike = np.float64,
        activation_kwargs: dict | None = None,
    ) -> None:
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise LosslabError(
                f"MLP sizes must be >= 2 positive ints (input ... output), got {sizes}"
            )
        rng = as_rng(rng)
        kwargs = dict(activation_kwargs or {})
        if activation in ("prelu", "swish", "adaptive_relu"):
            kwargs.setdefault("dtype", dtype)
        layers: list[Layer] = []
        for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1], strict=True):
            layers.append(Linear(fan_in, fan_out, init=init, rng=rng, dtype=dtype))
            if batchnorm:
                layers.append(BatchNorm(fan_out, dtype=dtype))
            layers.append(get_activation(activation, **kwargs))
            if dropout > 0:
                layers.append(Dropout(dropout, rng=rng))
        layers.append(Linear(sizes[-2], sizes[-1], init=init, rng=rng, dtype=dtype))
        super().__init__(*layers)


def janocha_convnet(
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int = 32,
    rng: np.random.Generator | int = 0,
    dtype: npt.DTypeLike = np.float64,
) -> Sequential:
    """The CIFAR-10 convnet of Janocha & Czarnecki 2017 §3.

    3 x [conv 5x5, 64 filters, padding 2 -> ReLU -> BatchNorm -> pool 3x3 stride 2
    padding 1], max-pool after the first conv and average-pool after the other two,
    then FC 128 -> ReLU -> FC ``num_classes``. The paper does not give the padding;
    ours halves the image at each pool (32 -> 16 -> 8 -> 4).

    Shape:
        (N, in_channels, image_size, image_size) -> (N, num_classes).
    """
    rng = as_rng(rng)
    size = image_size
    layers: list[Layer] = []
    for i, channels in enumerate((in_channels, 64, 64)):
        layers += [
            Conv2d(channels, 64, 5, padding=2, rng=rng, dtype=dtype),
            get_activation("relu"),
            BatchNorm(64, dtype=dtype),
            (MaxPool2d if i == 0 else AvgPool2d)(3, stride=2, padding=1),
        ]
        size = (size + 2 - 3) // 2 + 1
    layers += [
        Flatten(),
        Linear(64 * size * size, 128, rng=rng, dtype=dtype),
        get_activation("relu"),
        Linear(128, num_classes, rng=rng, dtype=dtype),
    ]
    return Sequential(*layers)


def vgg_small(
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int = 32,
    channels: Sequence[int] = (32, 64, 128),
    batchnorm: bool = True,
    rng: np.random.Generator | int = 0,
    dtype: npt.DTypeLike = np.float64,
) -> Sequential:
    """A small VGG-like CNN in the spirit of Daza §4: per stage, two [conv 3x3 padding 1
    -> [BatchNorm] -> ReLU] then max-pool 2x2; then a Linear to the logits.

    Args:
        channels: filters of each stage (each stage halves the image).
        batchnorm: with (Daza: 77.0%) or without (73.8%) batch-norm.

    Shape:
        (N, in_channels, image_size, image_size) -> (N, num_classes).
    """
    rng = as_rng(rng)
    if image_size % (2 ** len(channels)):
        raise LosslabError(
            f"vgg_small: image_size {image_size} must be divisible by 2^{len(channels)}"
        )
    layers: list[Layer] = []
    c_in = in_channels
    for c_out in channels:
        for c in (c_in, c_out):
            layers.append(Conv2d(c, c_out, 3, padding=1, bias=not batchnorm, rng=rng, dtype=dtype))
            if batchnorm:
                layers.append(BatchNorm(c_out, dtype=dtype))
            layers.append(get_activation("relu"))
        layers.append(MaxPool2d(2))
        c_in = c_out
    size = image_size // 2 ** len(channels)
    layers += [Flatten(), Linear(c_in * size * size, num_classes, rng=rng, dtype=dtype)]
    return Sequential(*layers)
