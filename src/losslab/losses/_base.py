"""The loss interface, and the validation, class weights, dtypes and reductions every loss shares.

:class:`Loss` declares what a trainer needs of a loss (``per_sample``, ``requires_scale``,
``attach``, ``predict_logits``). :class:`ClassificationLoss` implements it for the
registered losses: each supplies a *kernel* ``(x (N, C), target) -> (N,)`` from
:mod:`losslab.losses.kernels`, and the class validates, weights, reduces and casts
exactly as the functional form does (one implementation per loss).

Validation costs almost nothing (see :func:`check_inputs`): shapes always (they are static,
so ``torch.compile`` and ``vmap`` see plain Python); label range and finiteness in eager
mode on CPU with one O(N) check before and one after the kernel; on CUDA an asynchronous
device-side assert on the labels (never a host sync); nothing data-dependent while
``torch.compile`` or ``torch.func`` trace. ``validate="full"`` checks everything up front on
any device (debugging; it synchronises).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from losslab.checks import check_choice, check_real
from losslab.errors import LosslabError

REDUCTIONS = ("mean", "sum", "none")
PROBABILITIES = ("softmax", "sigmoid")

# A probability target row may miss a sum of 1 by this much (float32 label smoothing
# and mixup rows are off by a few ulps, never by 1e-3).
_ROW_SUM_TOLERANCE = 1e-3
_HALF = (torch.float16, torch.bfloat16)

# A kernel: (logits (N, C) in the compute dtype, target (N,) int64 or (N, C)) ->
# (values (N,), probe (N,) or None). A probe is an intermediate that is non-finite
# whenever the logits row holds NaN or +inf (e.g. the row's cross-entropy); None means
# the values themselves are that probe.
Kernel = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]

_SKIP_FINITE = contextvars.ContextVar("losslab_skip_finite_check", default=False)
_SKIP_LABELS = contextvars.ContextVar("losslab_skip_label_check", default=False)


@contextlib.contextmanager
def _switched_on(flag: contextvars.ContextVar) -> Iterator[None]:
    token = flag.set(True)
    try:
        yield
    finally:
        flag.reset(token)


def skip_finite_check() -> contextlib.AbstractContextManager[None]:
    """Inside this block losses do not raise on non-finite logits (labels are still checked).

    For a trainer that detects divergence itself (a NaN loss marks a model diverged):
    it keeps the label and shape checks of a user's loss without changing the loss object.
    """
    return _switched_on(_SKIP_FINITE)


def skip_label_check() -> contextlib.AbstractContextManager[None]:
    """Inside this block losses do not check that index labels lie in [0, C).

    For a trainer that checked every label once against the model's class count before
    training: the check costs an O(N) pass and a host read on every call, which adds up
    over the many small loss calls of a grid. Shapes and dtypes are still checked.
    """
    return _switched_on(_SKIP_LABELS)


def check_number(value: object, what: str, **bounds: Any) -> float:
    """:func:`losslab.checks.check_real` that also accepts a one-element tensor.

    Args:
        value: a real number (Python, NumPy or a one-element tensor).
        what: how the message names it, e.g. ``"alpha (alpha loss)"``.
        **bounds: ``low``, ``high``, ``low_open``, ``high_open``, ``allow_inf`` of
            :func:`~losslab.checks.check_real`.
    """
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype == torch.bool or value.is_complex():
            raise LosslabError(f"{what} must be a real number; got {value!r}")
        value = value.item()
    return check_real(what, value, **bounds)


def check_probability(probability: object) -> str:
    """``"softmax"`` (p = softmax(o)) or ``"sigmoid"`` (p = sigmoid(o), element-wise)."""
    return check_choice("probability", probability, PROBABILITIES)


def check_validate(validate: object) -> bool | str:
    """``True`` (cheap checks), ``False`` (shapes only) or ``"full"`` (debug, synchronises)."""
    if validate is True or validate is False or validate == "full":
        return validate
    raise LosslabError(f"validate must be True, False or 'full'; got {validate!r}")


def tracing(t: torch.Tensor) -> bool:
    """True while torch.compile, torch.func (vmap, grad, ...) or the JIT trace ``t``.

    Data-dependent Python (``bool(tensor)``) would break those graphs, so value checks
    and the hand-written autograd Functions step aside there.
    """
    return (
        torch.compiler.is_compiling()
        or torch._C._functorch.is_functorch_wrapped_tensor(t)
        or torch.jit.is_tracing()
        or t.device.type == "meta"
    )


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16 / bfloat16 logits are computed in float32 (range and rounding), others as is."""
    return torch.float32 if dtype in _HALF else dtype


