"""The :class:`Dataset` container and the checks every source's arrays pass through.

A source loader builds a :class:`Dataset` with ``x_dev = y_dev = None``;
:func:`losslab.data.load_dataset` validates it with :func:`validate` before any split,
standardisation or noise, so a malformed source never reaches the user half-loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from losslab.errors import LosslabError


@dataclass(repr=False)
class Dataset:
    """A classification dataset held in memory as NumPy arrays.

    Shapes: N samples per split; one sample is ``(D,)`` for vectors (toy sets, MNIST-1D,
    CSV/NPZ rows), ``(H, W)`` for grey images (digits, MNIST, Fashion-MNIST) and
    ``(C, H, W)`` for colour images (CIFAR). ``load_dataset(..., flatten=True)`` turns every
    feature array into ``(N, D)``.

    Attributes:
        x_train, y_train: float32 features ``(N_train, ...)`` and int64 labels ``(N_train,)``.
        x_dev, y_dev: the stratified dev split carved from train; ``None`` when
            ``dev_fraction=0``.
        x_test, y_test: the source's test split.
        num_classes: C; every label lies in ``[0, C)``.
        class_names: C human-readable names.
        coarse_train, coarse_test, coarse_dev: int64 super-class labels (CIFAR-100's 20 coarse
            classes), else ``None``.
        metadata: a JSON-friendly dict: ``source``, ``files``, ``sha256``, ``seed``, split seeds,
            ``standardize``, ``flatten``, ``label_noise``, ``input_noise``, ...
        name: the registry name the dataset was loaded under.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_dev: np.ndarray | None
    y_dev: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: list[str]
    coarse_train: np.ndarray | None = None
    coarse_test: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    name: str = "custom"
    coarse_dev: np.ndarray | None = None

    @classmethod
    def loaded(
        cls,
        name: str,
        train: tuple[np.ndarray, np.ndarray],
        test: tuple[np.ndarray, np.ndarray],
        num_classes: int,
        metadata: dict[str, Any],
        class_names: Sequence[str] | None = None,
        coarse: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Dataset:
        """What a loader returns: train and test splits as ``(x, y)``, no dev split yet.

        Args:
            name: the registry name.
            train, test: ``(x (N, ...), y (N,))`` of each split.
            num_classes: C.
            metadata: the loader's JSON-friendly description (source, files, ...).
            class_names: C names; default ``"0"`` .. ``"C-1"``.
            coarse: ``(coarse_train, coarse_test)`` super-class labels (CIFAR-100).
        """
        names = [str(k) for k in range(num_classes)] if class_names is None else class_names
        return cls(
            x_train=train[0], y_train=train[1], x_dev=None, y_dev=None,
            x_test=test[0], y_test=test[1], num_classes=num_classes, class_names=list(names),
            coarse_train=None if coarse is None else coarse[0],
            coarse_test=None if coarse is None else coarse[1],
            metadata=metadata, name=name,
        )  # fmt: skip

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(2,)``, ``(28, 28)`` or ``(3, 32, 32)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_coarse_classes(self) -> int | None:
        """Number of super-classes when coarse labels exist (20 for CIFAR-100), else None."""
        names = self.metadata.get("coarse_class_names")
        return None if names is None else len(names)

    def __repr__(self) -> str:
        dev = "none" if self.x_dev is None else str(len(self.x_dev))
        return (
            f"Dataset({self.name!r}: train {len(self.x_train)}, dev {dev}, "
            f"test {len(self.x_test)}, input_shape {self.input_shape}, "
            f"{self.num_classes} classes)"
        )


def as_labels(y: Any, num_classes: int | None, what: str) -> np.ndarray:
    """Return ``y`` as a 1-D int64 array, refusing non-integral or out-of-range labels.

    Args:
        y: labels ``(N,)``; integral floats (as read from a CSV) are accepted.
        num_classes: C, or None to skip the upper bound.
        what: where the labels come from, for the message.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise LosslabError(f"{what}: labels must be 1-D (N,), got shape {arr.shape}")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise LosslabError(
            f"{what}: labels must be integers 0..C-1, got dtype {arr.dtype}; "
            "map class names to integers first"
        )
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise LosslabError(f"{what}: labels must be whole numbers 0..C-1 (found fractions)")
    labels = arr.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise LosslabError(f"{what}: labels must be >= 0, found {labels.min()}")
    if num_classes is not None and labels.size and labels.max() >= num_classes:
        raise LosslabError(
            f"{what}: label {labels.max()} is out of range for {num_classes} classes "
            f"(labels must lie in 0..{num_classes - 1}); pass num_classes= if it is wrong"
        )
    return labels


def infer_num_classes(labels: list[np.ndarray], declared: int | None, what: str) -> int:
    """C for labels that come without an explicit class count.

    ``declared`` (the number of class names the data declares) wins when given; otherwise
    C = largest label + 1, refused when that exceeds the number of samples: such labels are
    ids, not classes (labels up to 1e9 would build a billion-column output layer).

    Args:
        labels: the checked int64 label arrays (N_i,) of every split.
        declared: the number of declared classes, or None.
        what: where the labels come from, for the message.
    """
    largest = max((int(y.max()) for y in labels if y.size), default=0)
    if declared is not None:
        if largest >= declared:
            raise LosslabError(
                f"{what}: label {largest} is out of range for the {declared} declared class "
                f"names (labels must lie in 0..{declared - 1})"
            )
        return declared
    samples = sum(y.size for y in labels)
    if largest + 1 > samples:
        raise LosslabError(
            f"{what}: the largest label is {largest}, i.e. {largest + 1} classes for "
            f"{samples} samples; relabel the classes 0..C-1 or pass num_classes= explicitly"
        )
    return largest + 1


def as_features(x: Any, what: str) -> np.ndarray:
    """Return ``x`` as a float32 array ``(N, ...)``, refusing NaN/inf and non-numeric data."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iufb":
        raise LosslabError(f"{what}: features must be numeric, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise LosslabError(f"{what}: features must be (N, ...) with N samples, got {arr.shape}")
    out = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(out)):
        bad = int(np.sum(~np.isfinite(out)))
        raise LosslabError(
            f"{what}: {bad} feature values are NaN or infinite (or overflow float32); "
            "clean or impute them before loading"
        )
    return out


def validate(ds: Dataset) -> Dataset:
    """Check and normalise a freshly loaded dataset; raise LosslabError on any defect.

    Features become float32 and finite, labels int64 in ``[0, C)``, every x/y pair has
    the same length, all splits share the sample shape, and ``class_names`` has C
    entries. A dev split is checked when the source supplies one.
    """
    name = ds.name
    if not isinstance(ds.num_classes, int | np.integer) or ds.num_classes < 2:
        raise LosslabError(f"{name}: num_classes must be an integer >= 2, got {ds.num_classes}")
    c = int(ds.num_classes)
    out: dict[str, Any] = {}
    splits = ("train", "dev", "test") if ds.x_dev is not None else ("train", "test")
    for split in splits:
        x = as_features(getattr(ds, f"x_{split}"), f"{name} x_{split}")
        y = as_labels(getattr(ds, f"y_{split}"), c, f"{name} y_{split}")
        if len(x) != len(y):
            raise LosslabError(
                f"{name}: x_{split} has {len(x)} samples but y_{split} has {len(y)}; "
                "features and labels must have one row per sample"
            )
        if len(x) == 0:
            raise LosslabError(f"{name}: the {split} split is empty")
        out[f"x_{split}"], out[f"y_{split}"] = x, y
        coarse = getattr(ds, f"coarse_{split}")
        if coarse is not None:
            n_coarse = len(ds.metadata.get("coarse_class_names", [])) or None
            coarse = as_labels(coarse, n_coarse, f"{name} coarse_{split}")
            if len(coarse) != len(y):
                raise LosslabError(f"{name}: coarse_{split} and y_{split} differ in length")
            out[f"coarse_{split}"] = coarse
    for split in splits[1:]:
        if out["x_train"].shape[1:] != out[f"x_{split}"].shape[1:]:
            raise LosslabError(
                f"{name}: train samples have shape {out['x_train'].shape[1:]} but {split} "
                f"samples {out[f'x_{split}'].shape[1:]}"
            )
    names = [str(n) for n in ds.class_names]
    if len(names) != c:
        raise LosslabError(f"{name}: {len(names)} class names given for {c} classes")
    for key, value in out.items():
        setattr(ds, key, value)
    ds.num_classes = c
    ds.class_names = names
    return ds
