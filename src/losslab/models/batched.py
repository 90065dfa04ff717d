"""M models of one architecture run as one batched computation (the "model stack").

Training a grid of losses x seeds one model at a time wastes the machine on small
matmuls and per-op overheads. :func:`stack_models` turns M models that share an
architecture into one :class:`ModelStack` whose every parameter has a leading
dimension M. Because Adam, RMSprop and SGD (with weight decay) update each element
from its own gradient only, one ``torch.optim`` optimizer over the stack trains the M
models exactly as M separate optimizers would (gradient clipping by a global norm would
couple them: clip per model instead).

Two ways of evaluating the stack:

* ``"mlp"`` (fast path) for :class:`~losslab.models.mlp.MLP` and plain ``nn.Sequential``
  nets of Flatten / Linear / BatchNorm1d / parameter-free element-wise activations /
  Dropout. Weights are stored (M, D_in, D_out) and each layer is one ``torch.baddbmm``;
  when all M models read the same batch, the first layer is ONE large matmul
  ``x @ W.permute(1, 0, 2).reshape(D, M * H)``. Batch-norm normalises each model over
  its own N samples.
* ``"vmap"`` (generic path) for everything else: ``torch.func.functional_call`` of one
  template module, vectorised with ``torch.vmap(randomness="different")`` over the
  stacked parameters and buffers (the recipe of ``torch.func.stack_module_state``);
  batch-norm running statistics are updated per model in the stacked buffers.

Dropout (and any other random op in a training forward) of a model comes from the
``"dropout"`` stream of the seed it was built with (:mod:`losslab.seeding`), drawn exactly
as the model would draw it alone: torch's global generator re-seeded from that stream
(:func:`~losslab.seeding.seeded_global_rng`) before each forward, then the model's random
ops in order. So a model drops the same units whether it runs alone
(:func:`losslab.train.train`), in a loop or in any stack, whatever its neighbours, and
models of one seed share their masks (common random numbers across losses).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from losslab.activations import ReLU as LosslabReLU
from losslab.checks import check_int
from losslab.errors import LosslabError
from losslab.models.mlp import MLP
from losslab.models.scale import _SCALED_LAYERS
from losslab.seeding import draw_seed, seeded_global_rng, torch_generator, uses_global_rng

Path = Literal["auto", "mlp", "vmap"]

# Element-wise, parameter-free activations of torch: applying them to an (M, N, H)
# tensor is the same as applying them to each model's (N, H) slice.
_TORCH_ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softsign,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Identity,
)


def _mangle(name: str) -> str:
    return name.replace(".", "__")


def _is_elementwise(module: nn.Module) -> bool:
    """A parameter-free activation that acts on each element alone."""
    if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
        return False
    # losslab.activations holds element-wise activations only; those with trainable
    # parameters (prelu, trainable swish, adaptive_relu) were excluded just above.
    return isinstance(module, _TORCH_ELEMENTWISE) or type(module).__module__ == (
        "losslab.activations"
    )


def _mlp_plan(template: nn.Module) -> list[tuple] | None:
    """The layer-by-layer recipe of the fast path, or None when ``template`` does not fit it."""
    if type(template) not in (MLP, nn.Sequential):
        return None
    plan: list[tuple] = []
    children = list(template.named_children())
    for position, (name, module) in enumerate(children):
        if isinstance(module, nn.Flatten):
            if position != 0 or module.start_dim != 1 or module.end_dim != -1:
                return None
        elif type(module) is nn.Linear:
            plan.append(("linear", name, module.bias is not None))
        elif type(module) is nn.BatchNorm1d:
            if module.momentum is None:
                return None
            plan.append(("batchnorm", name, module))
        elif type(module) is nn.Dropout:
            plan.append(("dropout", module.p))
        elif _is_elementwise(module):
            relu = type(module) in (nn.ReLU, LosslabReLU)
            plan.append(("relu_",) if relu else ("activation", module))
        else:
            return None
    linears = [step for step in plan if step[0] == "linear"]
    if not linears or plan[-1][0] != "linear" or plan[0][0] != "linear":
        return None
    return plan


class ModelStack(nn.Module):
    """M models of one architecture evaluated as one batched computation.

    Build it with :func:`stack_models`. Every parameter and buffer of the models is
    stacked along a new leading dimension M; the models themselves are not kept
    (:meth:`unstack` gives copies holding the current weights).

    Attributes:
        num_models: M.
        path: ``"mlp"`` (batched matmuls) or ``"vmap"`` (``torch.func``), see the module
            docstring.
        seeds: the seed of each model (M,), whose ``"dropout"`` stream draws its masks.
        generators: one ``"dropout"`` stream ``torch.Generator`` per distinct seed, in
            sorted seed order (their states belong in a checkpoint).

    Shape:
        input: (N, ...) one batch read by all M models, or (M, N, ...) one batch per
        model; output: logits (M, N, C).
    """

    num_models: int
    _template: nn.Module  # set with object.__setattr__: not a submodule
    _plan: list[tuple[Any, ...]] | None

    def __init__(
        self,
        models: Sequence[nn.Module],
        path: Path = "auto",
        seeds: Sequence[int] | None = None,
    ):
        super().__init__()
        if path not in ("auto", "mlp", "vmap"):
            raise LosslabError(f"path must be 'auto', 'mlp' or 'vmap', got {path!r}")
        models = _check_same_architecture(models)
        template = copy.deepcopy(models[0])
        plan = _mlp_plan(template) if path in ("auto", "mlp") else None
        if path == "mlp" and plan is None:
            raise LosslabError(
                f"path='mlp' needs an MLP / nn.Sequential of Flatten, Linear, BatchNorm1d "
                f"(momentum not None), parameter-free element-wise activations and Dropout; "
                f"{type(template).__name__} is not one: use path='vmap' or 'auto'"
            )
        self.num_models = len(models)
        self.path = "mlp" if plan is not None else "vmap"
        self.seeds = _check_seeds(seeds, self.num_models)
        distinct = sorted(set(self.seeds))
        self.generators = [torch_generator(s, "dropout") for s in distinct]
        # Model i draws its masks in group _group_of[i]; _groups[u] lists the models of
        # distinct seed u.
        self._group_of = torch.tensor([distinct.index(s) for s in self.seeds])
        self._groups = [
            torch.tensor([i for i, s in enumerate(self.seeds) if s == u]) for u in distinct
        ]
        self._rows_on: dict[torch.device, tuple[torch.Tensor, list[torch.Tensor]]] = {}
        self._random = uses_global_rng(template)
        self._plan = plan
        # The template is deliberately not a registered submodule: its own parameters
        # must not appear in .parameters(); it only provides the structure.
        object.__setattr__(self, "_template", template)
        self._transposed = {f"{step[1]}.weight" for step in plan or () if step[0] == "linear"}
        self._param_names: list[str] = []
        self._buffer_names: list[str] = []
        for name, param in template.named_parameters():
            stacked = torch.stack([dict(m.named_parameters())[name].detach() for m in models])
            if name in self._transposed:
                stacked = stacked.transpose(1, 2)
            stacked = nn.Parameter(stacked.contiguous(), requires_grad=param.requires_grad)
            self.register_parameter(_mangle(name), stacked)
            self._param_names.append(name)
        for name, _ in template.named_buffers():
            stacked = torch.stack([dict(m.named_buffers())[name] for m in models]).clone()
            self.register_buffer(_mangle(name), stacked)
            self._buffer_names.append(name)
        if plan is not None:  # the mlp path
            first = cast(nn.Linear, template.get_submodule(plan[0][1]))  # plans start with one
            self.sample_shape: tuple[int, ...] | None = (first.in_features,)
        else:
            self.sample_shape = getattr(template, "sample_shape", None)
        self.train(models[0].training)

    def train(self, mode: bool = True) -> ModelStack:
        """Switch dropout and batch-norm of all M models to training (or evaluation) mode."""
        super().train(mode)
        self._template.train(mode)
        return self

    def stacked(self, name: str) -> torch.Tensor:
        """The stacked tensor of the models' parameter or buffer ``name`` (e.g. "1.weight").

        Linear weights of the ``"mlp"`` path are stored transposed, (M, D_in, D_out).
        """
        return getattr(self, _mangle(name))

    def forward(self, x: torch.Tensor, per_model: bool | None = None) -> torch.Tensor:
        """Logits of all M models.

        Args:
            x: (N, ...) one batch for all models, or (M, N, ...) one batch per model.
            per_model: which of the two ``x`` is; ``None`` (default) decides from the
                shape: shared when ``x[0]`` has as many values as one sample of the models
                (or when the models do not declare ``sample_shape``), per-model when
                ``x[0, 0]`` has. A per-model batch of N = 1 must say ``per_model=True``.

        Returns:
            (M, N, C) logits.
        """
        per_model = self._read_input(x, per_model)
        if self.path == "mlp":
            return self._forward_mlp(x, per_model)
        return self._forward_vmap(x, per_model)

    def _read_input(self, x: torch.Tensor, per_model: bool | None) -> bool:
        if not isinstance(x, torch.Tensor):
            raise LosslabError(f"the stack's input must be a tensor, got {type(x).__name__}")
        reference = next(iter(self.parameters()), None)
        if reference is not None and x.dtype != reference.dtype:
            raise LosslabError(
                f"the stack's input is {x.dtype} but its parameters are {reference.dtype}: "
                f"convert the data with x.to({reference.dtype})"
            )
        size = None if self.sample_shape is None else math.prod(self.sample_shape)
        shape = "(N, ...)" if self.sample_shape is None else f"(N, {size})"
        if per_model is None:
            if size is None or (x.dim() >= 2 and x[0].numel() == size):
                per_model = False
            elif x.dim() >= 3 and x.shape[0] == self.num_models and x[0, 0].numel() == size:
                per_model = True
            else:
                raise LosslabError(
                    f"the stack of {self.num_models} models expects a shared batch {shape} "
                    f"or per-model batches ({self.num_models}, N, {size}) "
                    f"(any trailing shape with {size} values per sample), got {tuple(x.shape)}"
                )
        if per_model and (x.dim() < 3 or x.shape[0] != self.num_models):
            raise LosslabError(
                f"per-model input must have shape ({self.num_models}, N, ...), one batch "
                f"per model, got {tuple(x.shape)}"
            )
        if size is not None:
            sample = x[0, 0] if per_model else x[0]
            if x.dim() < 2 + per_model or sample.numel() != size:
                raise LosslabError(
                    f"each sample must have {size} values (shape {self.sample_shape}), "
                    f"got input of shape {tuple(x.shape)}"
                )
        return per_model

    def _forward_mlp(self, x: torch.Tensor, per_model: bool) -> torch.Tensor:
        m = self.num_models
        assert self.sample_shape is not None and self._plan is not None  # the mlp path's
        d = self.sample_shape[0]
        if per_model:
            h = x.reshape(m, x.shape[1], d)
        else:
            # The common batch is broadcast, not copied, to (M, N, D). One big
            # x @ W.permute(1, 0, 2).reshape(D, M * H) would instead copy the first
            # weight forward and its gradient backward (measured slower at the MNIST shape).
            h = x.reshape(x.shape[0], d).expand(m, x.shape[0], d)
        masks = iter(self._dropout_masks(h.shape[1], h.device, h.dtype))
        for step in self._plan:
            kind = step[0]
            if kind == "linear":
                weight = self.stacked(f"{step[1]}.weight")
                bias = self.stacked(f"{step[1]}.bias") if step[2] else None
                if bias is None:
                    h = torch.bmm(h, weight)
                else:
                    h = torch.baddbmm(bias.unsqueeze(1), h, weight)
            elif kind == "relu_":
                # h is a fresh matmul / batch-norm output whose backward does not need it.
                h = h.relu_()
            elif kind == "activation":
                h = step[1](h)
            elif kind == "dropout":
                if self.training and step[1] > 0.0:
                    h = h * next(masks)
            else:
                h = self._batchnorm(h, step[1], step[2])
        return h if h.is_contiguous() else h.contiguous()

    def _rows(self, device: torch.device) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # Cached per device: copying the index tensors at every step would wait for the GPU.
        if device not in self._rows_on:
            self._rows_on[device] = (
                self._group_of.to(device),
                [rows.to(device) for rows in self._groups],
            )
        return self._rows_on[device]

    def _dropout_masks(self, n: int, device: torch.device, dtype: torch.dtype) -> list:
        """The inverted-dropout masks (M, n, H_l) of every active dropout layer, in order.

        Each distinct seed draws ``F.dropout(ones(n, H_l), p)`` layer after layer from the
        global generator re-seeded from its stream: the very calls, shapes and order of
        ``nn.Dropout`` in the model run alone, hence the same masks (values 0 or 1/(1-p)).
        """
        if not self.training:
            return []
        shapes, width = [], 0
        for step in self._plan or ():
            if step[0] == "linear":
                width = self.stacked(f"{step[1]}.weight").shape[2]
            elif step[0] == "dropout" and step[1] > 0.0:
                shapes.append((step[1], width))
        if not shapes:
            return []
        per_seed = []
        for generator in self.generators:
            with seeded_global_rng(draw_seed(generator), device):
                ones = [torch.ones(n, w, device=device, dtype=dtype) for _, w in shapes]
                per_seed.append([F.dropout(o, p) for o, (p, _) in zip(ones, shapes, strict=True)])
        rows = self._rows(device)[0]
        return [torch.stack(layer).index_select(0, rows) for layer in zip(*per_seed, strict=True)]

    def _batchnorm(self, h: torch.Tensor, name: str, module: nn.BatchNorm1d) -> torch.Tensor:
        m, n, width = h.shape
        # Statistics over each model's own N samples: lay the batch out as (N, M * H) and
        # let one batch_norm call treat every (model, feature) pair as a channel.
        flat = h.transpose(0, 1).reshape(n, m * width)
        training = self.training or not module.track_running_stats
        running_mean = running_var = None
        if module.track_running_stats:
            running_mean = self.stacked(f"{name}.running_mean").view(-1)
            running_var = self.stacked(f"{name}.running_var").view(-1)
            if self.training:
                self.stacked(f"{name}.num_batches_tracked").add_(1)
        weight = bias = None
        if module.affine:
            weight = self.stacked(f"{name}.weight").reshape(-1)
            bias = self.stacked(f"{name}.bias").reshape(-1)
        out = F.batch_norm(
            flat, running_mean, running_var, weight, bias, training,
            cast(float, module.momentum),  # _mlp_plan refuses momentum=None
            module.eps,
        )
        return out.view(n, m, width).transpose(0, 1)

    def _forward_vmap(self, x: torch.Tensor, per_model: bool) -> torch.Tensor:
        params = {name: self.stacked(name) for name in self._param_names}
        buffers = {name: self.stacked(name) for name in self._buffer_names}
        template = self._template

        def one_model(
            p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xi: torch.Tensor
        ) -> torch.Tensor:
            return functional_call(template, (p, b), (xi,))

        if not (self.training and self._random):
            return torch.vmap(one_model, in_dims=(0, 0, 0 if per_model else None))(
                params, buffers, x
            )
        # randomness="same": one draw of the unbatched shape from the global generator,
        # as the model alone would draw it; one call per distinct seed, whose models share
        # the draws.
        batched = torch.vmap(one_model, in_dims=(0, 0, 0 if per_model else None), randomness="same")
        if len(self.generators) == 1:
            with seeded_global_rng(draw_seed(self.generators[0]), x.device):
                return batched(params, buffers, x)
        outs, order = [], []
        for generator, rows in zip(self.generators, self._rows(x.device)[1], strict=True):
            p = {k: v.index_select(0, rows) for k, v in params.items()}
            b = {k: v.index_select(0, rows) for k, v in buffers.items()}
            with seeded_global_rng(draw_seed(generator), x.device):
                outs.append(batched(p, b, x.index_select(0, rows) if per_model else x))
            with torch.no_grad():
                # Batch-norm updated the selected copies of its running statistics.
                for k, v in b.items():
                    buffers[k].index_copy_(0, rows, v)
            order.append(rows)
        return torch.cat(outs).index_select(0, torch.argsort(torch.cat(order)))

    def parameter_scale(self) -> torch.Tensor:
        """R of each model (Berlyand et al. eq. 9), differentiable: shape (M,).

        .. math:: R_m = \\prod_l \\lVert \\alpha_{m,l} \\rVert_2

        over every Linear / Conv layer l of model m, as
        :func:`losslab.models.parameter_scale` computes it for one model.
        """
        factors = []
        for prefix, layer in self._template.named_modules():
            if not isinstance(layer, _SCALED_LAYERS):
                continue
            squares = [
                self.stacked(f"{prefix}.{pname}" if prefix else pname).pow(2).flatten(1).sum(1)
                for pname, _ in layer.named_parameters(recurse=False)
            ]
            factors.append(torch.stack(squares).sum(0).sqrt())
        if not factors:
            raise LosslabError(
                f"parameter_scale: {type(self._template).__name__} has no nn.Linear or nn.Conv "
                "layer; R is the product of the layers' parameter norms (Berlyand et al. eq. 9)"
            )
        return torch.stack(factors).prod(0)

    def unstack(self) -> list[nn.Module]:
        """M independent models (same class as the stacked ones) holding the current
        parameters and buffers (batch-norm running statistics), in the stack's mode."""
        reference = next(iter(self.parameters()), None)
        models = []
        for i in range(self.num_models):
            model = copy.deepcopy(self._template)
            if reference is not None:
                model.to(device=reference.device, dtype=reference.dtype)
            state = {}
            for name in self._param_names + self._buffer_names:
                value = self.stacked(name)[i].detach()
                state[name] = value.T if name in self._transposed else value
            model.load_state_dict(state)
            models.append(model.train(self.training))
        return models

    def extra_repr(self) -> str:
        return f"num_models={self.num_models}, path={self.path!r}"


