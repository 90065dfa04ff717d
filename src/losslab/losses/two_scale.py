r"""Two-scale losses (Berlyand, Creese & Jabin 2021, sections 2.2-2.3, eqs. 9-18).

For a network that is positively homogeneous in its parameters the logits factor as
:math:`z = R\,\hat z` with :math:`R = \prod_l \|\alpha_l\|` (eq. 9,
:func:`losslab.models.parameter_scale`). A two-scale loss evaluates a base loss (log
loss in the paper) on :math:`R_1 \hat z` for samples that are not yet well classified
and on :math:`R_2 \hat z` (:math:`R_2 \gg R_1`) for the well-classified ones, so that
training concentrates on the former. Classification confidence
:math:`\delta X = z_c - \max_{i \ne c} z_i` decides which scale a sample gets.

Choices the paper leaves open, and ours:

* **delta X on the raw logits** z, as in eq. 13 (not on :math:`\hat z`), computed
  without gradient: the case split is a selector, not part of the objective. A sample
  with :math:`\delta X \ge \eta` uses :math:`R_2` (eq. 13's ties go to :math:`R_2`).
  For soft targets c is the most probable target class.
* **Gradients flow through R.** With a model attached, R = ``parameter_scale(model)``
  is differentiable and :math:`\hat z = z / R`, so the model's gradient is that of
  :math:`L(\hat\alpha, R_1)` — the paper's loss depends on the parameters only through
  their direction :math:`\hat\alpha` (eqs. 13-14) — and has no radial component for a
  homogeneous network. Pass ``scale=R.detach()`` to get the other choice.
* **Positivity.** A trainable scale is stored as a raw value :math:`\theta` and used as
  :math:`R = \theta` for :math:`\theta \ge f` and :math:`R = f^2 / (2f - \theta)` below,
  with the floor :math:`f` = 1% of its initial value: a C^1 map onto (0, inf) that
  is the identity in the working range, so the value starts exactly at its initial
  value and gradient steps on :math:`\theta` are the paper's raw steps on R (eq. 14),
  yet R can never reach 0 or change sign. The tail decays like :math:`f^2/|\theta|`
  rather than exponentially, so an overshooting step cannot underflow R to 0 and
  leave it stuck with a zero gradient.
* **Per-sample scales.** ``forward(logits, target, scale=R)`` takes R as a number, a
  0-dim tensor or one value per sample (N,): a batch that concatenates the samples of M
  stacked models gives each sample of model m its own :math:`R_m`. R1, R2 (R_s) belong
  to the loss module and are shared by every sample it sees, so M independently trained
  models need M loss modules. The scales are parameters / buffers of the module: move
  it with the model (``loss.to(device, dtype)``).
* **Initial scales.** ``attach(model)`` sets :math:`R_1 = R(\alpha^0)` (detached) and
  :math:`R_2 = 10 R_1`, as in the paper's section 3.2, unless given explicitly.
* **Baselines.** The paper's single-scale baseline is the base loss on
  :math:`R_1 \hat z` with :math:`R_1` trainable (``baseline=True``, or ``eta=inf``,
  which gives the same numbers exactly); plain cross-entropy on z is ``get_loss("log")``.
* **The separation loss's R** (eq. 17). The paper says R is fixed (section 2.3 after
  eq. 17: "where R is fixed"; section 4: the third loss "fixed the first scale") and also
  that R "evolves via gradient descent as normal" (section 3.5). ``scale="trained"``
  (default) takes 3.5: the ordinary logits z, whose scale R(alpha) moves with the model.
  ``scale="fixed"`` takes 2.3: logits :math:`R_0 z / R` with :math:`R_0 = R(\alpha^0)` set
  by ``attach`` (or the first ``scale=``), so the unscaled branch keeps scale R0.
* **Evaluation** uses :math:`R_1`: ``predict_logits`` returns :math:`R_1 z / R` (never
  :math:`R_2`, which would need the label).
* **Approximation.** With biases or batch-norm the network is not homogeneous and
  :math:`z = R \hat z` is only approximate: :math:`\hat z = z / R` is then a
  rescaling of the logits, not the logits of a unit-norm network.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from losslab.checks import check_choice
from losslab.errors import LosslabError
from losslab.losses._base import (
    ClassificationLoss,
    check_number,
    output_dtype,
    tracing,
)
from losslab.losses.janocha import JANOCHA_LOSSES
from losslab.losses.robust import ROBUST_LOSSES
from losslab.models.scale import parameter_scale
from losslab.registry import build

_FLOOR_FRACTION = 0.01


def classification_confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    r""":math:`\delta X = z_c - \max_{i \ne c} z_i` per sample, without gradient.

    Seed: Berlyand et al. 2021, section 2.2 (definition before eq. 11).

    Args:
        logits: raw logits z, (N, C), C >= 2.
        labels: correct classes c, (N,) int64.

    Returns:
        (N,) tensor; positive exactly for correctly classified samples.
    """
    with torch.no_grad():
        correct = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
        # The best other class is the top logit, or the runner-up where c is on top: one
        # top-2 pass instead of a masked copy of the logits. Ties give delta X = 0 either way.
        top = logits.topk(2, dim=1)
        others = torch.where(top.indices[:, 0] == labels, top.values[:, 1], top.values[:, 0])
        return correct - others


def _rescale(logits: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor * logits`` (N, C) for a factor () or one per sample (N,)."""
    factor = factor.to(logits.dtype)
    return logits * (factor.unsqueeze(1) if factor.ndim == 1 else factor)


