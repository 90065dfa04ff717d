"""How the M models of one run are evaluated: one stacked computation, or a plain loop.

Both backends expose the same small interface to the training loop: logits (M, N, C),
the parameter scales R (M,), the optimizer's parameters (which of them are weights, for
weight decay), per-layer gradient norms (M,), gradient masking of inactive models,
snapshots of the best weights, and state dicts for checkpoints.

* :class:`StackBackend` runs the models as one :class:`~losslab.models.ModelStack`
  (batched matmuls for MLPs, ``torch.vmap`` otherwise).
* :class:`LoopBackend` runs plain ``nn.Module`` s one after another: the reference the
  stack is tested against, and the engine of :func:`losslab.train.train`.

In both, a model's dropout masks come from the ``"dropout"`` stream of its own seed
(:mod:`losslab.seeding`), drawn the same way, so a model drops the same units in either
backend and whatever the other models are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from losslab.models import parameter_scale, stack_models
from losslab.seeding import draw_seed, seeded_global_rng, torch_generator, uses_global_rng
from losslab.train.optim import Param


def _layer(name: str) -> str:
    """The layer a parameter belongs to: its module path ("3" of "3.weight")."""
    return name.rpartition(".")[0] or name


class _Backend:
    """What both backends are built from (their methods: the module docstring).

    Args:
        models: M models of one architecture.
        device, dtype: where and in which precision they live.
        seeds: the seed of each model (M,), whose ``"dropout"`` stream draws its masks.
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        device: torch.device,
        dtype: torch.dtype,
        seeds: Sequence[int],
    ) -> None:
        self.num_models = len(models)
        self.device = device
        self._place(models, dtype, seeds)

    def _place(self, models: Sequence[nn.Module], dtype: torch.dtype,
               seeds: Sequence[int]) -> None:
        raise NotImplementedError