def output_dtype(logits: torch.Tensor) -> torch.dtype:
    """The result dtype: the logits' own, float32 under autocast (as PyTorch's own losses)."""
    if logits.dtype in _HALF and torch.is_autocast_enabled(logits.device.type):
        return torch.float32
    return logits.dtype


def check_inputs(
    name: str,
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    validate: bool | str,
) -> None:
    """Refuse bad input before any work; raises :class:`LosslabError` with one line.

    Shapes, dtypes and an empty batch are always checked. Labels in [0, C) are checked
    in eager mode (on CPU exactly; on other devices by ``torch._assert_async``, which never
    synchronises). Probability targets are checked in eager mode on CPU. ``validate="full"``
    adds the finiteness of the logits and synchronises on any device.

    Args:
        name: the loss's name for the message.
        logits: (N, C) floating point, C >= 2, N >= 1.
        target: (N,) integer class indices or (N, C) float probability rows.
        weight: optional (C,) class weights.
        validate: ``True``, ``False`` or ``"full"``.
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise LosslabError(f"{name}: logits must be a floating-point tensor (N, C)")
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise LosslabError(
            f"{name}: logits must have shape (N, C) with C >= 2 classes; got "
            f"{tuple(logits.shape)}. Flatten extra dimensions into N first."
        )
    if not isinstance(target, torch.Tensor):
        raise LosslabError(f"{name}: target must be a tensor, got {type(target).__name__}")
    n, c = logits.shape
    if n == 0:
        raise LosslabError(
            f"{name}: the batch is empty (logits have shape {tuple(logits.shape)}); a loss "
            "needs at least one sample: skip empty batches before calling it"
        )
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != c):
        raise LosslabError(
            f"{name}: weight has {tuple(weight.shape)} entries but the logits have C = {c} "
            "classes; pass one weight per class, shape (C,)"
        )
    if target.ndim == 1:
        if target.dtype == torch.bool or target.is_floating_point() or target.is_complex():
            raise LosslabError(
                f"{name}: a 1-d target holds class indices and must be an integer tensor; "
                f"got dtype {target.dtype}. Pass target.long(), or a (N, C) probability matrix."
            )
        if target.shape[0] != n:
            raise LosslabError(
                f"{name}: target has {target.shape[0]} labels but logits have N = {n} rows"
            )
    elif target.ndim == 2:
        if not target.is_floating_point():
            raise LosslabError(
                f"{name}: a (N, C) target must be a float probability matrix; got dtype "
                f"{target.dtype}. Pass class indices as a 1-d integer tensor instead."
            )
        if tuple(target.shape) != (n, c):
            raise LosslabError(
                f"{name}: target shape {tuple(target.shape)} does not match logits shape "
                f"{(n, c)}"
            )
    else:
        raise LosslabError(
            f"{name}: target must be (N,) class indices or an (N, C) probability matrix; got "
            f"shape {tuple(target.shape)}"
        )
    if validate is False or tracing(logits) or tracing(target):
        return
    full = validate == "full"
    if full and not bool(torch.isfinite(logits).all()):
        _raise_nonfinite(name, logits)
    if target.ndim == 1:
        if _SKIP_LABELS.get():
            return
        low, high = torch.aminmax(target)
        if full or target.device.type == "cpu":
            lo, hi = int(low), int(high)  # one O(N) pass; reading it costs nothing on CPU
            if lo < 0 or hi >= c:
                raise LosslabError(
                    f"{name}: class labels must lie in [0, {c}); got values from {lo} "
                    f"to {hi}. Remap the labels to 0..{c - 1}, or give the model "
                    f"{hi + 1} outputs"
                )
        else:
            ok = (low >= 0) & (high < c)
            torch._assert_async(ok, f"{name}: class labels must lie in [0, {c})")
    elif full or target.device.type == "cpu":
        y = target
        if not bool(torch.isfinite(y).all()) or bool((y < 0).any()):
            raise LosslabError(
                f"{name}: a (N, C) target must hold finite, non-negative probabilities"
            )
        sums = y.sum(-1)
        if bool(((sums - 1).abs() > _ROW_SUM_TOLERANCE).any()):
            raise LosslabError(
                f"{name}: every row of a (N, C) target must sum to 1 (a probability "
                f"distribution); row sums range from {float(sums.min()):g} to "
                f"{float(sums.max()):g}"
            )
        # Soft targets are not the hot path: check the logits fully up front.
        if not bool(torch.isfinite(logits).all()):
            _raise_nonfinite(name, logits)


def check_finite(
    name: str, logits: torch.Tensor, probe: torch.Tensor, validate: bool | str
) -> None:
    """After the kernel: a non-finite probe (N,) means NaN or inf in the logits (CPU, eager).

    O(N) in the common case; only when the probe is non-finite are the logits scanned,
    so a loss that is legitimately infinite (alpha < 1 on a lost sample) is not refused.
    """
    if (
        validate is not True
        or logits.device.type != "cpu"
        or tracing(logits)
        or _SKIP_FINITE.get()
        # NaN and inf survive a sum; a finite sum that overflows only costs the scan below
        or math.isfinite(float(probe.detach().sum()))
    ):
        return
    if not bool(torch.isfinite(logits).all()):
        _raise_nonfinite(name, logits)


def _raise_nonfinite(name: str, logits: torch.Tensor) -> None:
    bad = int((~torch.isfinite(logits)).any(-1).sum())
    raise LosslabError(
        f"{name}: logits contain NaN or inf in {bad} of {logits.shape[0]} rows; the "
        "model has probably diverged (lower the learning rate) or its input holds NaN"
    )


def reduce(
    values: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    reduction: str,
) -> torch.Tensor:
    r"""Apply class weights and the reduction to per-sample values (N,).

    Sample i gets the weight :math:`w_i = \sum_j \mathrm{weight}_j y_{ij}` (= ``weight[c_i]``
    for an index target, gathered, no one-hot). ``"none"`` returns :math:`w_i \ell_i`,
    ``"sum"`` their sum, ``"mean"`` :math:`\sum_i w_i \ell_i / \sum_i w_i` (as
    ``F.cross_entropy``).
    """
    if weight is None:
        if reduction == "none":
            return values
        return values.sum() if reduction == "sum" else values.mean()
    w = weight.to(device=values.device, dtype=values.dtype)
    w = w[target] if target.ndim == 1 else target.to(values.dtype) @ w
    weighted = w * values
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    return weighted.sum() / w.sum()


def _kernel_call(
    kernel: Kernel, logits: torch.Tensor, target: torch.Tensor, hyper: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``kernel`` in the compute dtype, outside autocast (its own ops pick no dtype)."""
    x = logits.to(compute_dtype(logits.dtype))
    t = target.long() if target.ndim == 1 else target.to(x.dtype)
    if torch.is_autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            values, probe = kernel(x, t, **hyper)
    else:
        values, probe = kernel(x, t, **hyper)
    return values, (values if probe is None else probe), t


