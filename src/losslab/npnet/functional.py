"""Forward/backward pairs of every npnet operation, CS231n style, NumPy only.

Read this file top to bottom: each ``*_forward(x, ...) -> (out, cache)`` is followed
by its ``*_backward(dout, cache)``, whose docstring derives the gradient it computes.
``dout`` is the upstream gradient dL/d(out) of the same shape as ``out``; a backward
returns dL/dx (and dL/d(parameter) for every parameter) and never recomputes the
forward pass nor writes into ``dout`` or the cache.

Shapes: N batch, D input features, M output features, C channels (or classes for
softmax), H x W spatial size, F conv filters, kh x kw kernel size.

Every operation keeps the dtype of its input (float32 in, float32 out); the tests
run in float64, where they agree with PyTorch to 1e-9.

Seeds: Daza, "MLPs, CNNs and Backpropagation" §1 (linear, ReLU, softmax,
cross-entropy backward; batched gradients) and §3 (batch-norm backward); lecture
notes 2018 §2 (activations) and §6.3 (inverted dropout); Mendez-Vazquez slides
(activation catalogue).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import erf, expit, log_softmax

from losslab.errors import LosslabError

Array = np.ndarray

# ---------------------------------------------------------------------------
# Linear layer (seed: Daza §1.1, eqs. 20-38, batched as in Question 1.1 c)
# ---------------------------------------------------------------------------


def linear_forward(x: Array, W: Array, b: Array | None) -> tuple[Array, tuple]:
    """Affine map of a batch of row vectors.

    .. math:: \\text{out} = x W + b

    Args:
        x: inputs, shape (N, D).
        W: weights, shape (D, M) (the transpose of ``torch.nn.Linear.weight``, so that
            samples stay in rows as in Daza's Question 1.1 c).
        b: bias, shape (M,), or None for a layer without bias.

    Returns:
        ``out`` of shape (N, M) and the cache for :func:`linear_backward`.
    """
    out = x @ W
    if b is not None:
        out += b
    return out, (x, W, b is not None)


def linear_backward(
    dout: Array, cache: tuple, input_grad: bool = True
) -> tuple[Array | None, Array, Array | None]:
    """Backward of :func:`linear_forward`.

    From :math:`\\partial\\,\\text{out}_{nm} / \\partial W_{dm'} = x_{nd}\\,\\delta_{mm'}`
    (Daza eqs. 33-35) and summing over the batch:

    .. math::
        dx = d\\text{out}\\, W^\\top, \\quad dW = x^\\top d\\text{out}, \\quad
        db = \\sum_n d\\text{out}_{n:}

    Args:
        dout: upstream gradient, shape (N, M).
        cache: from :func:`linear_forward`.
        input_grad: False skips dx (None then): a network's input needs no gradient,
            and dropping it saves one of the layer's three matrix products.

    Returns:
        ``(dx, dW, db)`` with shapes (N, D), (D, M), (M,); ``db`` is None without bias.
    """
    x, W, has_bias = cache
    dx = dout @ W.T if input_grad else None
    dW = x.T @ dout
    db = dout.sum(axis=0) if has_bias else None
    return dx, dW, db


# ---------------------------------------------------------------------------
# Activations (seed: lecture notes §2; Mendez-Vazquez slides)
# Every activation acts element-wise on an array of any shape.
# ---------------------------------------------------------------------------


def sigmoid_forward(x: Array, a: float = 1.0) -> tuple[Array, tuple]:
    """Logistic sigmoid with slope ``a``: :math:`s = 1 / (1 + e^{-a x})` (computed by expit)."""
    s = expit(a * x)
    return s, (s, a)


def sigmoid_backward(dout: Array, cache: tuple) -> Array:
    """:math:`ds/dx = a\\, s (1 - s)`, so :math:`dx = d\\text{out} \\cdot a s (1 - s)`."""
    s, a = cache
    return dout * (a * s * (1 - s))


def tanh_forward(x: Array) -> tuple[Array, Array]:
    """:math:`t = \\tanh x`."""
    t = np.tanh(x)
    return t, t


def tanh_backward(dout: Array, cache: Array) -> Array:
    """:math:`dt/dx = 1 - t^2`."""
    return dout * (1 - cache * cache)


def relu_forward(x: Array) -> tuple[Array, Array]:
    """:math:`\\max(0, x)` (seed: Daza eq. 17)."""
    return np.maximum(x, 0), x > 0


def relu_backward(dout: Array, cache: Array) -> Array:
    """The Jacobian is :math:`\\mathrm{diag}(\\mathbb{I}[x > 0])` (Daza eq. 19), so
    :math:`dx = d\\text{out} \\odot \\mathbb{I}[x > 0]` (eq. 32); 0 at x = 0 as in PyTorch."""
    return dout * cache


def softplus_forward(x: Array, k: float = 1.0) -> tuple[Array, tuple]:
    """:math:`\\ln(1 + e^{k x}) / k`, as ``logaddexp(0, kx) / k`` so it never overflows."""
    return np.logaddexp(0, k * x) / k, (x, k)


def softplus_backward(dout: Array, cache: tuple) -> Array:
    """:math:`d/dx\\, \\ln(1 + e^{kx}) / k = e^{kx} / (1 + e^{kx}) = \\sigma(k x)`."""
    x, k = cache
    return dout * expit(k * x)


def piecewise_linear_forward(x: Array) -> tuple[Array, Array]:
    """:math:`\\mathrm{clamp}(x + 1/2, 0, 1)` (Mendez-Vazquez slides, "Piecewise-Linear
    Function"; the printed case formula is discontinuous, this is its continuous reading)."""
    return np.clip(x + 0.5, 0, 1), np.abs(x) < 0.5


def piecewise_linear_backward(dout: Array, cache: Array) -> Array:
    """Slope 1 on the ramp :math:`|x| < 1/2`, 0 on the two flat parts."""
    return dout * cache


def leaky_relu_forward(x: Array, alpha: float = 0.01) -> tuple[Array, tuple]:
    """:math:`x` if :math:`x > 0` else :math:`\\alpha x` (lecture notes eq. 4)."""
    positive = x > 0
    return np.where(positive, x, alpha * x), (positive, alpha)


def leaky_relu_backward(dout: Array, cache: tuple) -> Array:
    """Slope 1 where x > 0, :math:`\\alpha` elsewhere."""
    positive, alpha = cache
    return np.where(positive, dout, alpha * dout)


def _channel_shape(x: Array, a: Array) -> Array:
    """Broadcast a per-channel vector a (C,) (or (1,)) along axis 1 of x (N, C, ...)."""
    if a.size == 1:
        return a.reshape(())
    return a.reshape((1, a.size) + (1,) * (x.ndim - 2))


def _channel_sum(g: Array, a: Array) -> Array:
    """Sum g (N, C, ...) down to the shape of a per-channel parameter a (C,) or (1,)."""
    if a.size == 1:
        return g.sum().reshape(a.shape)
    axes = (0,) + tuple(range(2, g.ndim))
    return g.sum(axis=axes).reshape(a.shape)


def prelu_forward(x: Array, a: Array) -> tuple[Array, tuple]:
    """Parametric ReLU: leaky ReLU whose slope ``a`` is learned (He et al. 2015).

    .. math:: \\text{out} = \\max(0, x) + a \\min(0, x)

    Args:
        x: input, shape (N, C, ...) or (N, C).
        a: slopes, shape (1,) (shared) or (C,) (one per channel, axis 1 of x).
    """
    ab = _channel_shape(x, a).astype(x.dtype, copy=False)
    negative = np.minimum(x, 0)
    return np.maximum(x, 0) + ab * negative, (x, a, negative)


def prelu_backward(dout: Array, cache: tuple) -> tuple[Array, Array]:
    """:math:`dx = d\\text{out} \\cdot (1 \\text{ if } x > 0 \\text{ else } a)`,
    :math:`da = \\sum d\\text{out} \\cdot \\min(0, x)` over every axis but the channel."""
    x, a, negative = cache
    dx = np.where(x > 0, dout, _channel_shape(x, a).astype(x.dtype, copy=False) * dout)
    return dx, _channel_sum(dout * negative, a).astype(a.dtype, copy=False)


def adaptive_relu_forward(x: Array, w: Array, b: Array) -> tuple[Array, tuple]:
    """Adaptive ReLU :math:`\\max(\\alpha(x) x, x)` with the input-dependent slope
    :math:`\\alpha(x) = \\sigma(w x + b) \\in (0, 1)` (``losslab.activations``' reading of
    the slides): x for x > 0, :math:`\\sigma(w x + b)\\, x` for x <= 0.

    Args:
        x: input, shape (N, C, ...) or (N, C).
        w, b: gate weight and bias, shape (1,) (shared) or (C,) (per channel, axis 1).
    """
    wb = _channel_shape(x, w).astype(x.dtype, copy=False)
    s = expit(wb * x + _channel_shape(x, b).astype(x.dtype, copy=False))
    return np.where(x > 0, x, s * x), (x, w, b, s)


def adaptive_relu_backward(dout: Array, cache: tuple) -> tuple[Array, Array, Array]:
    """Where x <= 0, :math:`f = s x` with :math:`s = \\sigma(w x + b)`, :math:`s' = s(1 - s)`:

    .. math::
        \\frac{\\partial f}{\\partial x} = s + x\\, s' w, \\quad
        \\frac{\\partial f}{\\partial w} = x^2 s', \\quad
        \\frac{\\partial f}{\\partial b} = x\\, s'

    and :math:`f = x` (slope 1, no parameter gradient) where x > 0.

    Returns:
        ``(dx, dw, db)``.
    """
    x, w, b, s = cache
    negative = x <= 0
    ds = s * (1 - s)
    dx = np.where(negative, dout * (s + x * ds * _channel_shape(x, w).astype(x.dtype)), dout)
    g = np.where(negative, dout * x * ds, 0)
    dw, db = _channel_sum(g * x, w), _channel_sum(g, b)
    return dx, dw.astype(w.dtype, copy=False), db.astype(b.dtype, copy=False)


def elu_forward(x: Array, alpha: float = 1.0) -> tuple[Array, tuple]:
    """:math:`x` if :math:`x > 0` else :math:`\\alpha (e^x - 1)` (expm1 keeps it exact near 0)."""
    positive = x > 0
    out = np.where(positive, x, alpha * np.expm1(np.minimum(x, 0)))
    return out, (positive, out, alpha)


def elu_backward(dout: Array, cache: tuple) -> Array:
    """Slope 1 for x > 0; for x <= 0, :math:`\\alpha e^x = \\text{out} + \\alpha`."""
    positive, out, alpha = cache
    return np.where(positive, dout, dout * (out + alpha))


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


def selu_forward(x: Array) -> tuple[Array, tuple]:
    """:math:`\\lambda\\, \\mathrm{elu}(x, \\alpha)` with Klambauer et al.'s constants
    :math:`\\lambda \\approx 1.0507, \\alpha \\approx 1.6733` (use LeCun init with it)."""
    out, cache = elu_forward(x, SELU_ALPHA)
    return SELU_LAMBDA * out, cache


def selu_backward(dout: Array, cache: tuple) -> Array:
    """:math:`\\lambda` times the ELU derivative."""
    return SELU_LAMBDA * elu_backward(dout, cache)


def swish_forward(x: Array, beta: Array | float = 1.0) -> tuple[Array, tuple]:
    """:math:`x\\, \\sigma(\\beta x)` (Ramachandran et al. 2017; SiLU for beta = 1).

    Args:
        x: input of any shape.
        beta: a float, or a (1,) array when beta is trained.
    """
    beta_s = np.asarray(beta, dtype=x.dtype).reshape(())
    s = expit(beta_s * x)
    return x * s, (x, s, beta_s)


def swish_backward(dout: Array, cache: tuple) -> tuple[Array, Array]:
    """With :math:`s = \\sigma(\\beta x)` and :math:`s' = s (1 - s)`:

    .. math::
        \\frac{d}{dx} x s = s + \\beta x s (1 - s), \\qquad
        \\frac{d}{d\\beta} x s = x^2 s (1 - s)

    Returns:
        ``(dx, dbeta)``, dbeta of shape (1,).
    """
    x, s, beta = cache
    ds = s * (1 - s)
    dx = dout * (s + beta * x * ds)
    dbeta = np.sum(dout * x * x * ds).reshape(1)
    return dx, dbeta


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def gelu_forward(x: Array, approximate: str = "none") -> tuple[Array, tuple]:
    """:math:`x\\, \\Phi(x)` (Hendrycks & Gimpel 2016), :math:`\\Phi` the standard normal CDF.

    ``approximate="tanh"`` uses
    :math:`\\tfrac12 x (1 + \\tanh(\\sqrt{2/\\pi}(x + 0.044715 x^3)))`, as PyTorch does.
    """
    if approximate == "none":
        phi_cdf = 0.5 * (1 + erf(x / math.sqrt(2.0)))
        return x * phi_cdf, (x, phi_cdf, approximate)
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3))
        return 0.5 * x * (1 + t), (x, t, approximate)
    raise LosslabError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu_backward(dout: Array, cache: tuple) -> Array:
    """Exact: :math:`\\Phi(x) + x \\varphi(x)` with :math:`\\varphi(x) = e^{-x^2/2}/\\sqrt{2\\pi}`.

    Tanh form, with :math:`u = \\sqrt{2/\\pi}(x + 0.044715 x^3)` and :math:`t = \\tanh u`:
    :math:`\\tfrac12 (1 + t) + \\tfrac12 x (1 - t^2) \\sqrt{2/\\pi} (1 + 3 \\cdot 0.044715 x^2)`.
    """
    x, aux, approximate = cache
    if approximate == "none":
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return dout * (aux + x * pdf)
    t = aux
    du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
    return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)


