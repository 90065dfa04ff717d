r"""The kernels behind every loss: ``(x (N, C), target) -> (values (N,), probe)``.

A kernel computes the unreduced, unweighted loss of each sample in the compute dtype; the
modules of :mod:`losslab.losses` and the functions of :mod:`losslab.losses.functional`
both call it through :func:`losslab.losses._base.run_loss`, which validates, weights,
reduces and casts. ``target`` is (N,) int64 class indices or (N, C) probability rows; the
probe is an (N,) intermediate that is non-finite whenever a logits row holds NaN or +inf
(``None``: the values themselves).

How they reach PyTorch's speed (index targets, the common case):

* No one-hot matrix: the target terms are gathered. A sum over classes with a different
  term at the target, :math:`\sum_j \phi(o_j) - \phi(o_c) + \psi(o_c)`, is a row reduction
  plus an O(N) correction.
* Losses of :math:`p_c` alone (log, squared log, expectation, alpha, gce, truncated log)
  are functions of the (N,) vector ``F.cross_entropy(o, c, reduction="none")`` =
  :math:`-\log p_c`, so they cost one cross-entropy.
* In eager mode, the raw-logit losses (l1, l2, hinges) and the losses of
  :math:`\|p\|^2` (regularised expectation, Tanimoto, Cauchy-Schwarz) run as
  ``torch.autograd.Function`` s whose backward is derived by hand (the same derivations
  as :mod:`losslab.npnet.losses`). Their backward is written with differentiable ops when
  a second derivative is requested (``create_graph=True``). Under ``torch.compile`` and
  ``torch.func`` transforms the plain differentiable formula runs instead: the compiler
  fuses it better than any hand-written kernel, and every transform composes with it.
* float16 / bfloat16 logits arrive here in float32 (see :func:`~losslab.losses._base.run_loss`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from losslab.losses._base import check_number, tracing

Tensor = torch.Tensor
# (values (N,), probe): what every kernel returns (see _base.Kernel)
KernelOutput = tuple[Tensor, Tensor | None]


def _gather(x: Tensor, t: Tensor) -> Tensor:
    """x[i, t_i] for x (N, C), t (N,) -> (N,)."""
    return x.gather(1, t.unsqueeze(1)).squeeze(1)


def _fast(x: Tensor) -> bool:
    """The hand-written autograd Functions run only on plain eager tensors.

    Hence they are written in the classic ``forward(ctx, ...)`` form: torch.func never sees
    them, and the ``setup_context`` form would bind the arguments with ``inspect`` on every
    call (a trivial Function measured ~49 us per call, against ~8 us in the classic form).
    """
    return not tracing(x)


# ---------------------------------------------------------------------------------------
# raw-logit losses: sum_j phi(o_j) - phi(o_c) + psi(o_c) for an index target c
#   l1:     phi = |o|,                psi = |1 - o|
#   l2:     phi = o^2,                psi = (1 - o)^2
#   hinge:  phi = max(0, 1/2 + o)^p,  psi = max(0, 1/2 - o)^p   (+/-1 coding of y)


def _phi(kind: str, x: Tensor) -> Tensor:
    if kind == "l1":
        return x.abs()
    if kind == "l2":
        return x.square()
    power = int(kind[-1])
    m = torch.relu(0.5 + x)
    return m if power == 1 else m.pow(power)


def _psi(kind: str, x: Tensor) -> Tensor:
    if kind == "l1":
        return (1.0 - x).abs()
    if kind == "l2":
        return (1.0 - x).square()
    power = int(kind[-1])
    m = torch.relu(0.5 - x)
    return m if power == 1 else m.pow(power)


def _dphi(kind: str, x: Tensor, g: Tensor) -> Tensor:
    """g * phi'(x) with differentiable ops, for x (N, C) or (N,) and g broadcastable."""
    if kind == "l1":
        return torch.sign(x) * g
    if kind == "l2":
        return x * (2.0 * g)
    power = int(kind[-1])
    if power == 1:
        return torch.where(x > -0.5, g, 0.0)
    m = torch.clamp_min(x + 0.5, 0.0)
    return m * (2.0 * g) if power == 2 else m.square() * (3.0 * g)


