"""Data resident on the device and the seeded batch order (airbench style, no DataLoader).

The whole dataset is moved to the device once; a batch is an index into it. Each seed owns
its own ``torch.Generator`` of permutations (its ``"batch_order"`` stream of
:mod:`losslab.seeding`), so models trained with the same seed see the same batches in the
same order whatever their loss or learning rate (common random numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from losslab.errors import LosslabError
from losslab.seeding import torch_generator

_SPLITS = ("train", "dev", "test")


@dataclass
class TrainData:
    """Train/dev/test tensors on one device.

    Attributes:
        x_train: (n, ...) floating point; y_train: (n,) int64 in [0, C).
        x_dev, y_dev, x_test, y_test: the same for the other splits, or None.
        num_classes: C.
        coarse_train, coarse_dev, coarse_test: (n,) int64 super-class labels of the splits
            (e.g. CIFAR-100's 20 coarse classes), or None.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_dev: torch.Tensor | None
    y_dev: torch.Tensor | None
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    num_classes: int
    coarse_train: torch.Tensor | None = None
    coarse_dev: torch.Tensor | None = None
    coarse_test: torch.Tensor | None = None

    def coarse(self, name: str) -> torch.Tensor | None:
        """(n,) super-class labels of split ``name``, or None."""
        return getattr(self, f"coarse_{name}")

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(x, y) of split ``name`` ("train", "dev", "test"), or None when it is absent."""
        x, y = getattr(self, f"x_{name}"), getattr(self, f"y_{name}")
        return None if x is None else (x, y)


def _get(data: Any, key: str) -> Any:
    if isinstance(data, Mapping):
        return data.get(key)
    return getattr(data, key, None)


def as_train_data(data: Any, device: torch.device, dtype: torch.dtype) -> TrainData:
    """Move a dataset to ``device`` as tensors, checking shapes, labels and finiteness.

    Args:
        data: a :class:`losslab.data.Dataset`, any object or mapping with ``x_train``,
            ``y_train`` and optionally ``x_dev``/``y_dev``, ``x_test``/``y_test`` (NumPy
            arrays or tensors) and ``num_classes`` (default: 1 + the largest label).
        device: where the tensors live.
        dtype: floating dtype of the inputs.
    """
    if isinstance(data, TrainData):
        data = {
            f"{p}_{s}": getattr(data, f"{p}_{s}") for p in ("x", "y", "coarse") for s in _SPLITS
        } | {"num_classes": data.num_classes}
    tensors: dict[str, torch.Tensor | None] = {}
    for split in _SPLITS:
        x, y = _get(data, f"x_{split}"), _get(data, f"y_{split}")
        if x is None and y is None:
            if split == "train":
                raise LosslabError(
                    "the data has no x_train/y_train; pass a losslab.data Dataset or an "
                    "object/dict with x_train, y_train (and optionally dev/test) arrays"
                )
            tensors[f"x_{split}"] = tensors[f"y_{split}"] = None
            continue
        if x is None or y is None:
            raise LosslabError(f"the {split} split needs both x_{split} and y_{split}")
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
        if y.ndim != 1 or y.is_floating_point() or y.dtype == torch.bool:
            raise LosslabError(
                f"y_{split} must be a 1-d array of integer class labels, got shape "
                f"{tuple(y.shape)} and dtype {y.dtype}"
            )
        if x.ndim < 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise LosslabError(
                f"x_{split} must have shape (n, ...) with n = len(y_{split}) = {y.shape[0]} > 0, "
                f"got {tuple(x.shape)}"
            )
        x = x.to(device=device, dtype=dtype)
        if not bool(torch.isfinite(x).all()):
            raise LosslabError(f"x_{split} contains NaN or inf; clean or impute the data first")
        tensors[f"x_{split}"], tensors[f"y_{split}"] = x, y.to(device=device, dtype=torch.long)
    labels = [t for k, t in tensors.items() if k.startswith("y_") and t is not None]
    classes = _get(data, "num_classes")
    if classes is None:
        classes = 1 + max(int(t.max()) for t in labels)
        samples = sum(t.numel() for t in labels)
        if classes > samples:
            raise LosslabError(
                f"the largest label is {classes - 1}, i.e. {classes} classes for {samples} "
                "samples; relabel the classes 0..C-1 or give num_classes explicitly"
            )
    classes = int(classes)
    for t in labels:
        if int(t.min()) < 0 or int(t.max()) >= classes:
            raise LosslabError(
                f"class labels must lie in [0, {classes}); got {int(t.min())} .. {int(t.max())}"
            )
    if classes < 2:
        raise LosslabError(f"a classification task needs at least 2 classes, got {classes}")
    shapes = {
        tuple(t.shape[1:]) for k, t in tensors.items() if k.startswith("x_") and t is not None
    }
    if len(shapes) != 1:
        raise LosslabError(f"all splits must have the same sample shape, got {sorted(shapes)}")
    for split in _SPLITS:
        coarse = _get(data, f"coarse_{split}")
        y = tensors[f"y_{split}"]
        if coarse is not None and y is not None:
            coarse = torch.as_tensor(
                np.asarray(coarse) if not isinstance(coarse, torch.Tensor) else coarse
            )
            if tuple(coarse.shape) != tuple(y.shape):
                raise LosslabError(
                    f"coarse_{split} must have one super-class label per sample, shape "
                    f"{tuple(y.shape)}; got {tuple(coarse.shape)}"
                )
            tensors[f"coarse_{split}"] = coarse.to(device=device, dtype=torch.long)
    # x_train and y_train are present (checked above); the other splits may be None.
    return TrainData(num_classes=classes, **cast(dict[str, Any], tensors))


class BatchOrder:
    """Mini-batch indices for U seeds: one permutation stream per seed.

    Epoch e of seed u is ``randperm(n)`` drawn from that seed's ``"batch_order"`` stream
    (or ``arange(n)`` without shuffling); its steps take consecutive slices of
    ``batch_size`` indices and drop the remainder, so every batch has the same size (one
    compiled shape, and batched models stay aligned).

    Args:
        seeds: the U distinct seeds.
        n: training-set size.
        batch_size: N, capped at n.
        shuffle: a fresh permutation per epoch (default True) or batches in order.
        device: where the index tensors live.
    """

    def __init__(
        self, seeds: Sequence[int], n: int, batch_size: int, shuffle: bool, device: torch.device
    ):
        self.n = n
        self.batch_size = min(batch_size, n)
        self.steps_per_epoch = n // self.batch_size
        self.shuffle = shuffle
        self.device = device
        self.generators = [torch_generator(s, "batch_order") for s in seeds]
        self.epoch = -1
        self.order: torch.Tensor | None = None

    def indices(self, step: int) -> torch.Tensor:
        """(U, N) indices of the batch of optimizer step ``step`` (0-based)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        while self.epoch < epoch:
            # Epochs are drawn in sequence so that a resumed run draws what it would have.
            self.epoch += 1
            if self.shuffle:
                order = [torch.randperm(self.n, generator=g) for g in self.generators]
            else:
                order = [torch.arange(self.n)] * len(self.generators)
            self.order = torch.stack(order).to(self.device)
        start = position * self.batch_size
        assert self.order is not None  # the loop above drew epoch 0 at least
        return self.order[:, start : start + self.batch_size]

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue the same sequence of batches."""
        return {
            "generators": [g.get_state() for g in self.generators],
            "epoch": self.epoch,
            "order": None if self.order is None else self.order.cpu(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        for g, s in zip(self.generators, state["generators"], strict=True):
            g.set_state(s)
        self.epoch = state["epoch"]
        self.order = None if state["order"] is None else state["order"].to(self.device)
