"""Checks that refuse a training call before any work starts.

A mistake that would otherwise surface deep inside a loss (a model with fewer logits
than the data has classes) or only after training ran (a checkpoint that cannot be
written) becomes a one-line :class:`~losslab.errors.LosslabError` at the entry points of
:func:`~losslab.train.train` and :func:`~losslab.train.train_many`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from losslab.errors import LosslabError
from losslab.train.data import TrainData


def check_start(models: Sequence[nn.Module], data: TrainData, checkpoint_path: str | None) -> None:
    """All checks of a training call: :func:`check_checkpoint_path`, :func:`check_models`."""
    check_checkpoint_path(checkpoint_path)
    check_models(models, data)


def check_models(models: Sequence[nn.Module], data: TrainData) -> None:
    """Every model maps two training samples (2, ...) to logits (2, K) with K >= C.

    The models run once in evaluation mode (batch-norm cannot normalise a batch of one
    otherwise) and are put back in the mode they were in.
    """
    x = data.x_train[:2]
    for i, model in enumerate(models):
        param = next(model.parameters(), None)
        sample = x if param is None else x.to(device=param.device, dtype=param.dtype)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model(sample)
        except RuntimeError as err:
            reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            raise LosslabError(
                f"model {i} cannot read samples of shape {tuple(x.shape[1:])} ({reason}); "
                "build it for the data, e.g. losslab.models.for_data(name, data.input_shape, "
                "data.num_classes)"
            ) from None
        finally:
            model.train(was_training)
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise LosslabError(
                f"model {i} must return logits of shape (N, C); for 2 samples it returned {shape}"
            )
        if out.shape[1] < data.num_classes:
            raise LosslabError(
                f"model {i} outputs {out.shape[1]} logits but the data has {data.num_classes} "
                f"classes; build it with {data.num_classes} outputs (for_data(..., num_classes))"
            )


def check_checkpoint_path(path: str | None) -> None:
    """The folder of ``path`` exists and is writable, so the first save cannot fail late."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise LosslabError(
            f"checkpoint_path {path!r}: the folder {folder} does not exist; create it first"
        )
    if not os.access(folder, os.W_OK):
        raise LosslabError(f"checkpoint_path {path!r}: the folder {folder} is not writable")
    if os.path.isdir(path):
        raise LosslabError(f"checkpoint_path {path!r} is a folder; give a file name inside it")
