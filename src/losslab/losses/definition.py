r"""One definition per loss: its module class and its functional form follow from it.

A loss is its kernel (``(x (N, C), target) -> (values (N,), probe)``, see
:data:`~losslab.losses._base.Kernel`) and what is said about it: title, formula, seed,
hyper-parameters with their checks, and the value of its docstring example. From that,
:func:`define_loss` builds the ``nn.Module`` class (signature, validation, class weights,
reductions, repr and docstring all from :class:`~losslab.losses._base.ClassificationLoss`)
and :func:`functional_form` the function of :mod:`losslab.losses.functional`; both run the
kernel through the same code path, so they give identical numbers.
:func:`losslab.losses.register_loss` adds the class to the registry, which ``losslab
list``/``show``, studies, the report's loss-shape figure and the README's table read.

Example (a focal loss, Lin et al. 2017, eq. 5)::

    >>> import torch
    >>> import torch.nn.functional as F
    >>> def focal_kernel(x, target, gamma=2.0):
    ...     log_p = F.log_softmax(x, dim=-1)
    ...     y = F.one_hot(target, x.shape[-1]).to(x.dtype) if target.ndim == 1 else target
    ...     return -(y * (1 - log_p.exp()) ** gamma * log_p).sum(-1), None
    >>> Focal = define_loss("focal", focal_kernel, title="Focal loss",
    ...                     math=r"-\sum_j y_j (1 - p_j)^\gamma \log p_j",
    ...                     formula="−Σ_j y_j (1 − p_j)^γ log p_j", seed="Lin et al. 2017, eq. 5",
    ...                     hyper={"gamma": Hyper(2.0, "focusing exponent, >= 0")})
    >>> Focal(gamma=0.0)
    FocalLoss(gamma=0.0, reduction='mean')
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from losslab.errors import LosslabError
from losslab.losses._base import (
    ClassificationLoss,
    Kernel,
    ProbabilityLoss,
    check_probability,
    run_loss,
)

_P = inspect.Parameter
# The example every generated docstring runs (two samples, three classes, labels 0 and 2).
EXAMPLE_LOGITS = "torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])"
EXAMPLE_LABELS = "torch.tensor([0, 2])"


@dataclass(frozen=True)
class Hyper:
    """A hyper-parameter of a loss.

    Args:
        default: its default value.
        doc: one line for the Args section, e.g. ``"q in (0, 1]"``.
        check: ``value -> value`` that raises :class:`~losslab.errors.LosslabError` on a bad
            value (e.g. :func:`~losslab.losses._base.check_number` with bounds); None: any.
    """

    default: Any
    doc: str
    check: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class LossDefinition:
    """Everything about one loss; :func:`define_loss` documents the fields."""

    name: str
    kernel: Kernel
    title: str
    math: str
    formula: str
    seed: str
    notes: str = ""
    probability: bool = False
    hyper: Mapping[str, Hyper] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    example: str = ""
    example_kwargs: Mapping[str, Any] = field(default_factory=dict)
    family: str = ""
    npnet: str | None = None
    class_name: str = ""

    def options(self) -> dict[str, Any]:
        """The keyword options a user picks, with their defaults (hyper, then probability)."""
        defaults = {name: h.default for name, h in self.hyper.items()}
        if self.probability:
            defaults["probability"] = "softmax"
        return defaults

    def checked(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The kernel's keyword arguments for user ``options``; bad values raise."""
        kwargs = dict(self.fixed)
        for name, h in self.hyper.items():
            kwargs[name] = options[name] if h.check is None else h.check(options[name])
        if self.probability:
            kwargs["probability"] = check_probability(options["probability"])
        return kwargs