def run_loss(
    name: str,
    kernel: Kernel,
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
    weight: torch.Tensor | None = None,
    validate: bool | str = True,
    **hyper: Any,
) -> torch.Tensor:
    """Validate, compute per-sample values with ``kernel``, weight, reduce and cast.

    The one code path of every loss, functional and module alike: logits (N, C),
    target (N,) or (N, C) -> () or (N,) in :func:`output_dtype`. A kernel with a
    ``reduced(x, t, weight, reduction, **hyper)`` attribute that returns a tensor computes
    weighting and reduction itself (log loss: ``F.cross_entropy``'s own reduction).
    """
    reduced = getattr(kernel, "reduced", None)
    return _run(
        name, kernel, reduced, logits, target, weight, reduction, check_validate(validate), hyper
    )


def _run(
    name: str,
    kernel: Kernel,
    reduced: Callable | None,
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    reduction: str,
    validate: bool | str,
    hyper: dict,
) -> torch.Tensor:
    """:func:`run_loss` with ``reduced`` given (None: the kernel has no reduction of its own)."""
    check_inputs(name, logits, target, weight, validate)
    if reduced is not None:
        out, _, _ = _kernel_call(_as_kernel(reduced, weight, reduction), logits, target, hyper)
        if out is not None:
            check_finite(name, logits, out, validate)
            return out.to(output_dtype(logits))
    values, probe, t = _kernel_call(kernel, logits, target, hyper)
    check_finite(name, logits, probe, validate)
    return reduce(values, t, weight, reduction).to(output_dtype(logits))


