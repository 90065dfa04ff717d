"""Datasets, train/dev/test splits, label noise and input noise (never imports torch).

::

    from losslab.data import load_dataset
    ds = load_dataset("fashion_mnist", dev_fraction=0.1, standardize=True, flatten=True,
                      label_noise_rate=0.2, seed=3)
    ds.x_train.shape, ds.x_dev.shape, ds.num_classes     # (54000, 784) (6000, 784) 10

``DATASETS`` maps each registry name to its source loader, a function
``loader(root, rng, **options) -> Dataset`` returning train and test arrays; adding an
entry registers a new source. :func:`load_dataset` runs every source through the same
pipeline: validation -> stratified dev split -> standardisation fitted on train ->
flatten -> input noise -> label noise, each random step with its own seeded stream.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from losslab.checks import check_real
from losslab.data.arrays import load_arrays
from losslab.data.cifar import load_cifar10, load_cifar100
from losslab.data.dataset import Dataset, validate
from losslab.data.digits import load_digits
from losslab.data.idx import load_fashion_mnist, load_mnist
from losslab.data.mnist1d import load_mnist1d
from losslab.data.noise import LABEL_NOISE_KINDS, input_noise, label_noise
from losslab.data.splits import (
    apply_standardizer,
    fit_standardizer,
    standardizer_metadata,
    stratified_split,
)
from losslab.data.toy import load_checkerboard, load_random_labels, load_spirals
from losslab.errors import LosslabError
from losslab.provenance import jsonable
from losslab.registry import build, resolve
from losslab.seeding import numpy_rng, stream_key

__all__ = [
    "DATASETS",
    "FALLBACK_TRAIN_DEFAULTS",
    "FILELESS",
    "TRAIN_DEFAULTS",
    "Dataset",
    "input_noise",
    "label_noise",
    "load_dataset",
    "stratified_split",
]

# The streams of :mod:`losslab.seeding` the pipeline draws from (recorded in the metadata
# as [seed, stream key], the SeedSequence entropy and spawn key).
_DATA_STREAMS = ("data_source", "data_split", "label_noise", "input_noise")

DATASETS: dict[str, Callable[..., Dataset]] = {
    "checkerboard": load_checkerboard,
    "spirals": load_spirals,
    "random_labels": load_random_labels,
    "digits": load_digits,
    "mnist1d": load_mnist1d,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "arrays": load_arrays,
}


# Per-dataset defaults of ``losslab train`` (MNIST-1D: Greydanus & Kobak, ICML 2024).
# steps ~ 5 epochs for the 60k-image sets; mnist1d follows the paper: Adam 1e-2, batch 100,
# 6000 steps, batches in order, PyTorch's default init.
_IMAGE_MLP: dict[str, Any] = {
    "model": "mlp",
    "hidden": [256],
    "lr": 1e-3,
    "batch_size": 100,
    "steps": 3000,
    "standardize": True,
}
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"model": "mlp", "hidden": [100], "lr": 1e-3, "batch_size": 100, "steps": 2000},
    "mnist1d": {
        "model": "mnist1d_cnn",
        "lr": 1e-2,
        "batch_size": 100,
        "steps": 6000,
        "shuffle": False,
        "init": "torch",
        "eval_every": 250,
    },
    "fashion_mnist": _IMAGE_MLP,
    "mnist": _IMAGE_MLP,
    "cifar10": {
        "model": "janocha_convnet",
        "lr": 1e-3,
        "batch_size": 100,
        "steps": 2000,
        "standardize": True,
    },
    "cifar100": {
        "model": "janocha_convnet",
        "lr": 1e-3,
        "batch_size": 100,
        "steps": 2000,
        "standardize": True,
    },
    "checkerboard": {
        "model": "mlp",
        "hidden": [200] * 3,
        "lr": 1e-3,
        "batch_size": 50,
        "steps": 3000,
    },
    "spirals": {"model": "mlp", "hidden": [200] * 3, "lr": 1e-3, "batch_size": 50, "steps": 3000},
    "random_labels": {
        "model": "mlp",
        "hidden": [200] * 3,
        "lr": 1e-3,
        "batch_size": 50,
        "steps": 3000,
    },
}
FALLBACK_TRAIN_DEFAULTS = {
    "model": "mlp",
    "hidden": [100],
    "lr": 1e-3,
    "batch_size": 100,
    "steps": 2000,
}

# Sources that generate or bundle their data and read no files: ``root`` means nothing to them.
FILELESS: frozenset[str] = frozenset(
    {"checkerboard", "spirals", "random_labels", "digits", "mnist1d"}
)


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    dev_fraction: float = 0.0,
    seed: int = 0,
    standardize: bool = False,
    flatten: bool = False,
    label_noise_rate: float = 0.0,
    label_noise_kind: str = "symmetric",
    input_noise_eps: float = 0.0,
    noise_test: bool = False,
    **source_options: Any,
) -> Dataset:
    """Load a registered dataset and prepare it: dev split, standardisation, flatten, noise.

    Steps, in order:

    1. the source loader reads or generates train/test (``seed``'s ``"data_source"`` stream
       draws the toy points and the digits/arrays test split); everything is validated
       (finite float32 features, int64 labels in ``[0, C)``, matching lengths);
    2. ``dev_fraction`` > 0 moves a stratified ``round(dev_fraction * N_train)`` samples
       from train to dev (``"data_split"`` stream);
    3. ``standardize=True``: ``(x - mean) / std`` with statistics fitted on the (post-split)
       train set only: per feature for vectors, one pair for grey images, per channel for
       colour images; applied to train, dev and test;
    4. ``flatten=True``: every feature array becomes ``(N, D)``, ``D = prod(input_shape)``;
    5. ``input_noise_eps`` > 0 adds N(0, eps I) (eps is the variance) to train features
       (Janocha sec. 3; ``"input_noise"`` stream);
    6. ``label_noise_rate`` > 0 flips exactly ``round(rate * N)`` train labels
       (``label_noise_kind`` ``"symmetric"`` or ``"pairflip"``; ``"label_noise"`` stream).

    Noise touches the training set only; ``noise_test=True`` applies it to dev and test
    as well (each set gets its own exact count). Coarse labels are never noised.

    Args:
        name: a key of :data:`DATASETS` (case-insensitive).
        root: directory searched first for data files (see :mod:`losslab.data.locate`).
        dev_fraction: share of train moved to dev, in [0, 1) (default 0: ``x_dev`` is None).
        seed: non-negative integer seeding every random step (default 0).
        standardize: fit and apply standardisation (default False).
        flatten: reshape samples to vectors (default False).
        label_noise_rate: share of labels flipped, in [0, 1) (default 0).
        label_noise_kind: ``"symmetric"`` (default) or ``"pairflip"``.
        input_noise_eps: variance of the Gaussian input noise, >= 0 (default 0).
        noise_test: also noise dev and test (default False).
        **source_options: the source's own options, e.g. ``n_train=`` (toy sets),
            ``test_fraction=`` (digits, arrays), ``path=`` (arrays), ``download=``
            (mnist, fashion_mnist, cifar10, cifar100).

    Returns:
        a :class:`Dataset`; ``metadata`` records the source, files and their SHA-256, the
        seed streams, and every transformation and noise applied.
    """
    key, _ = resolve(DATASETS, name, "dataset")
    dev_fraction = check_real("dev_fraction", dev_fraction, 0.0, 1.0, high_open=True)
    check_real("label_noise_rate", label_noise_rate, 0.0, 1.0, high_open=True)
    if label_noise_kind not in LABEL_NOISE_KINDS:
        raise LosslabError(
            f"unknown label_noise_kind {label_noise_kind!r}; "
            f"choose one of {', '.join(LABEL_NOISE_KINDS)}"
        )
    check_real("input noise eps", input_noise_eps, 0.0)
    ds = build(
        DATASETS, key, "dataset", root=root, rng=numpy_rng(seed, "data_source"), **source_options
    )
    if not isinstance(ds, Dataset):
        raise LosslabError(f"dataset loader {key!r} returned {type(ds).__name__}, not Dataset")
    ds.name = key
    ds = validate(ds)
    meta = ds.metadata
    meta.setdefault("files", [])
    meta.setdefault("sha256", {})
    meta.update(
        name=key,
        seed=int(seed),
        seed_streams={s: [int(seed), stream_key(s)] for s in _DATA_STREAMS},
        options={k: jsonable(v) for k, v in source_options.items()},
        root=None if root is None else str(root),
        dev_fraction=dev_fraction,
        input_shape=list(ds.input_shape),
    )
    if dev_fraction > 0:
        if ds.x_dev is not None:
            raise LosslabError(f"{key} already comes with a dev split; leave dev_fraction=0")
        _split_dev(ds, dev_fraction, seed)
    held = [s for s in ("dev", "test") if getattr(ds, f"x_{s}") is not None]
    if standardize:
        mean, std, mode = fit_standardizer(ds.x_train)
        for split in ("train", *held):
            setattr(ds, f"x_{split}", apply_standardizer(getattr(ds, f"x_{split}"), mean, std))
        meta["standardize"] = standardizer_metadata(mean, std, mode)
    else:
        meta["standardize"] = None
    if flatten:
        for split in ("train", *held):
            x = getattr(ds, f"x_{split}")
            setattr(ds, f"x_{split}", x.reshape(len(x), -1))
    meta["flatten"] = bool(flatten)
    noised = ["train", *held] if noise_test else ["train"]
    meta["input_noise"] = _apply_input_noise(ds, input_noise_eps, noised, seed)
    meta["label_noise"] = _apply_label_noise(ds, label_noise_rate, label_noise_kind, noised, seed)
    meta["sizes"] = {s: len(getattr(ds, f"y_{s}")) for s in ("train", *held)}
    return ds


def _split_dev(ds: Dataset, fraction: float, seed: int) -> None:
    keep, held = stratified_split(ds.y_train, fraction, numpy_rng(seed, "data_split"))
    if len(keep) == 0 or len(held) == 0:
        raise LosslabError(
            f"dev_fraction={fraction} of {len(ds.y_train)} training samples leaves an empty "
            "train or dev set; choose another fraction"
        )
    ds.x_dev, ds.y_dev = ds.x_train[held], ds.y_train[held]
    ds.x_train, ds.y_train = ds.x_train[keep], ds.y_train[keep]
    if ds.coarse_train is not None:
        ds.coarse_dev, ds.coarse_train = ds.coarse_train[held], ds.coarse_train[keep]


def _apply_input_noise(ds: Dataset, eps: float, splits: list[str], seed: int) -> dict | None:
    if float(eps) == 0:
        return None
    rng = numpy_rng(seed, "input_noise")
    for split in splits:
        setattr(ds, f"x_{split}", input_noise(getattr(ds, f"x_{split}"), eps, rng))
    return {"eps": float(eps), "eps_is": "variance (std = sqrt(eps))", "sets": splits}


def _apply_label_noise(
    ds: Dataset, rate: float, kind: str, splits: list[str], seed: int
) -> dict | None:
    if float(rate) == 0:
        return None
    rng = numpy_rng(seed, "label_noise")
    record: dict[str, Any] = {"rate": float(rate), "kind": kind, "sets": {}}
    for split in splits:
        clean = getattr(ds, f"y_{split}")
        noisy, matrix = label_noise(clean, rate, kind, rng, ds.num_classes)
        setattr(ds, f"y_{split}", noisy)
        record["sets"][split] = {
            "flipped": int(np.sum(noisy != clean)),
            "matrix": matrix.tolist(),
        }
    return record