class StackBackend(_Backend):
    """M models of one architecture as one :class:`~losslab.models.ModelStack` (the models
    are copied into the stack); arguments as :class:`LoopBackend`'s."""

    def _place(self, models: Sequence[nn.Module], dtype: torch.dtype,
               seeds: Sequence[int]) -> None:
        device = self.device
        self.stack = stack_models(models, seeds=seeds).to(device=device, dtype=dtype)
        self.stack.train()
        self._views = [(1,) * (p.dim() - 1) for p in self.stack.parameters()]

    def forward(self, x: torch.Tensor, shared: bool) -> torch.Tensor:
        """Logits (M, N, C) of a shared batch (N, ...) or per-model batches (M, N, ...)."""
        return self.stack(x, per_model=not shared)

    def scales(self) -> torch.Tensor:
        """R of every model, (M,), differentiable."""
        return self.stack.parameter_scale()

    def _named(self) -> list[tuple[str, torch.Tensor]]:
        # ModelStack registers "a.b" of the models as "a__b".
        return [
            (name.replace("__", "."), p)
            for name, p in self.stack.named_parameters()
            if p.requires_grad
        ]

    def param_entries(self, decay_all: bool) -> list[Param]:
        """The optimizer's view of the parameters; weights are those with >= 2 dims per model."""
        return [Param(p, None, decay_all or p.dim() - 1 >= 2) for _, p in self._named()]

    def grad_norms(self) -> dict[str, torch.Tensor]:
        """Per layer, the L2 norm of every model's current gradient, (M,) each."""
        squares: dict[str, torch.Tensor] = {}
        for name, p in self._named():
            if p.grad is not None:
                value = p.grad.detach().pow(2).flatten(1).sum(1)
                key = _layer(name)
                squares[key] = squares[key] + value if key in squares else value
        return {k: v.sqrt() for k, v in squares.items()}

    def mask_grads(self, inactive: torch.Tensor) -> None:
        """Zero the gradients of the models flagged in ``inactive`` (M,) bool, no host sync.

        ``masked_fill_`` (not a multiply) so that NaN gradients of a diverged model are
        cleared too.
        """
        for p, view in zip(self.stack.parameters(), self._views, strict=True):
            if p.grad is not None:
                p.grad.masked_fill_(inactive.view(-1, *view), 0.0)

    @property
    def training(self) -> bool:
        """In training mode (dropout on, batch statistics)."""
        return self.stack.training

    def train(self, mode: bool = True) -> None:
        """Training (dropout on, batch statistics) or evaluation mode."""
        self.stack.train(mode)

    def tensors(self) -> list[torch.Tensor]:
        """Every stacked parameter and buffer (leading dimension M), for snapshots."""
        return [*self.stack.parameters(), *self.stack.buffers()]

    def set_tensors(self, values: Sequence[torch.Tensor]) -> None:
        """Write (M, ...) values back into the stack (inverse of :meth:`tensors`)."""
        with torch.no_grad():
            for target, value in zip(self.tensors(), values, strict=True):
                target.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        """Weights, buffers and the dropout generators."""
        return {
            "stack": self.stack.state_dict(),
            "generators": [g.get_state() for g in self.stack.generators],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` in place (the optimizer keeps its parameters)."""
        self.stack.load_state_dict(state["stack"])
        for g, s in zip(self.stack.generators, state["generators"], strict=True):
            g.set_state(s)

    def models(self) -> list[nn.Module]:
        """M independent modules holding the trained weights, in evaluation mode."""
        return [m.eval() for m in self.stack.unstack()]


class LoopBackend(_Backend):
    """M plain modules run one after another (the per-model reference; ``train()``).

    The modules are trained in place. Before every training forward of a model with
    dropout, torch's global generator is re-seeded from the ``"dropout"`` stream of the
    model's seed (``seeds``, M ints) and restored afterwards
    (:func:`~losslab.seeding.seeded_global_rng`), so the caller's global RNG is untouched.

    Args:
        models: M models of one architecture.
        device, dtype: where and in which precision they live.
        seeds: the seed of each model (M,), whose ``"dropout"`` stream draws its masks.
    """

    def _place(self, models: Sequence[nn.Module], dtype: torch.dtype,
               seeds: Sequence[int]) -> None:
        device = self.device
        self._models = [m.to(device=device, dtype=dtype).train() for m in models]
        self.generators = [torch_generator(s, "dropout") for s in seeds]
        self._random = [uses_global_rng(m) for m in self._models]
        self._training = True

    def _run(self, i: int, x: torch.Tensor) -> torch.Tensor:
        model = self._models[i]
        if not (self._training and self._random[i]):
            return model(x)
        with seeded_global_rng(draw_seed(self.generators[i]), self.device):
            return model(x)

    def forward(self, x: torch.Tensor, shared: bool) -> torch.Tensor:
        """Logits (M, N, C) of a shared batch (N, ...) or per-model batches (M, N, ...)."""
        return torch.stack([self._run(i, x if shared else x[i]) for i in range(self.num_models)])

    def scales(self) -> torch.Tensor:
        """R of every model, (M,), differentiable."""
        return torch.stack([parameter_scale(m) for m in self._models])

    def param_entries(self, decay_all: bool) -> list[Param]:
        """The optimizer's view of the parameters; weights are those with >= 2 dims."""
        return [
            Param(p, i, decay_all or p.dim() >= 2)
            for i, m in enumerate(self._models)
            for p in m.parameters()
            if p.requires_grad
        ]

    def grad_norms(self) -> dict[str, torch.Tensor]:
        """Per layer, the L2 norm of every model's current gradient, (M,) each."""
        squares: dict[str, list[torch.Tensor]] = {}
        for i, model in enumerate(self._models):
            for name, p in model.named_parameters():
                if p.grad is None:
                    continue
                rows = squares.setdefault(_layer(name), [p.grad.new_zeros(())] * self.num_models)
                rows[i] = rows[i] + p.grad.detach().pow(2).sum()
        return {k: torch.stack(v).sqrt() for k, v in squares.items()}

    def mask_grads(self, inactive: torch.Tensor) -> None:
        """Zero the gradients of the models flagged in ``inactive`` (M,) bool."""
        for i, model in enumerate(self._models):
            for p in model.parameters():
                if p.grad is not None:
                    p.grad.masked_fill_(inactive[i], 0.0)

    @property
    def training(self) -> bool:
        """In training mode (dropout on, batch statistics)."""
        return self._training

    def train(self, mode: bool = True) -> None:
        """Training or evaluation mode of every model."""
        self._training = mode
        for m in self._models:
            m.train(mode)

    def tensors(self) -> list[torch.Tensor]:
        """Every parameter and buffer, each stacked as (M, ...) copies (for snapshots)."""
        per_model = [[*m.parameters(), *m.buffers()] for m in self._models]
        return [torch.stack(group) for group in zip(*per_model, strict=True)]

    def set_tensors(self, values: Sequence[torch.Tensor]) -> None:
        """Write (M, ...) stacked values back into the models (inverse of :meth:`tensors`)."""
        with torch.no_grad():
            for i, m in enumerate(self._models):
                for target, value in zip([*m.parameters(), *m.buffers()], values, strict=True):
                    target.copy_(value[i])

    def state_dict(self) -> dict[str, Any]:
        """Every model's state dict and dropout generator."""
        return {
            "models": [m.state_dict() for m in self._models],
            "generators": [g.get_state() for g in self.generators],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` in place."""
        for m, s in zip(self._models, state["models"], strict=True):
            m.load_state_dict(s)
        for g, s in zip(self.generators, state["generators"], strict=True):
            g.set_state(s)

    def models(self) -> list[nn.Module]:
        """The trained modules themselves, in evaluation mode."""
        return [m.eval() for m in self._models]