def _as_kernel(reduced: Callable, weight: torch.Tensor | None, reduction: str) -> Kernel:
    # values None: ``reduced`` declined (it has no reduction of its own for these inputs)
    def kernel(x: torch.Tensor, t: torch.Tensor, **hyper: Any) -> tuple[Any, None]:
        w = None if weight is None else weight.to(device=x.device, dtype=x.dtype)
        return reduced(x, t, w, reduction, **hyper), None

    return kernel


class Loss(nn.Module):
    """What a trainer needs of a loss; every registered loss subclasses it.

    * :meth:`per_sample` ``(logits (N, C), target (N,) or (N, C)) -> (N,)``: the
      unreduced, unweighted loss of each sample, validated like ``forward``.
    * ``requires_scale``: ``True`` if ``forward`` needs the model's parameter scale R
      (``scale=`` or :meth:`attach`), as the two-scale losses of Berlyand et al. 2021.
    * :meth:`attach` ``(model) -> self``: bind the loss to the model it trains (a no-op
      unless the loss uses the model's scale).
    * :meth:`predict_logits` ``(logits) -> logits``: the logits evaluation should use
      (the identity, except two-scale losses: :math:`R_1 z / R`).
    """

    # Not a ClassVar: two_scale_separation decides it per instance (its scale= option).
    requires_scale: bool = False
    # Where the docs list the loss (README table, ``losslab list``).
    family: ClassVar[str] = "plugin"
    # The name of its NumPy twin in ``losslab.npnet.LOSSES``, or None with the reason in
    # ``npnet_exemption`` (the tests hold every built-in loss to one of the two).
    npnet: ClassVar[str | None] = None
    npnet_exemption: ClassVar[str] = ""

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The unreduced, unweighted loss of each sample, (N,)."""
        raise NotImplementedError

    def attach(self, model: nn.Module | torch.Tensor | float) -> Loss:
        """Bind the loss to ``model``; returns ``self`` (a no-op for most losses)."""
        return self

    def predict_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Evaluation logits, (N, C): the logits themselves for most losses."""
        return logits