def _check_seeds(seeds: Sequence[int] | None, m: int) -> list[int]:
    if seeds is None:
        return list(range(m))
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence) or len(seeds) != m:
        raise LosslabError(
            f"seeds must be a sequence of {m} integers, one per model, got {seeds!r}"
        )
    return [check_int("seed", s, 0) for s in seeds]


def _check_same_architecture(models: Sequence[nn.Module]) -> list[nn.Module]:
    models = list(models) if not isinstance(models, nn.Module) else [models]
    if not models:
        raise LosslabError("stack_models needs at least one model")
    for model in models:
        if not isinstance(model, nn.Module):
            raise LosslabError(f"stack_models takes nn.Module objects, got {type(model).__name__}")
    first = models[0]
    signature = _signature(first)
    for i, model in enumerate(models[1:], start=1):
        if type(model) is not type(first):
            raise LosslabError(
                f"stack_models: model {i} is a {type(model).__name__}, model 0 a "
                f"{type(first).__name__}; all models of a stack must share one architecture"
            )
        if _signature(model) != signature:
            raise LosslabError(
                f"stack_models: model {i} differs from model 0 in its layers or in the names, "
                "shapes or dtypes of its parameters/buffers; stack only models built with the "
                "same architecture arguments (they may differ in seed, loss and optimizer)"
            )
    return models