def _positive(raw: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """theta above the floor, floor^2 / (2 floor - theta) below (C^1, always > 0)."""
    below = floor * floor / (2.0 * floor - torch.minimum(raw, floor))
    return torch.where(raw >= floor, raw, below)


# Any loss of the two non-scale families can be the base L (section 2.3: "a large variety
# of ... loss functions").
BASE_LOSSES: dict[str, type[ClassificationLoss]] = {**JANOCHA_LOSSES, **ROBUST_LOSSES}
_TWO_SCALE_NAMES = ("two_scale", "two_scale_fixed", "two_scale_separation")


def _build_base(base: str, base_kwargs: dict[str, Any]) -> ClassificationLoss:
    if isinstance(base, str) and base.strip().lower().replace("-", "_") in _TWO_SCALE_NAMES:
        raise LosslabError(
            f"base={base!r}: a two-scale loss cannot wrap another two-scale loss; choose one "
            f"of: {', '.join(sorted(BASE_LOSSES))}"
        )
    # The wrapper validates, weights and reduces; the base only supplies its kernel.
    return build(BASE_LOSSES, base, "base loss", **base_kwargs, validate=False)


class _ScaleOwner(ClassificationLoss):
    """Shared parts of the three two-scale losses: eta, the base loss, the scales, R0 and R.

    ``self._ready`` (mirrored by the ``initialised`` buffer so that it survives
    ``state_dict``) says whether the reference scale (R1, or R0 of the separation loss)
    has been set: by the constructor, :meth:`attach`, or the first ``scale=`` seen.
    """

    family = "two-scale (Berlyand et al. 2021)"
    npnet_exemption = (
        "needs the model's parameter scale R, which npnet's loss protocol "
        "(logits, target) does not carry"
    )
    initialised: torch.Tensor  # a buffer, registered by _set_ready
    _ready: bool

    def __init__(
        self,
        eta: float,
        base: str,
        reduction: str,
        weight: torch.Tensor | Sequence[float] | None,
        validate: bool | str,
        base_kwargs: dict[str, Any],
        trainable: bool,
    ) -> None:
        super().__init__(reduction=reduction, weight=weight, validate=validate)
        self.trainable = bool(trainable)
        self.eta = check_number(
            eta, "eta (two-scale confidence threshold)", low=0.0, low_open=True, allow_inf=True
        )
        self.base_name = base
        self.base = _build_base(base, base_kwargs)
        self._model: nn.Module | None = None
        self._fixed_scale: torch.Tensor | None = None

    def _add_scale(self, name: str, value: float, trainable: bool) -> None:
        raw = torch.tensor(float(value), dtype=torch.get_default_dtype())
        if trainable:
            self.register_parameter(f"{name}_raw", nn.Parameter(raw))
        else:
            self.register_buffer(f"{name}_raw", raw)
        self.register_buffer(f"{name}_floor", raw * _FLOOR_FRACTION)

    def _set_ready(self, ready: bool) -> None:
        self.register_buffer("initialised", torch.tensor(ready))
        self._ready = ready
        self.register_load_state_dict_post_hook(_sync_ready)

    @torch.no_grad()
    def _set_scale(self, name: str, value: torch.Tensor | float) -> None:
        getattr(self, f"{name}_raw").fill_(float(value))
        getattr(self, f"{name}_floor").fill_(float(value) * _FLOOR_FRACTION)

    def _scale(self, name: str) -> torch.Tensor:
        return _positive(getattr(self, f"{name}_raw"), getattr(self, f"{name}_floor"))

    def _initialise(self, r: torch.Tensor) -> None:
        """Set the reference scale(s) from the model scale R at the start of training."""
        raise NotImplementedError

    def _well_classified(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mask of samples with delta X >= eta on the raw logits, (N,) bool."""
        labels = target if target.ndim == 1 else target.argmax(-1)
        return classification_confidence(x, labels) >= self.eta

    def attach(self, model_or_scale: nn.Module | torch.Tensor | float) -> _ScaleOwner:
        """Give the loss the model's scale R; initialise the scales from it if not set yet.

        Args:
            model_or_scale: an ``nn.Module`` (held by reference, not as a submodule; every
                forward without ``scale=`` then uses ``parameter_scale(model)``, with
                gradient), or a positive number / 0-dim tensor R used as a constant.

        Returns:
            ``self``, so that ``get_loss("two_scale").attach(model)`` chains. Scales that
            were already initialised (given to the constructor, attached before, or loaded
            from a state dict) are left unchanged.
        """
        if isinstance(model_or_scale, nn.Module):
            object.__setattr__(self, "_model", model_or_scale)
            self._fixed_scale = None
            r = parameter_scale(model_or_scale).detach()
        else:
            r = self._as_scalar_scale(model_or_scale, "attach")
            object.__setattr__(self, "_model", None)
            self._fixed_scale = r
        if not self._ready:
            self._initialise_from(r, "attach")
        return self

    def _as_scalar_scale(self, value: torch.Tensor | float, where: str) -> torch.Tensor:
        r = torch.as_tensor(value, dtype=torch.get_default_dtype()).detach()
        if r.ndim != 0:
            raise LosslabError(
                f"{where}: a scale must be a number or a 0-dim tensor; got shape "
                f"{tuple(r.shape)}. For per-sample scales pass scale= to forward and set the "
                "initial scales with r1= (or attach(R)) first."
            )
        check_number(r, f"{where}: the model scale R", low=0.0, low_open=True)
        return r

    def _initialise_from(self, r: torch.Tensor, where: str) -> None:
        check_number(r, f"{where}: the model scale R", low=0.0, low_open=True)
        self._initialise(r)
        self.initialised.fill_(True)
        self._ready = True

    def _ensure_ready(self, logits: torch.Tensor, scale: torch.Tensor | float | None) -> None:
        """Initialise from the first ``scale=`` seen (like attach), or explain what is missing."""
        if self._ready:
            return
        if scale is not None and not tracing(logits):
            self._initialise_from(self._as_scalar_scale(scale, "scale="), "scale=")
            return
        raise LosslabError(
            f"{type(self).__name__}: the initial scale is not set; call loss.attach(model) "
            "(or attach(R)) before the first forward, pass r1= to the constructor, or pass "
            "scale=R (a number) to the first call"
        )

    def model_scale(
        self, logits: torch.Tensor, scale: torch.Tensor | float | None = None
    ) -> torch.Tensor:
        """R for this batch: ``scale`` if given, else the attached model's or number's R.

        Returns a 0-dim or (N,) tensor on the logits' device and dtype.
        """
        name = type(self).__name__
        if scale is None:
            if self._model is not None:
                scale = parameter_scale(self._model)
            elif self._fixed_scale is not None:
                scale = self._fixed_scale
            else:
                raise LosslabError(
                    f"{name} needs the model's parameter scale R: call loss.attach(model) "
                    "(or attach(R)) once, or pass scale=R to every call"
                )
        r = torch.as_tensor(scale).to(device=logits.device, dtype=logits.dtype)
        if r.ndim not in (0, 1) or (r.ndim == 1 and r.shape[0] != logits.shape[0]):
            raise LosslabError(
                f"{name}: scale must be a number, a 0-dim tensor or one value per sample "
                f"({logits.shape[0]},); got shape {tuple(r.shape)}"
            )
        if self.validate is not False and not tracing(r) and not tracing(logits):
            ok = (torch.isfinite(r) & (r > 0)).all()
            if r.device.type == "cpu" or self.validate == "full":
                if not bool(ok):
                    raise LosslabError(f"{name}: the model scale R must be finite and > 0")
            else:
                torch._assert_async(ok, f"{name}: the model scale R must be finite and > 0")
        return r

    def _ready_scale(
        self, logits: torch.Tensor, scale: torch.Tensor | float | None
    ) -> torch.Tensor:
        """:meth:`model_scale` once the reference scale is set (see :meth:`_ensure_ready`)."""
        self._ensure_ready(logits, scale)
        return self.model_scale(logits, scale)

    def _scaled_base(
        self, x: torch.Tensor, target: torch.Tensor, factor: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The base kernel on the rescaled logits factor * x; factor () or (N,)."""
        return self.base.kernel(_rescale(x, factor), target)

    # ``scale`` reaches the kernel as a keyword, through ClassificationLoss._values and _loss.
    def per_sample(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        scale: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Unreduced, unweighted loss of each sample, (N,); ``scale`` as in ``forward``."""
        values, _ = self._values(logits, target, scale=scale)
        return values.to(output_dtype(logits))

    def forward(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        scale: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Loss of a batch; ``scale`` is the model's current R (see :meth:`model_scale`)."""
        return self._loss(logits, target, scale=scale)


class TwoScaleLoss(_ScaleOwner):
    r"""Two-scale loss with trainable scales R1, R2 (registry ``"two_scale"``).

    .. math::
        \ell(z, c) = \begin{cases}
            L(R_1 z / R,\ c) & \delta X < \eta \\
            L(R_2 z / R,\ c) & \delta X \ge \eta
        \end{cases},
        \qquad \delta X = z_c - \max_{i \ne c} z_i

    with L the base loss (log loss by default, eq. 13; any other loss, section 2.3) and
    R the model's parameter scale (eq. 9). R1, R2 are trained by the same optimizer
    as the model (eq. 14); :math:`\partial\ell/\partial R_2 < 0` on every well-classified
    sample (eq. 15), so R2 grows. See the module docstring for every choice the paper
    leaves open (delta on raw logits, gradient through R, positivity, baselines).

    Seed: Berlyand, Creese & Jabin 2021, section 2.3, eqs. 13-15; initial scales from
    section 3.2.

    Args:
        eta: confidence threshold, eta > 0 (the paper restricts itself to eta > 0 after
            eq. 13), ``inf`` allowed (= single scale). Default 1.0
            (the paper's experiments use 0.01 ... 100).
        base: registry name of the base loss, any non-two-scale entry; default ``"log"``.
        r1, r2: initial scales (> 0). Default: R1 = R of the attached model at attach
            time, R2 = 10 R1.
        trainable: R1, R2 are ``nn.Parameter`` s (default True; False gives
            ``two_scale_fixed``, eq. 16).
        baseline: tie R2 to R1 (the paper's single-scale baseline); R2 is then not created.
        reduction, weight, validate: as :class:`~losslab.losses._base.ClassificationLoss`.
        **base_kwargs: keyword arguments of the base loss (e.g. ``q=0.5`` for gce).

    Without ``r1=`` or :meth:`attach`, the first call's ``scale=`` (a number or 0-dim
    tensor) initialises R1 = R and R2 = 10 R1, as :meth:`attach` would.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; scale () or (N,);
        output () or (N,).

    Example::

        >>> import torch
        >>> from torch import nn
        >>> from losslab.losses import get_loss
        >>> model = nn.Linear(3, 4, bias=False)
        >>> loss = get_loss("two_scale", eta=0.01).attach(model)  # R1 = R(model), R2 = 10 R1
        >>> bool(torch.isclose(loss.r2, 10 * loss.r1))
        True
        >>> opt = torch.optim.SGD([*model.parameters(), *loss.parameters()], lr=0.1)
        >>> x, t = torch.ones(2, 3), torch.tensor([0, 2])
        >>> loss(model(x), t).backward()  # R = parameter_scale(model), differentiable
        >>> opt.step()
        >>> loss.predict_logits(model(x)).softmax(-1).shape  # evaluation at scale R1
        torch.Size([2, 4])
    """

    requires_scale = True
    formula = "L(R₁·z/R) if δX < η else L(R₂·z/R);  δX = z_c − max_{i≠c} z_i"
    seed = "Berlyand, Creese & Jabin 2021, §2.3 eqs. 13-15"

    def __init__(
        self,
        eta: float = 1.0,
        base: str = "log",
        r1: float | None = None,
        r2: float | None = None,
        trainable: bool = True,
        baseline: bool = False,
        reduction: str = "mean",
        weight: torch.Tensor | Sequence[float] | None = None,
        validate: bool | str = True,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(eta, base, reduction, weight, validate, base_kwargs, trainable)
        self.baseline = bool(baseline)
        if r1 is not None:
            r1 = check_number(r1, "r1 (two-scale loss)", low=0.0, low_open=True)
        if r2 is not None:
            if self.baseline:
                raise LosslabError("r2 cannot be given with baseline=True (R2 is tied to R1)")
            r2 = check_number(r2, "r2 (two-scale loss)", low=0.0, low_open=True)
        self._r2_follows_r1 = r2 is None
        self._add_scale("r1", 1.0 if r1 is None else r1, self.trainable)
        if not self.baseline:
            self._add_scale("r2", r2 if r2 is not None else 10.0 * (r1 or 1.0), self.trainable)
        self._set_ready(r1 is not None)

    @property
    def r1(self) -> torch.Tensor:
        """The current scale R1 (0-dim, positive, differentiable when trainable)."""
        return self._scale("r1")

    @property
    def r2(self) -> torch.Tensor:
        """The current scale R2 (= R1 when ``baseline=True``)."""
        return self.r1 if self.baseline else self._scale("r2")

    def _initialise(self, r: torch.Tensor) -> None:
        self._set_scale("r1", r)
        if not self.baseline and self._r2_follows_r1:
            self._set_scale("r2", 10.0 * r)

    def kernel(
        self, x: torch.Tensor, target: torch.Tensor, scale: torch.Tensor | float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        r = self._ready_scale(x, scale)
        if self.baseline:
            return self._scaled_base(x, target, self.r1 / r)
        well = self._well_classified(x, target)
        return self._scaled_base(x, target, torch.where(well, self.r2, self.r1) / r)

    def predict_logits(
        self, logits: torch.Tensor, scale: torch.Tensor | float | None = None
    ) -> torch.Tensor:
        """Evaluation logits :math:`R_1 z / R`, (N, C): softmax them for probabilities."""
        return _rescale(logits, self.r1 / self._ready_scale(logits, scale))

    def extra_repr(self) -> str:
        scales = f"r1={float(self.r1.detach()):.4g}" if self._ready else "r1=<attach a model>"
        if not self.baseline and self._ready:
            scales += f", r2={float(self.r2.detach()):.4g}"
        return (
            f"eta={self.eta}, base={self.base_name!r}, {scales}, trainable={self.trainable}, "
            f"baseline={self.baseline}, " + super().extra_repr()
        )


def _sync_ready(module: nn.Module, incompatible_keys: Any) -> None:
    """After ``load_state_dict``, the scales are initialised iff the loaded flag says so."""
    owner = cast(_ScaleOwner, module)  # the hook is registered on _ScaleOwner only
    owner._ready = bool(owner.initialised)


class TwoScaleFixedLoss(TwoScaleLoss):
    r"""Fixed two-scale loss: eq. 13 with R1, R2 frozen buffers (registry ``"two_scale_fixed"``).

    .. math::
        \ell(z, c) = L(R_1 z / R, c) \text{ if } \delta X < \eta \text{ else } L(R_2 z / R, c)

    Only the model is trained (eq. 16); the scales stay at their initial values
    (R1 = R(alpha^0), R2 = 10 R1 unless given), so they remain well separated.

    Seed: Berlyand, Creese & Jabin 2021, section 2.3, eq. 16.

    Args:
        eta, base, r1, r2, baseline, reduction, weight, validate, **base_kwargs: as
            :class:`TwoScaleLoss` (``trainable`` is always False).

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; scale () or (N,);
        output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("two_scale_fixed", eta=0.5).attach(2.0)
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        0.7757
    """

    formula = "as two_scale with R₁, R₂ frozen"
    seed = "Berlyand, Creese & Jabin 2021, §2.3 eq. 16"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "trainable" in kwargs:
            raise LosslabError(
                "two_scale_fixed keeps R1, R2 frozen and takes no 'trainable' argument; use "
                "two_scale for trainable scales"
            )
        given = _FIXED_SIGNATURE.bind(self, *args, **kwargs).arguments
        base_kwargs = given.pop("base_kwargs", {})
        del given["self"]
        super().__init__(**given, trainable=False, **base_kwargs)


# two_scale's signature without ``trainable`` (always False here)
_FIXED_SIGNATURE = inspect.signature(TwoScaleLoss.__init__).replace(parameters=[
    p for p in inspect.signature(TwoScaleLoss.__init__).parameters.values()
    if p.name != "trainable"
])
TwoScaleFixedLoss.__init__.__signature__ = _FIXED_SIGNATURE  # type: ignore[attr-defined]


class TwoScaleSeparationLoss(_ScaleOwner):
    r"""Scale-separation loss (registry ``"two_scale_separation"``).

    .. math::
        \ell(z, c) = \begin{cases}
            L(z, c) & \delta X < \eta \\
            L(R_s z, c) & \delta X \ge \eta
        \end{cases}

    Poorly classified samples use the ordinary logits (R1 is the model's own R), the
    well-classified ones are scaled by the trainable separation :math:`R_s` (eq. 18).
    :math:`\partial\ell/\partial R_s \le 0`, so the scales only move apart (the seed
    says "non-negative" and "ever more separated": the sign is a slip, the derivative
    is the negative one of eq. 15). With ``scale="trained"`` it needs no model scale
    (``requires_scale`` is False and ``scale=`` arguments are ignored, so all three losses
    share a signature); with ``scale="fixed"`` the logits are :math:`R_0 z / R` (see the
    module docstring for the paper's two readings) and ``requires_scale`` is True.

    Seed: Berlyand, Creese & Jabin 2021, section 2.3, eqs. 17-18.

    Args:
        eta: confidence threshold, eta > 0, ``inf`` allowed. Default 1.0.
        base: registry name of the base loss; default ``"log"``.
        rs: initial separation, > 0, default 10 (the paper's R2 / R1).
        trainable: R_s is an ``nn.Parameter`` (default True) or a frozen buffer.
        scale: ``"trained"`` (default; R = the model's own, section 3.5) or ``"fixed"``
            (R fixed at R0 = R(alpha^0), section 2.3 / eq. 17 / section 4).
        reduction, weight, validate: as :class:`~losslab.losses._base.ClassificationLoss`.
        **base_kwargs: keyword arguments of the base loss.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("two_scale_separation", eta=0.5, rs=10.0, reduction="none")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> loss(logits, torch.tensor([0, 2])).detach().round(decimals=4).tolist()
        [-0.0, 1.5513999462127686]
    """

    requires_scale = False
    formula = "L(z) if δX < η else L(R_s·z)"
    seed = "Berlyand, Creese & Jabin 2021, §2.3 eqs. 17-18"

    def __init__(
        self,
        eta: float = 1.0,
        base: str = "log",
        rs: float = 10.0,
        trainable: bool = True,
        scale: str = "trained",
        reduction: str = "mean",
        weight: torch.Tensor | Sequence[float] | None = None,
        validate: bool | str = True,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(eta, base, reduction, weight, validate, base_kwargs, trainable)
        self.scale = check_choice("scale (two_scale_separation)", scale, ("trained", "fixed"))
        # With R fixed at R0 the logits are R0 z / R: the loss needs the model scale R.
        self.requires_scale = self.scale == "fixed"
        self._add_scale(
            "rs",
            check_number(rs, "rs (two_scale_separation)", low=0.0, low_open=True),
            self.trainable,
        )
        if self.requires_scale:
            self._add_scale("r0", 1.0, False)
        self._set_ready(not self.requires_scale)

    @property
    def rs(self) -> torch.Tensor:
        """The current separation R_s (0-dim, positive)."""
        return self._scale("rs")

    @property
    def r0(self) -> torch.Tensor:
        """The fixed scale R0 = R(alpha^0) of ``scale="fixed"`` (0-dim)."""
        return self._scale("r0")

    def _initialise(self, r: torch.Tensor) -> None:
        self._set_scale("r0", r)

    def attach(self, model_or_scale: nn.Module | torch.Tensor | float) -> TwoScaleSeparationLoss:
        """``scale="fixed"``: take R0 (and R) from the model as :class:`TwoScaleLoss` does.

        With ``scale="trained"`` the loss uses the ordinary logits and the call is a no-op.
        """
        if self.requires_scale:
            super().attach(model_or_scale)
        return self

    def kernel(
        self, x: torch.Tensor, target: torch.Tensor, scale: torch.Tensor | float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        well = self._well_classified(x, target)
        factor = torch.where(well, self.rs, torch.ones_like(self.rs))
        if self.requires_scale:
            factor = factor * (self.r0 / self._ready_scale(x, scale))
        return self._scaled_base(x, target, factor)

    def predict_logits(
        self, logits: torch.Tensor, scale: torch.Tensor | float | None = None
    ) -> torch.Tensor:
        """Evaluation logits, (N, C): z (``"trained"``) or R0 z / R (``"fixed"``), never R_s."""
        if not self.requires_scale:
            return logits
        return _rescale(logits, self.r0 / self._ready_scale(logits, scale))

    def extra_repr(self) -> str:
        return (
            f"eta={self.eta}, base={self.base_name!r}, rs={float(self.rs.detach()):.4g}, "
            f"trainable={self.trainable}, scale={self.scale!r}, " + super().extra_repr()
        )


TWO_SCALE_LOSSES: dict[str, type[ClassificationLoss]] = {
    "two_scale": TwoScaleLoss,
    "two_scale_fixed": TwoScaleFixedLoss,
    "two_scale_separation": TwoScaleSeparationLoss,
}