class ClassificationLoss(Loss):
    r"""Base class of the registered losses: validation, class weights, reduction, dtypes.

    Subclasses implement :meth:`kernel` ``(x (N, C), target) -> (values (N,), probe)``;
    :func:`~losslab.losses.definition.define_loss` writes the whole subclass from a kernel.

    Weighting follows ``torch.nn.functional.cross_entropy`` for index targets: sample i
    gets the weight :math:`w_i = \sum_j \mathrm{weight}_j y_{ij}` (= ``weight[c_i]``),
    ``"none"`` returns :math:`w_i \ell_i`, ``"sum"`` their sum and ``"mean"``
    :math:`\sum_i w_i \ell_i / \sum_i w_i`. For soft targets this differs from torch,
    which weights inside the class sum and divides ``"mean"`` by N.

    float16 / bfloat16 logits are computed in float32 and the result is returned in the
    logits' dtype, or in float32 under ``torch.autocast`` (as PyTorch's own losses).

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        weight: optional per-class weights, shape (C,), finite and non-negative.
        validate: ``True`` (default): labels in [0, C) and finite logits, checked in O(N)
            in eager mode on CPU and by a device-side assert on the labels elsewhere;
            skipped under ``torch.compile`` / ``torch.func``. ``"full"``: every check up
            front on any device (debugging; synchronises). ``False``: shapes only.

    Shape:
        - logits: (N, C) floating point, C >= 2, N >= 1.
        - target: (N,) integer class indices in [0, C), or (N, C) float probability rows.
        - output: scalar, or (N,) for ``reduction="none"``.
    """

    formula: ClassVar[str] = ""
    seed: ClassVar[str] = ""
    # The attributes repr shows before the reduction, e.g. ("alpha",).
    hyper_parameters: ClassVar[tuple[str, ...]] = ()

    weight: torch.Tensor | None

    def __init__(
        self,
        reduction: str = "mean",
        weight: torch.Tensor | Sequence[float] | None = None,
        validate: bool | str = True,
    ) -> None:
        super().__init__()
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.validate = check_validate(validate)
        self.register_buffer("weight", _as_weight(weight))

    def kernel(
        self, x: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-sample values (N,) and a finiteness probe for x (N, C) in the compute dtype."""
        raise NotImplementedError

    def _values(
        self, logits: torch.Tensor, target: torch.Tensor, **kernel_kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        name = type(self).__name__
        check_inputs(name, logits, target, self.weight, self.validate)
        values, probe, t = _kernel_call(self.kernel, logits, target, kernel_kwargs)
        check_finite(name, logits, probe, self.validate)
        return values, t

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The unreduced, unweighted loss of each sample: logits (N, C), target -> (N,)."""
        values, _ = self._values(logits, target)
        return values.to(output_dtype(logits))

    def reduced(
        self,
        x: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None,
        reduction: str,
    ) -> torch.Tensor | None:
        """Weighted, reduced loss in one call where the kernel has one, else None."""
        return None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: logits (N, C), target (N,) int or (N, C) float -> () or (N,)."""
        return self._loss(logits, target)

    def _loss(
        self, logits: torch.Tensor, target: torch.Tensor, **kernel_kwargs: Any
    ) -> torch.Tensor:
        """The weighted, reduced loss through :func:`run_loss`'s code path."""
        own = type(self).reduced is not ClassificationLoss.reduced
        return _run(
            type(self).__name__,
            self.kernel,
            self.reduced if own else None,
            logits,
            target,
            self.weight,
            self.reduction,
            self.validate,
            kernel_kwargs,
        )

    def extra_repr(self) -> str:
        parts = [f"{name}={getattr(self, name)!r}" for name in self.hyper_parameters]
        parts.append(f"reduction={self.reduction!r}")
        if self.weight is not None:
            parts.append(f"weight={self.weight.tolist()}")
        return ", ".join(parts)


class ProbabilityLoss(ClassificationLoss):
    """A loss defined on probability estimates p = softmax(o) or p = sigmoid(o).

    Args:
        probability: ``"softmax"`` (default) or ``"sigmoid"`` (element-wise, each class
            its own probability; p no longer sums to 1).
        reduction, weight, validate: see :class:`ClassificationLoss`.
    """

    hyper_parameters = ("probability",)

    def __init__(
        self,
        probability: str = "softmax",
        reduction: str = "mean",
        weight: torch.Tensor | Sequence[float] | None = None,
        validate: bool | str = True,
    ) -> None:
        super().__init__(reduction=reduction, weight=weight, validate=validate)
        self.probability = check_probability(probability)


def _as_weight(weight: torch.Tensor | Sequence[float] | None) -> torch.Tensor | None:
    if weight is None:
        return None
    try:
        w = torch.as_tensor(weight, dtype=torch.get_default_dtype()).detach().clone()
    except (TypeError, ValueError, RuntimeError):
        raise LosslabError(f"weight must be a sequence of C numbers; got {weight!r}") from None
    if w.ndim != 1 or w.numel() < 2:
        raise LosslabError(
            f"weight must be a 1-d tensor with one entry per class (C,); got shape {tuple(w.shape)}"
        )
    if not torch.isfinite(w).all() or (w < 0).any() or not (w > 0).any():
        raise LosslabError(
            f"weight must be finite and non-negative with at least one positive entry; got "
            f"{w.tolist()}"
        )
    return w