def _signature(model: nn.Module) -> tuple:
    state = tuple(
        (name, tuple(t.shape), t.dtype, t.device) for name, t in model.state_dict().items()
    )
    return repr(model), state


def stack_models(
    models: Sequence[nn.Module],
    path: Path = "auto",
    seeds: Sequence[int] | None = None,
) -> ModelStack:
    """Stack M models that share an architecture into one :class:`ModelStack`.

    The stack starts from copies of the models' current parameters and buffers, so
    models built with the same seed start identical in the stack too (common random
    numbers across losses).

    Args:
        models: M >= 1 models of the same class whose parameters/buffers have the same
            names, shapes and dtypes and whose layers print the same (same dropout rate,
            activation, ...).
        path: "auto" (default: the batched-matmul path for MLPs, vmap otherwise), "mlp"
            or "vmap".
        seeds: the seed each model was built with (default ``None``: model i has seed i);
            a model's dropout masks come from its seed's ``"dropout"`` stream, the same
            masks it draws alone (see the module docstring); the caller's global RNG is
            never read.

    Example:
        >>> from losslab.models import mlp
        >>> stack = stack_models([mlp(2, [200] * 5, 4, seed=s) for s in range(5)])
        >>> stack(torch.zeros(50, 2)).shape
        torch.Size([5, 50, 4])
    """
    return ModelStack(models, path=path, seeds=seeds)