def _dpsi(kind: str, x: Tensor, g: Tensor) -> Tensor:
    """g * psi'(x) on the (N,) target logits."""
    if kind == "l1":
        return torch.sign(x - 1.0) * g
    if kind == "l2":
        return (x - 1.0) * (2.0 * g)
    power = int(kind[-1])
    if power == 1:
        return -torch.where(x < 0.5, g, 0.0)
    m = torch.clamp_min(0.5 - x, 0.0)
    return -(m * (2.0 * g) if power == 2 else m.square() * (3.0 * g))


def _row_sum_phi(kind: str, x: Tensor) -> tuple[Tensor, Tensor]:
    """sum_j phi(x_j), (N,), in as few passes as possible, and what backward reuses (N, C).

    hinge: m = max(0, 1/2 + x) is kept (hinge^2 needs 2m, hinge^3 needs 3m^2, kept as
    m^2); the row sum of m^3 is one batched dot product of m^2 with m, since
    ``vector_norm(m, 3)`` goes through a general power, several times slower.
    """
    nothing = x.new_empty(0)  # l1, l2 and hinge need only x itself
    if kind == "l1":
        return torch.linalg.vector_norm(x, 1, dim=-1), nothing
    if kind == "l2":
        return torch.linalg.vector_norm(x, 2, dim=-1).square(), nothing
    power = int(kind[-1])
    if power == 1:
        return torch.clamp_min(x, -0.5).sum(-1) + 0.5 * x.shape[-1], nothing
    m = torch.clamp_min(x + 0.5, 0.0)
    if power == 2:
        return torch.linalg.vector_norm(m, 2, dim=-1).square(), m
    m2 = m.square()
    return torch.bmm(m2.unsqueeze(1), m.unsqueeze(2)).reshape(-1), m2


def _raw_grad_fast(kind: str, x: Tensor, kept: Tensor, g: Tensor) -> Tensor:
    """g * phi'(x), (N, C), from what the forward kept; one fresh tensor, no autograd."""
    if kind == "l1":
        return torch.sign(x).mul_(g)
    if kind == "l2":
        return x * (2.0 * g)
    power = int(kind[-1])
    if power == 1:
        # relu's own backward kernel: g where x > -1/2, else 0, in one pass
        return torch.ops.aten.threshold_backward(g.expand_as(x), x, -0.5)
    return kept * (float(power) * g)