# ---------------------------------------------------------------------------
# Softmax and cross-entropy (seed: Daza §1.1, eqs. 1-16 and 28-29)
# ---------------------------------------------------------------------------


def softmax_forward(x: Array) -> tuple[Array, Array]:
    """Row-wise softmax :math:`p_{nj} = e^{x_{nj}} / \\sum_k e^{x_{nk}}` of x (N, C).

    Computed as ``exp(log_softmax(x))`` so no row overflows (Daza eq. 5).
    """
    p = np.exp(log_softmax(x, axis=1))
    return p, p


def softmax_backward(dout: Array, cache: Array) -> Array:
    """The Jacobian of one row is :math:`\\mathrm{diag}(p) - p p^\\top` (Daza eq. 16), so
    (eq. 29) :math:`dx = d\\text{out}\\,(\\mathrm{diag}(p) - p p^\\top)
    = p \\odot (d\\text{out} - \\langle d\\text{out}, p \\rangle)`, row by row; shape (N, C)."""
    p = cache
    return p * (dout - np.sum(dout * p, axis=1, keepdims=True))


def softmax_cross_entropy(logits: Array, y: Array) -> tuple[float, Array]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    .. math::
        L = -\\frac1N \\sum_n \\log p_{n, y_n}, \\qquad
        \\frac{\\partial L}{\\partial \\text{logits}} = \\frac1N (p - t)

    The gradient is Daza's cross-entropy backward :math:`-t \\odot 1/p` (eq. 3) pushed
    through the softmax backward (eq. 29): :math:`p \\odot (-t/p + \\langle t/p, p
    \\rangle) = p - t` since :math:`\\sum_j t_j = 1`. The log-probabilities come from
    log-softmax, so the loss stays finite when :math:`p_{y}` underflows.

    Args:
        logits: shape (N, C).
        y: integer class labels, shape (N,), in [0, C).

    Returns:
        ``(loss, dlogits)``: a Python float and an (N, C) array.
    """
    n = logits.shape[0]
    logp = log_softmax(logits, axis=1)
    rows = np.arange(n)
    loss = -float(np.mean(logp[rows, y]))
    dlogits = np.exp(logp)
    dlogits[rows, y] -= 1
    dlogits /= n
    return loss, dlogits


# ---------------------------------------------------------------------------
# Inverted dropout (seed: lecture notes §6.3)
# ---------------------------------------------------------------------------


def dropout_forward(
    x: Array, p: float, rng: np.random.Generator, training: bool = True
) -> tuple[Array, Array | None]:
    """Inverted dropout: zero each unit with probability ``p``, scale survivors by 1/(1-p).

    The notes phrase it with the survival probability :math:`q = 1 - p`; dividing by
    q at training time keeps :math:`E[\\text{out}] = x`, so evaluation is the identity.

    Args:
        x: input of any shape.
        p: drop probability in [0, 1) (PyTorch's convention).
        rng: the random generator the mask is drawn from.
        training: evaluation mode returns x unchanged.

    Returns:
        ``out`` (same shape as x) and the scaled mask (None in evaluation mode).
    """
    if not 0 <= p < 1:
        raise LosslabError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x, None
    mask = (rng.random(x.shape, dtype=x.dtype) >= p) / x.dtype.type(1 - p)
    return x * mask, mask


def dropout_backward(dout: Array, cache: Array | None) -> Array:
    """out = x * mask, so dx = dout * mask (the identity in evaluation mode)."""
    return dout if cache is None else dout * cache


# ---------------------------------------------------------------------------
# Batch normalisation (seed: Daza §3, eqs. 40-44 and the compact backward of Q 3.2 a)
# ---------------------------------------------------------------------------


def _bn_axes(x: Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Axes to reduce (all but the feature/channel axis 1) and the broadcast shape."""
    if x.ndim < 2:
        raise LosslabError(f"batchnorm expects input of shape (N, C, ...), got {x.shape}")
    axes = (0,) + tuple(range(2, x.ndim))
    return axes, (1, x.shape[1]) + (1,) * (x.ndim - 2)


def batchnorm_forward(
    x: Array,
    gamma: Array,
    beta: Array,
    eps: float = 1e-5,
    running: dict[str, Array] | None = None,
    momentum: float = 0.1,
    training: bool = True,
) -> tuple[Array, tuple]:
    """Batch normalisation over the batch (and spatial) axes, per feature/channel.

    .. math::
        \\mu = \\frac1B \\sum_s x^s, \\quad \\sigma^2 = \\frac1B \\sum_s (x^s - \\mu)^2,
        \\quad \\hat x = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}, \\quad
        y = \\gamma \\hat x + \\beta

    B is the number of values per feature: N for x of shape (N, D), N*H*W for
    (N, C, H, W) ("spatial" batch-norm).

    Args:
        x: input, shape (N, D) or (N, C, H, W).
        gamma, beta: scale and shift, shape (D,) or (C,).
        eps: added to the variance (default 1e-5, as PyTorch).
        running: a dict with arrays "mean" and "var" of shape (D,), or None. In
            training mode it is updated in place, as PyTorch does,
            ``r <- (1 - momentum) r + momentum * batch_stat`` with the *unbiased*
            batch variance B/(B-1) sigma^2; in evaluation mode it replaces the batch
            statistics (required then).
        momentum: weight of the new batch statistics in the running average (0.1).
        training: batch statistics (True) or running statistics (False).

    Returns:
        ``out`` (same shape as x) and the cache for :func:`batchnorm_backward`.
    """
    axes, shape = _bn_axes(x)
    if training:
        mu = x.mean(axis=axes)
        xc = x - mu.reshape(shape)
        var = np.mean(xc * xc, axis=axes)
        b = x.size // x.shape[1]
        if running is not None:
            if b < 2:
                raise LosslabError(
                    "batchnorm in training mode needs more than one value per feature"
                )
            running["mean"] *= 1 - momentum
            running["mean"] += momentum * mu
            running["var"] *= 1 - momentum
            running["var"] += momentum * var * (b / (b - 1))
    else:
        if running is None:
            raise LosslabError("batchnorm in evaluation mode needs running statistics")
        xc = x - running["mean"].reshape(shape)
        var = running["var"]
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = xc * inv_std.reshape(shape)
    out = gamma.reshape(shape) * x_hat + beta.reshape(shape)
    return out, (x_hat, gamma, inv_std, training)


def batchnorm_backward(dout: Array, cache: tuple) -> tuple[Array, Array, Array]:
    """Backward of :func:`batchnorm_forward` in the compact form of Daza §3.2 a).

    .. math::
        \\frac{\\partial L}{\\partial \\gamma} = \\sum_s d\\text{out}^s \\hat x^s, \\quad
        \\frac{\\partial L}{\\partial \\beta} = \\sum_s d\\text{out}^s, \\quad
        \\frac{\\partial L}{\\partial x^k} = \\frac{\\gamma}{B\\sqrt{\\sigma^2 + \\epsilon}}
        \\Big(B\\, d\\text{out}^k - \\frac{\\partial L}{\\partial \\beta}
        - \\hat x^k \\frac{\\partial L}{\\partial \\gamma}\\Big)

    The last line follows because :math:`\\partial\\sigma^2/\\partial\\mu = 0`, so only the
    direct path and the paths through :math:`\\mu` and :math:`\\sigma^2` remain (Daza
    eq. 44). In evaluation mode :math:`\\mu, \\sigma^2` are constants and
    :math:`dx = d\\text{out}\\, \\gamma / \\sqrt{\\sigma^2_{run} + \\epsilon}`.

    Returns:
        ``(dx, dgamma, dbeta)`` with the shapes of x, gamma, beta.
    """
    x_hat, gamma, inv_std, training = cache
    axes, shape = _bn_axes(x_hat)
    dbeta = dout.sum(axis=axes)
    dgamma = np.sum(dout * x_hat, axis=axes)
    scale = (gamma * inv_std).reshape(shape)
    if not training:
        return dout * scale, dgamma, dbeta
    b = x_hat.size // x_hat.shape[1]
    dx = (scale / b) * (b * dout - dbeta.reshape(shape) - x_hat * dgamma.reshape(shape))
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------
# Convolution and pooling by im2col (the CNN of Daza §4 and Janocha's CIFAR convnet)
# ---------------------------------------------------------------------------


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pad(x: Array, padding: tuple[int, int], value: float = 0.0) -> Array:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _windows(xp: Array, kernel: tuple[int, int], stride: tuple[int, int]) -> Array:
    """A strided view (N, C, Ho, Wo, kh, kw) of every kh x kw window of padded xp."""
    win = sliding_window_view(xp, kernel, axis=(2, 3))
    return win[:, :, :: stride[0], :: stride[1]]


def _output_size(size: int, k: int, s: int, p: int, what: str) -> int:
    out = (size + 2 * p - k) // s + 1
    if out < 1:
        raise LosslabError(
            f"{what}: a kernel of {k} with padding {p} does not fit an input of size {size}"
        )
    return out


def _pool_geometry(
    x: Array,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None,
    padding: int | tuple[int, int],
    what: str,
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(kernel, stride, padding) pairs of a pooling of x (N, C, H, W), refused if no window fits.

    ``stride`` defaults to the kernel size (PyTorch).
    """
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding = _pair(padding)
    for k, s, p, size in zip(kernel, stride, padding, x.shape[2:], strict=True):
        _output_size(size, k, s, p, what)
    return kernel, stride, padding


def _col2im(dwin: Array, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple) -> Array:
    """Adjoint of :func:`_windows`: scatter-add window gradients (N, C, Ho, Wo, kh, kw)
    back onto the input grid (N, C, H, W); one vectorised add per kernel offset."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = dwin.shape[2:4]
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw] += dwin[:, :, :, :, i, j]
    return dxp[:, :, ph : ph + h, pw : pw + w]


def conv2d_forward(
    x: Array,
    W: Array,
    b: Array | None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> tuple[Array, tuple]:
    """2-D cross-correlation (PyTorch's ``conv2d``) as one matrix product over im2col columns.

    .. math::
        \\text{out}_{n f i j} = b_f + \\sum_{c, u, v} W_{f c u v}\\,
        x^{pad}_{n, c, s_h i + u, s_w j + v}

    im2col lays every receptive field out as a row of length C*kh*kw, so the
    convolution is ``cols @ W.reshape(F, -1).T``.

    Args:
        x: input, shape (N, C, H, W).
        W: filters, shape (F, C, kh, kw) (PyTorch's layout).
        b: bias (F,) or None.
        stride, padding: ints or (h, w) pairs; zero padding.

    Returns:
        ``out`` of shape (N, F, Ho, Wo), Ho = (H + 2 ph - kh) // sh + 1, and the cache.
    """
    stride, padding = _pair(stride), _pair(padding)
    n, c, h, w = x.shape
    f, cw, kh, kw = W.shape
    if c != cw:
        raise LosslabError(f"conv2d: input has {c} channels but the filters expect {cw}")
    ho = _output_size(h, kh, stride[0], padding[0], "conv2d")
    wo = _output_size(w, kw, stride[1], padding[1], "conv2d")
    win = _windows(_pad(x, padding), (kh, kw), stride)
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
    out = cols @ W.reshape(f, -1).T
    if b is not None:
        out += b
    out = out.reshape(n, ho, wo, f).transpose(0, 3, 1, 2)
    return out, (x.shape, cols, W, b is not None, stride, padding)


def conv2d_backward(
    dout: Array, cache: tuple, input_grad: bool = True
) -> tuple[Array | None, Array, Array | None]:
    """Backward of :func:`conv2d_forward`; with :math:`G` = dout as an (N*Ho*Wo, F) matrix
    and :math:`W_{uv}` = W[:, :, u, v] (F, C) the filter taps at kernel offset (u, v),

    .. math::
        dW = G^\\top \\text{cols}, \\quad db = \\sum_{rows} G, \\quad
        dx^{pad}_{n, :, s_h i + u, s_w j + v} \\mathrel{+}= G_{nij}\\, W_{uv}

    The forward is linear in x and each output pixel read input pixel
    :math:`(s_h i + u, s_w j + v)` through :math:`W_{uv}`, so every offset (u, v) sends
    :math:`G W_{uv}` back there. This is col2im of :math:`d\\text{cols} = G W_{mat}`
    done one offset at a time, so the (N*Ho*Wo, C*kh*kw) matrix dcols is never built
    (2-3x faster on one core for the Janocha and VGG layers).

    ``input_grad=False`` skips dx (None then), the costly half, for a first layer.

    Returns:
        ``(dx, dW, db)`` with the shapes of x, W, b.
    """
    x_shape, cols, W, has_bias, (sh, sw), (ph, pw) = cache
    n, c, h, w = x_shape
    f, _, kh, kw = W.shape
    ho, wo = dout.shape[2:]
    g = dout.transpose(0, 2, 3, 1).reshape(-1, f)
    dW = (g.T @ cols).reshape(W.shape)
    db = g.sum(axis=0) if has_bias else None
    if not input_grad:
        return None, dW, db
    # Channels-last accumulator: each offset's (N*Ho*Wo, C) product lands as one block.
    dxp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=g.dtype)
    for u in range(kh):
        for v in range(kw):
            tap = (g @ W[:, :, u, v]).reshape(n, ho, wo, c)
            dxp[:, u : u + sh * ho : sh, v : v + sw * wo : sw] += tap
    dx = dxp[:, ph : ph + h, pw : pw + w].transpose(0, 3, 1, 2)
    return dx, dW, db


def max_pool2d_forward(
    x: Array,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> tuple[Array, tuple]:
    """Max over each kh x kw window: :math:`\\text{out}_{ncij} = \\max_{u,v}
    x^{pad}_{n, c, s_h i + u, s_w j + v}`; padding counts as :math:`-\\infty`.

    Args:
        x: shape (N, C, H, W).
        kernel_size: int or (kh, kw); stride defaults to the kernel size (PyTorch).
        padding: int or pair.

    Returns:
        ``out`` (N, C, Ho, Wo) and the cache (the argmax of each window).
    """
    kernel, stride, padding = _pool_geometry(x, kernel_size, stride, padding, "max_pool2d")
    win = _windows(_pad(x, padding, -np.inf), kernel, stride)
    flat = win.reshape(win.shape[:4] + (-1,))
    # The first maximal element of the window gets the gradient, as in PyTorch.
    arg = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    return out, (x.shape, arg, kernel, stride, padding)


def max_pool2d_backward(dout: Array, cache: tuple) -> Array:
    """The max is a selection, so the whole window gradient goes to its argmax:
    :math:`dx_{\\arg\\max} \\mathrel{+}= d\\text{out}`, 0 elsewhere. Overlapping
    windows (stride < kernel) add their contributions."""
    x_shape, arg, kernel, stride, padding = cache
    kh, kw = kernel
    onehot = arg[..., None] == np.arange(kh * kw)
    dwin = (onehot * dout[..., None]).reshape(dout.shape + (kh, kw))
    return _col2im(dwin, x_shape, kernel, stride, padding)


def avg_pool2d_forward(
    x: Array,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> tuple[Array, tuple]:
    """Mean over each kh x kw window, zero padding included in the count (PyTorch's
    default ``count_include_pad=True``): :math:`\\text{out} = \\frac{1}{k_h k_w}
    \\sum_{u,v} x^{pad}_{n, c, s_h i + u, s_w j + v}`.

    Args and shapes as :func:`max_pool2d_forward`.
    """
    kernel, stride, padding = _pool_geometry(x, kernel_size, stride, padding, "avg_pool2d")
    win = _windows(_pad(x, padding), kernel, stride)
    return win.mean(axis=(-2, -1)), (x.shape, kernel, stride, padding)


def avg_pool2d_backward(dout: Array, cache: tuple) -> Array:
    """Every element of a window receives :math:`d\\text{out} / (k_h k_w)`."""
    x_shape, kernel, stride, padding = cache
    kh, kw = kernel
    share = dout / dout.dtype.type(kh * kw)
    dwin = np.broadcast_to(share[..., None, None], dout.shape + (kh, kw))
    return _col2im(dwin, x_shape, kernel, stride, padding)
