"""What a dataset will look like, without loading it: sizes, sample shape, classes, and
whether its files are on this machine.

A dry run plans and estimates a study from this (``losslab run --dry-run``): the sizes of
the published sets are fixed (MNIST 60000/10000, CIFAR 50000/10000, ...), the toy sets' are
their options, and the pipeline's dev split moves exactly ``round(dev_fraction * N)``
samples (:func:`~losslab.data.splits.stratified_split`). Files are looked for where
:func:`~losslab.data.load_dataset` would look, but never downloaded. Sources without a
rule here (the user's ``arrays`` files, MNIST-1D with generator options) are loaded.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from losslab.errors import LosslabError
from losslab.registry import resolve


@dataclass(frozen=True)
class DatasetInfo:
    """The shape of a prepared dataset.

    Attributes:
        name: registry name.
        n_train, n_dev, n_test: samples per split after the dev split (``n_dev`` 0: none).
        input_shape: one sample's shape after ``flatten``, e.g. ``(2,)`` or ``(3, 32, 32)``.
        num_classes: C.
        missing: None when the data is here (or needs no files); else why it is not (the
            data layer's message: the files, the places searched, the command that gets
            them).
    """

    name: str
    n_train: int
    n_dev: int
    n_test: int
    input_shape: tuple[int, ...]
    num_classes: int
    missing: str | None = None


# The scikit-learn digits: 1797 8x8 images, 10 classes.
_DIGITS_SAMPLES = 1797
# MNIST-1D as published (Greydanus & Kobak 2024): 4000 train / 1000 test signals of 40.
_MNIST1D = (4000, 1000, (40,), 10)


def _loader_default(loader: Callable[..., Any], name: str) -> Any:
    return inspect.signature(loader).parameters[name].default


def _toy(key: str, options: dict[str, Any]) -> tuple[int, int, tuple[int, ...], int, None]:
    from losslab.data import DATASETS

    def option(name: str) -> int:
        return int(options.get(name, _loader_default(DATASETS[key], name)))

    return option("n_train"), option("n_test"), (2,), option("num_classes"), None


def _digits(options: dict[str, Any]) -> tuple[int, int, tuple[int, ...], int, None]:
    from losslab.data import DATASETS

    fraction = float(options.get("test_fraction",
                                 _loader_default(DATASETS["digits"], "test_fraction")))
    n_test = int(round(fraction * _DIGITS_SAMPLES))
    return _DIGITS_SAMPLES - n_test, n_test, (8, 8), 10, None


def _idx(key: str, root: Any) -> tuple[int, int, tuple[int, ...], int, str | None]:
    from losslab.data import idx

    layout = idx._LAYOUT[key]
    missing = _missing(key, idx._specs(key), root, layout["subdirs"], layout["system"],
                       layout["how_to"])
    return 60000, 10000, (28, 28), 10, missing


def _cifar(key: str, root: Any) -> tuple[int, int, tuple[int, ...], int, str | None]:
    from losslab.data import cifar
    from losslab.data.locate import FileSpec

    info = cifar._CIFAR[key]
    spec = FileSpec(alternatives=(info["folder"], info["tarball"]))
    how_to = (f"get https://www.cs.toronto.edu/~kriz/{info['tarball']}, then unpack it or "
              "leave the tarball itself in that directory")
    missing = _missing(key, [spec], root, info["subdirs"], (), how_to)
    return 50000, 10000, (3, 32, 32), int(info["num_classes"]), missing


def _missing(key: str, specs: list[Any], root: Any, subdirs: Any, system: Any,
             how_to: str) -> str | None:
    from losslab.data import locate

    searched = locate.candidate_dirs(root, subdirs, system)
    if any(locate._resolve(d, specs) is not None for d in searched):
        return None
    return locate._missing_message(key, specs, searched, how_to,
                                   "nothing is downloaded before the real run")


def describe_dataset(name: str, root: str | os.PathLike | None = None, *,
                     dev_fraction: float = 0.0, flatten: bool = False,
                     **options: Any) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``load_dataset(name, root, **options)``, mostly without
    loading it.

    Args:
        name: a key of :data:`~losslab.data.DATASETS`.
        root, dev_fraction, flatten, **options: as for :func:`~losslab.data.load_dataset`
            (seed, noise and standardisation change no size and are ignored).

    Returns:
        its sizes and shapes; ``missing`` says when the files are absent (nothing is
        downloaded). Bad options of a source loaded here raise
        :class:`~losslab.errors.LosslabError` as loading does.
    """
    from losslab.data import DATASETS, FILELESS, load_dataset

    key, _ = resolve(DATASETS, name, "dataset")
    source = {k: v for k, v in options.items() if k not in _PIPELINE_OPTIONS}
    if key in ("checkerboard", "spirals", "random_labels"):
        n_train, n_test, shape, classes, missing = _toy(key, source)
    elif key == "digits":
        n_train, n_test, shape, classes, missing = _digits(source)
    elif key == "mnist1d" and all(v is None for v in source.values()):
        # A study resolves every loader default (generator_seed=None): the published data.
        n_train, n_test, shape, classes = _MNIST1D
        missing = None
    elif key in ("mnist", "fashion_mnist"):
        n_train, n_test, shape, classes, missing = _idx(key, root)
    elif key in ("cifar10", "cifar100"):
        n_train, n_test, shape, classes, missing = _cifar(key, root)
    else:
        if key not in FILELESS and "download" in inspect.signature(DATASETS[key]).parameters:
            source["download"] = False
        data = load_dataset(key, root, dev_fraction=dev_fraction, flatten=flatten, **source)
        n_dev = 0 if data.y_dev is None else len(data.y_dev)
        return DatasetInfo(key, len(data.y_train), n_dev, len(data.y_test),
                           tuple(data.input_shape), data.num_classes)
    n_dev = int(round(float(dev_fraction) * n_train))
    if dev_fraction and (n_dev == 0 or n_dev == n_train):
        raise LosslabError(
            f"dev_fraction={dev_fraction} of {n_train} training samples leaves an empty "
            "train or dev set; choose another fraction"
        )
    if flatten:
        size = 1
        for d in shape:
            size *= d
        shape = (size,)
    return DatasetInfo(key, n_train - n_dev, n_dev, n_test, shape, classes, missing)


# load_dataset's own arguments: the pipeline's steps, not the source's options.
_PIPELINE_OPTIONS = ("seed", "standardize", "label_noise_rate", "label_noise_kind",
                     "input_noise_eps", "noise_test", "download")