class _RawSum(torch.autograd.Function):
    """sum_j phi(x_j) - phi(x_c) + psi(x_c) with the hand-derived backward.

    d/dx_j = phi'(x_j) for j != c and psi'(x_c) at c: one elementwise pass over x (or
    over what the forward kept) and an O(N) scatter, instead of autograd's chain of
    (N, C) temporaries.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, kind: str) -> tuple[Tensor, Tensor]:
        total, kept = _row_sum_phi(kind, x)
        xc = _gather(x, t)
        ctx.kind = kind
        ctx.mark_non_differentiable(kept)
        ctx.save_for_backward(x, t, kept)
        return total - _phi(kind, xc) + _psi(kind, xc), kept

    @staticmethod
    def backward(ctx: Any, g: Tensor, _g_kept: Tensor | None) -> tuple[Tensor, None, None]:
        x, t, kept = ctx.saved_tensors
        kind = ctx.kind
        xc = _gather(x, t)
        correction = (_dpsi(kind, xc, g) - _dphi(kind, xc, g)).unsqueeze(1)
        index = t.unsqueeze(1)
        if torch.is_grad_enabled():
            # create_graph: the backward itself is differentiated, so it is written with
            # differentiable, out-of-place ops of x (not of what the forward kept).
            grad = _dphi(kind, x, g.unsqueeze(1))
            return grad.scatter_add(1, index, correction), None, None
        grad = _raw_grad_fast(kind, x, kept, g.unsqueeze(1))
        return grad.scatter_add_(1, index, correction), None, None


def _raw(kind: str, x: Tensor, t: Tensor) -> tuple[Tensor, None]:
    if t.ndim == 2:
        return _raw_dense(kind, x, t), None
    if _fast(x):
        return _RawSum.apply(x, t, kind)[0], None
    xc = _gather(x, t)
    if kind == "hinge1":
        # max(0, u) as (u + |u|) / 2: Inductor compiles relu's masked backward on (N, C)
        # several times slower than CE (measured 3x), abs's sign in one fused pass; the
        # subgradient at the kink u = 0 becomes 1/2 (a valid one) instead of 0.
        u = x + 0.5
        row = 0.5 * (u + u.abs()).sum(-1)
    else:
        row = _phi(kind, x).sum(-1)
    return row - _phi(kind, xc) + _psi(kind, xc), None


def _raw_dense(kind: str, x: Tensor, y: Tensor) -> Tensor:
    if kind == "l1":
        return (y - x).abs().sum(-1)
    if kind == "l2":
        return (y - x).square().sum(-1)
    power = int(kind[-1])
    margin = torch.relu(0.5 - (2.0 * y - 1.0) * x)
    return (margin if power == 1 else margin.pow(power)).sum(-1)


# ---------------------------------------------------------------------------------------
# softmax statistics: log p_c and log ||p||^2


class _SoftmaxStats(torch.autograd.Function):
    r"""(log p_c, log ||p||^2) of p = softmax(x) for index targets, hand-derived backward.

    Forward: one fused softmax, one max (for :math:`\log\sum e^x = x_m - \log p_m` at the
    arg-max m, where :math:`p_m \ge 1/C` cannot underflow) and one norm. Backward with
    upstream (a, b): :math:`\partial \log p_c/\partial x = \delta_c - p` and
    :math:`\partial \log\|p\|^2/\partial x = 2p \odot (p/\|p\|^2 - 1)`, so
    :math:`\nabla = p \odot (-(a + 2b) + (2b/\|p\|^2)\, p) + a\,\delta_c`.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        p = torch.softmax(x, dim=-1)
        top, arg = x.max(dim=-1)
        lse = top - torch.log(_gather(p, arg))
        pp = torch.linalg.vector_norm(p, dim=-1).square()
        ctx.mark_non_differentiable(p, pp)
        ctx.save_for_backward(x, t, p, pp)
        return _gather(x, t) - lse, torch.log(pp), p, pp

    @staticmethod
    def backward(
        ctx: Any, g_pc: Tensor, g_pp: Tensor, _gp: Tensor | None, _gpp: Tensor | None
    ) -> tuple[Tensor, None]:
        x, t, p, pp = ctx.saved_tensors
        if torch.is_grad_enabled():
            # Second derivatives: rebuild p from x so the backward is differentiable.
            p = torch.softmax(x, dim=-1)
            pp = p.square().sum(-1)
        a = (-(g_pc + 2.0 * g_pp)).unsqueeze(1)
        b = (2.0 * g_pp / pp).unsqueeze(1)
        index = t.unsqueeze(1)
        if torch.is_grad_enabled():
            grad = p * (a + b * p)
            return grad.scatter_add(1, index, g_pc.unsqueeze(1)), None
        grad = torch.addcmul(a, p, b).mul_(p)
        return grad.scatter_add_(1, index, g_pc.unsqueeze(1)), None