def define_loss(name: str, kernel: Kernel, **fields: Any) -> type[ClassificationLoss]:
    r"""The ``nn.Module`` class of a loss given by its kernel.

    Args:
        name: the registry name, lowercase snake_case (``"focal"``).
        kernel: ``kernel(x (N, C), target, **options) -> (values (N,), probe)`` where
            ``target`` is (N,) int64 or (N, C) float and the probe is None or an (N,)
            tensor that is non-finite whenever a row of x holds NaN or +inf. A
            ``kernel.reduced(x, target, weight, reduction, **options)`` attribute returning
            a tensor (or None) computes weighting and reduction itself.

    Keyword Args:
        title: the docstring's summary, e.g. ``"Focal loss"``.
        math: LaTeX of the unreduced loss of one sample, e.g. ``r"-(1 - p_c)^\gamma \log p_c"``.
        formula: the same in plain text, one line (``losslab list``/``show``, README).
        seed: the source and its section, e.g. ``"Lin et al. 2017, eq. 5"``.
        notes: paragraphs for the docstring (reST), default none.
        probability: True if the loss is defined on p = softmax(o) and also takes
            ``probability="sigmoid"`` (element-wise); the kernel then gets ``probability=``.
        hyper: ``{name: Hyper(default, doc, check)}``, the loss's own options, in order.
        fixed: keyword arguments always given to the kernel (e.g. ``{"power": 2}``).
        example: what ``round(float(loss(logits, labels)), 4)`` prints on the docstring's
            example (the loss with ``example_kwargs``); run as a doctest by the tests.
        example_kwargs: the options of that example, default none.
        family: the group in which ``losslab`` docs list it; default ``"plugin"``.
        npnet: the name of its NumPy twin in :data:`losslab.npnet.LOSSES`; None (default)
            when it has none.
        class_name: the class's name; default the CamelCase name plus ``Loss``.

    Returns:
        A subclass of :class:`~losslab.losses.ProbabilityLoss` (``probability=True``) or of
        :class:`~losslab.losses.ClassificationLoss`, with
        ``__init__(*hyper, [probability], reduction="mean", weight=None, validate=True)``.
    """
    module = fields.pop("module", None) or sys._getframe(1).f_globals.get("__name__", __name__)
    d = LossDefinition(name=name, kernel=kernel, **fields)
    if not d.name.isidentifier() or d.name != d.name.lower():
        raise LosslabError(f"a loss name must be lowercase snake_case; got {d.name!r}")
    signature = inspect.Signature([
        _P("self", _P.POSITIONAL_OR_KEYWORD),
        *(_P(k, _P.POSITIONAL_OR_KEYWORD, default=v) for k, v in d.options().items()),
        _P("reduction", _P.POSITIONAL_OR_KEYWORD, default="mean"),
        _P("weight", _P.POSITIONAL_OR_KEYWORD, default=None),
        _P("validate", _P.POSITIONAL_OR_KEYWORD, default=True),
    ])

    def __init__(self: ClassificationLoss, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        ClassificationLoss.__init__(
            self, reduction=given["reduction"], weight=given["weight"], validate=given["validate"]
        )
        for key, value in d.checked(given).items():
            if key not in d.fixed:
                setattr(self, key, value)

    __init__.__signature__ = signature  # type: ignore[attr-defined]

    def _options(self: Any) -> dict[str, Any]:
        return {**d.fixed, **{key: getattr(self, key) for key in d.options()}}

    def kernel_method(
        self: Any, x: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return d.kernel(x, target, **self._options())

    namespace: dict[str, Any] = {
        "__init__": __init__,
        "__doc__": _class_doc(d),
        "__module__": module,
        "_options": _options,
        "kernel": kernel_method,
        "definition": d,
        "formula": d.formula,
        "seed": d.seed,
        "family": d.family or "plugin",
        "npnet": d.npnet,
        "hyper_parameters": tuple(d.options()),
    }
    reduced = getattr(d.kernel, "reduced", None)
    if reduced is not None:

        def reduced_method(
            self: Any,
            x: torch.Tensor,
            target: torch.Tensor,
            weight: torch.Tensor | None,
            reduction: str,
        ) -> torch.Tensor | None:
            return reduced(x, target, weight, reduction, **self._options())

        namespace["reduced"] = reduced_method
    class_name = d.class_name or "".join(p.capitalize() for p in d.name.split("_")) + "Loss"
    base = ProbabilityLoss if d.probability else ClassificationLoss
    cls = type(class_name, (base,), namespace)
    cls.__qualname__ = class_name
    for method in ("__init__", "_options", "kernel", "reduced"):
        if method in namespace:
            namespace[method].__qualname__ = f"{class_name}.{method}"
    return cls


_RUN_KEYWORDS = ("reduction", "weight", "validate")


def functional_form(loss: type[ClassificationLoss]) -> Callable[..., torch.Tensor]:
    """The function of a loss made by :func:`define_loss` (as ``F.cross_entropy`` is to
    ``nn.CrossEntropyLoss``): ``f(logits (N, C), target, *, options..., reduction="mean",
    weight=None, validate=True) -> () or (N,)``, running the class's kernel and code path.
    """
    d: LossDefinition = loss.definition  # type: ignore[attr-defined]
    defaults = d.options()

    def function(logits: torch.Tensor, target: torch.Tensor, **keywords: Any) -> torch.Tensor:
        # What callers see is __signature__ below (run_loss's keywords and the options);
        # here the keywords are only split between the two.
        calling = {k: keywords.pop(k) for k in _RUN_KEYWORDS if k in keywords}
        unknown = keywords.keys() - defaults.keys()
        if unknown:
            raise TypeError(f"{d.name}() got an unexpected keyword argument {min(unknown)!r}")
        kwargs = d.checked({**defaults, **keywords})
        return run_loss(d.name, d.kernel, logits, target, **calling, **kwargs)

    keyword = [_P(k, _P.KEYWORD_ONLY, default=v) for k, v in d.options().items()]
    hyper, probability = keyword[: len(d.hyper)], keyword[len(d.hyper) :]
    function.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        _P("logits", _P.POSITIONAL_OR_KEYWORD),
        _P("target", _P.POSITIONAL_OR_KEYWORD),
        *hyper,
        _P("reduction", _P.KEYWORD_ONLY, default="mean"),
        _P("weight", _P.KEYWORD_ONLY, default=None),
        _P("validate", _P.KEYWORD_ONLY, default=True),
        *probability,
    ])
    function.__name__ = function.__qualname__ = d.name
    function.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
    function.__doc__ = _function_doc(d, loss.__name__)
    return function