def _softmax_stats(x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """(log p_c, log ||p||^2), each (N,), for p = softmax(x) and index targets t."""
    if _fast(x):
        log_pc, log_pp, _, _ = _SoftmaxStats.apply(x, t)
        return log_pc, log_pp
    log_p = F.log_softmax(x, dim=-1)
    return _gather(log_p, t), torch.logsumexp(2.0 * log_p, dim=-1)


def _probabilities(x: Tensor, probability: str) -> Tensor:
    return torch.softmax(x, dim=-1) if probability == "softmax" else torch.sigmoid(x)


def _log_probabilities(x: Tensor, probability: str) -> Tensor:
    return F.log_softmax(x, dim=-1) if probability == "softmax" else F.logsigmoid(x)


def _nll(x: Tensor, t: Tensor) -> Tensor:
    r""":math:`-\log p_c` = per-sample cross-entropy, (N,)."""
    return F.cross_entropy(x, t, reduction="none")


# ---------------------------------------------------------------------------------------
# kernels: (x (N, C), t (N,) int64 or (N, C) float, **hyper) -> (values (N,), probe)
# The probe is non-finite when the row holds NaN or +inf (see _base.Kernel).


def l1_kernel(x: Tensor, t: Tensor) -> KernelOutput:
    r""":math:`\sum_j |y_j - o_j|`."""
    return _raw("l1", x, t)


def l2_kernel(x: Tensor, t: Tensor) -> KernelOutput:
    r""":math:`\sum_j (y_j - o_j)^2`."""
    return _raw("l2", x, t)


def hinge_kernel(x: Tensor, t: Tensor, power: int = 1) -> KernelOutput:
    r""":math:`\sum_j \max(0, \tfrac12 - \hat y_j o_j)^{\mathrm{power}}`, :math:`\hat y = 2y-1`."""
    return _raw(f"hinge{power}", x, t)


def log_kernel(x: Tensor, t: Tensor, probability: str = "softmax") -> KernelOutput:
    r""":math:`-\sum_j y_j \log p_j`; for sigmoid the binary cross-entropy summed over classes."""
    if t.ndim == 2:
        if probability == "softmax":
            return -(t * F.log_softmax(x, dim=-1)).sum(-1), None
        return -(t * F.logsigmoid(x) + (1.0 - t) * F.logsigmoid(-x)).sum(-1), None
    if probability == "softmax":
        return _nll(x, t), None
    # -sum_{j != c} log(1 - p_j) - log p_c = sum_j softplus(o_j) - o_c
    return F.softplus(x).sum(-1) - _gather(x, t), None


def _log_reduced(
    x: Tensor, t: Tensor, weight: Tensor | None, reduction: str, probability: str = "softmax"
) -> Tensor | None:
    """``F.cross_entropy`` with its own weighting and reduction (index targets, softmax)."""
    if t.ndim == 2 or probability != "softmax":
        return None
    return F.cross_entropy(x, t, weight=weight, reduction=reduction)


# The optional attribute of the kernel protocol (define_loss reads it with getattr).
log_kernel.reduced = _log_reduced  # type: ignore[attr-defined]


def squared_log_kernel(x: Tensor, t: Tensor, probability: str = "softmax") -> KernelOutput:
    r""":math:`\sum_j (y_j \log p_j)^2`; for sigmoid also :math:`((1-y_j)\log(1-p_j))^2`."""
    if t.ndim == 2:
        if probability == "softmax":
            return (t * F.log_softmax(x, dim=-1)).square().sum(-1), None
        positive = (t * F.logsigmoid(x)).square()
        negative = ((1.0 - t) * F.logsigmoid(-x)).square()
        return (positive + negative).sum(-1), None
    if probability == "softmax":
        nll = _nll(x, t)
        return nll.square(), nll
    # log(1 - p_j) = -softplus(o_j), log p_c = -softplus(-o_c)
    xc = _gather(x, t)
    values = F.softplus(x).square().sum(-1) - F.softplus(xc).square() + F.softplus(-xc).square()
    return values, None


def expectation_kernel(x: Tensor, t: Tensor, probability: str = "softmax") -> KernelOutput:
    r""":math:`\sum_j |y_j - p_j|` (= 2 - 2 p_c for one-hot y and softmax)."""
    if t.ndim == 2:
        return (t - _probabilities(x, probability)).abs().sum(-1), None
    if probability == "softmax":
        nll = _nll(x, t)
        return 2.0 - 2.0 * torch.exp(-nll), nll
    p = torch.sigmoid(x)
    return p.sum(-1) + 1.0 - 2.0 * _gather(p, t), x.sum(-1)


def regularised_expectation_kernel(
    x: Tensor, t: Tensor, probability: str = "softmax"
) -> KernelOutput:
    r""":math:`\sum_j (y_j - p_j)^2` (= 1 - 2 p_c + ||p||^2 for one-hot y)."""
    if t.ndim == 2:
        return (t - _probabilities(x, probability)).square().sum(-1), None
    if probability == "softmax":
        log_pc, log_pp = _softmax_stats(x, t)
        return 1.0 - 2.0 * torch.exp(log_pc) + torch.exp(log_pp), log_pc
    p = torch.sigmoid(x)
    return p.square().sum(-1) + 1.0 - 2.0 * _gather(p, t), x.sum(-1)


def _chebyshev_index(x: Tensor, t: Tensor, probability: str) -> Tensor:
    """max_j |p_j - y_j| for index targets: p_j off the target, 1 - p_c on it (no one-hot)."""
    p = _probabilities(x, probability)
    index = t.unsqueeze(1)
    return p.scatter(1, index, 1.0 - p.gather(1, index)).amax(-1)


class _Chebyshev(torch.autograd.Function):
    r"""max(1 - p_c, max_{j != c} p_j) for p = softmax(x), hand-derived backward.

    The best wrong class k has the largest logit off the target (a top-3 of x finds it
    and shows ties). Where one term is the maximum, the gradient is that of one
    probability, :math:`\pm g\, p_m (\delta_m - p)`: one pass over p. Rows with tied
    maxima (measure zero) take the exact ``amax`` subgradient, shared evenly, from
    autograd on the plain formula; so does a requested second derivative.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor) -> tuple[Tensor, ...]:
        p = torch.softmax(x, dim=-1)
        top = x.topk(min(3, x.shape[-1]), dim=-1)
        first_is_target = top.indices[:, 0] == t
        k = torch.where(first_is_target, top.indices[:, 1], top.indices[:, 0])
        pk, pc = _gather(p, k), _gather(p, t)
        value = torch.maximum(1.0 - pc, pk)
        tied = 1.0 - pc == pk
        if x.shape[-1] > 2:
            # the two largest wrong-class logits are equal
            runner = torch.where(
                first_is_target | (top.indices[:, 1] == t), top.values[:, 2], top.values[:, 1]
            )
            tied |= runner == _gather(x, k)
        # which term is the maximum: m = c (sign -1) or m = k (sign +1)
        on_target = 1.0 - pc > pk
        m = torch.where(on_target, t, k)
        pm = torch.where(on_target, -pc, pk)
        ctx.mark_non_differentiable(p, m, pm, tied)
        ctx.save_for_backward(x, t, p, m, pm, tied)
        return value, p, m, pm, tied

    @staticmethod
    def backward(ctx: Any, g: Tensor, *_unused: Tensor | None) -> tuple[Tensor, None]:
        x, t, p, m, pm, tied = ctx.saved_tensors
        create_graph = torch.is_grad_enabled()
        if create_graph or bool(tied.any()):
            with torch.enable_grad():
                xg = x if create_graph else x.detach().requires_grad_(True)
                value = _chebyshev_index(xg, t, "softmax")
                (grad,) = torch.autograd.grad(value, xg, g, create_graph=create_graph)
            return grad, None
        # d p_m / dx = p_m (delta_m - p); pm carries the sign of the term.
        coef = (g * pm).unsqueeze(1)
        grad = p * (-coef)
        return grad.scatter_add_(1, m.unsqueeze(1), coef), None


def chebyshev_kernel(x: Tensor, t: Tensor, probability: str = "softmax") -> KernelOutput:
    r""":math:`\max_j |p_j - y_j|`; at ties the gradient is shared evenly (``amax``)."""
    if t.ndim == 2:
        return (_probabilities(x, probability) - t).abs().amax(-1), None
    if probability == "softmax" and _fast(x) and x.device.type == "cpu":
        # (CPU only: finding a tie needs a host-side check, a sync on CUDA.)
        return _Chebyshev.apply(x, t)[0], None
    return _chebyshev_index(x, t, probability), (None if probability == "softmax" else x.sum(-1))


def tanimoto_kernel(x: Tensor, t: Tensor, probability: str = "softmax") -> KernelOutput:
    r""":math:`-\,p\cdot y / (\|p\|^2 + \|y\|^2 - p\cdot y)`, in [-1, 0]."""
    if t.ndim == 2:
        p = _probabilities(x, probability)
        py = (p * t).sum(-1)
        # The denominator is >= (||p||^2 + ||y||^2) / 2 > 0 for any probability row y.
        return -py / (p.square().sum(-1) + t.square().sum(-1) - py), None
    if probability == "softmax":
        log_pc, log_pp = _softmax_stats(x, t)
        pc = torch.exp(log_pc)
        return -pc / (torch.exp(log_pp) + 1.0 - pc), log_pc
    p = torch.sigmoid(x)
    pc = _gather(p, t)
    return -pc / (p.square().sum(-1) + 1.0 - pc), x.sum(-1)


def cauchy_schwarz_kernel(x: Tensor, t: Tensor, probability: str = "softmax") -> KernelOutput:
    r""":math:`-\log(p\cdot y / (\|p\|\,\|y\|))`, in the log domain.

    For one-hot y: :math:`-\log p_c + \tfrac12\log\|p\|^2`. For soft y:
    :math:`-\log\sum_j e^{\log p_j + \log y_j} + \tfrac12 \log\sum_j e^{2\log p_j}
    + \tfrac12\log\|y\|^2`, where the zero entries of y enter as :math:`\log 0 = -\infty`,
    which logsumexp ignores with a zero gradient. An underflowing :math:`p_c` thus costs
    :math:`-\log p_c` (finite) instead of :math:`-\log 0`.
    """
    if t.ndim == 2:
        log_p = _log_probabilities(x, probability)
        log_py = torch.logsumexp(log_p + torch.log(t), dim=-1)
        half_log_pp = 0.5 * torch.logsumexp(2.0 * log_p, dim=-1)
        return half_log_pp + 0.5 * torch.log(t.square().sum(-1)) - log_py, None
    if probability == "softmax":
        log_pc, log_pp = _softmax_stats(x, t)
        return 0.5 * log_pp - log_pc, None
    log_p = F.logsigmoid(x)
    return 0.5 * torch.logsumexp(2.0 * log_p, dim=-1) - _gather(log_p, t), None


def _masked_log_p(x: Tensor, y: Tensor) -> Tensor:
    """log softmax(o), set to 0 where y == 0 so nothing downstream can overflow there."""
    return F.log_softmax(x, dim=-1).masked_fill(y == 0, 0.0)


def gce_kernel(x: Tensor, t: Tensor, q: float = 0.7) -> KernelOutput:
    r""":math:`\sum_j y_j (1 - p_j^q) / q`; :math:`p^q = e^{q \log p}`, ``-expm1`` for 1 - p^q."""
    if t.ndim == 2:
        return (t * (-torch.expm1(q * _masked_log_p(x, t)) / q)).sum(-1), None
    nll = _nll(x, t)
    return -torch.expm1(-q * nll) / q, nll


def alpha_kernel(x: Tensor, t: Tensor, alpha: float = 2.0) -> KernelOutput:
    r""":math:`\sum_j y_j \frac{\alpha}{\alpha-1}(1 - p_j^{1-1/\alpha})`; alpha = 1: log loss."""
    if alpha == 1.0:
        return log_kernel(x, t)
    return gce_kernel(x, t, q=1.0 - 1.0 / alpha)


def truncated_log_kernel(x: Tensor, t: Tensor, k: float = 0.5) -> KernelOutput:
    r""":math:`-\sum_j y_j \log\max(p_j, k)` = :math:`\min(-\log p_c, -\log k)` for index c."""
    cap = -math.log(k) if k > 0 else math.inf
    if t.ndim == 2:
        return -(t * torch.clamp_min(F.log_softmax(x, dim=-1), -cap)).sum(-1), None
    nll = _nll(x, t)
    return torch.clamp_max(nll, cap), nll


# ---------------------------------------------------------------------------------------
# hyper-parameter checks (the modules of losslab.losses call them too)


def check_alpha(alpha: float) -> float:
    """alpha > 0, ``inf`` allowed (alpha-loss)."""
    return check_number(alpha, "alpha (alpha loss)", low=0.0, low_open=True, allow_inf=True)


def check_q(q: float) -> float:
    """q in (0, 1] (generalised cross-entropy)."""
    return check_number(q, "q (gce loss)", low=0.0, high=1.0, low_open=True)


def check_k(k: float) -> float:
    """k in [0, 1] (truncated log loss)."""
    return check_number(k, "k (truncated_log loss)", low=0.0, high=1.0)