# ---------------------------------------------------------------------------------------
# docstrings (PyTorch's template: summary, math, notes, seed, Args, Shape, Example)

_SHAPE = "Shape:\n    logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,)."


def _args(d: LossDefinition) -> list[str]:
    lines = [f"{name}: {h.doc} Default {h.default!r}." for name, h in d.hyper.items()]
    if d.probability:
        lines.append('probability: ``"softmax"`` (default) or ``"sigmoid"`` (element-wise).')
    lines += [
        'reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.',
        "weight: optional per-class weights (C,), applied per sample as",
        r"    :math:`w_i = \sum_j \mathrm{weight}_j y_{ij}`.",
        "validate: per-call finiteness / label-range check (default True).",
    ]
    return lines


def _class_doc(d: LossDefinition) -> str:
    parts = [f'{d.title} (registry ``"{d.name}"``).', f".. math:: {d.math}"]
    if d.notes:
        parts.append(inspect.cleandoc(d.notes))
    parts.append(f"Seed: {d.seed}.")
    parts.append("Args:\n" + "\n".join("    " + line for line in _args(d)))
    parts.append(_SHAPE)
    if d.example:
        kwargs = "".join(f", {k}={v!r}" for k, v in d.example_kwargs.items())
        parts.append("\n".join([
            "Example::",
            "",
            "    >>> import torch",
            "    >>> from losslab.losses import get_loss",
            f'    >>> loss = get_loss("{d.name}"{kwargs})',
            f"    >>> logits = {EXAMPLE_LOGITS}",
            f"    >>> round(float(loss(logits, {EXAMPLE_LABELS})), 4)",
            f"    {d.example}",
        ]))
    return "\n\n".join(parts)


def _function_doc(d: LossDefinition, class_name: str) -> str:
    return "\n\n".join([
        f"{d.title}, :math:`{d.math}` ({d.seed}).",
        f"The functional form of :class:`{class_name}` (registry ``\"{d.name}\"``).",
        "Args:\n    logits: (N, C) float.\n    target: (N,) int64 class indices or (N, C) "
        "probability rows.\n" + "\n".join("    " + line for line in _args(d)),
        "Returns:\n    () or (N,) for ``reduction=\"none\"``.",
    ])
