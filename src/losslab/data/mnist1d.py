"""MNIST-1D (Greydanus & Kobak, ICML 2024), generated offline by the mnist1d package itself.

``mnist1d.data.make_dataset(get_dataset_args())`` with the package's default arguments
(5000 samples, seed 42, train split 0.8, length 40) is the published frozen dataset:
4000 train / 1000 test signals of length 40, 10 classes. It is generated here rather than
downloaded. The generator seeds NumPy's and Python's *global* random state; both are
saved before the call and restored after it, so loading MNIST-1D leaves the caller's
random streams untouched.
"""

from __future__ import annotations

import os
import random
from functools import lru_cache
from typing import Any

import numpy as np

from losslab.data.dataset import Dataset
from losslab.errors import LosslabError


def generate_mnist1d(**overrides: Any) -> dict[str, Any]:
    """Call the package's ``make_dataset`` with its default args, updated by ``overrides``.

    Args:
        **overrides: keys of ``mnist1d.data.get_dataset_args()`` (``num_samples``, ``seed``,
            ``shuffle_seq``, ``iid_noise_scale``, ...); none gives the published dataset.

    Returns:
        the package's dict: ``x (N_train, L)``, ``y``, ``x_test``, ``y_test``, ``t``, ...
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args(as_dict=True)
    unknown = sorted(set(overrides) - set(args) - {"url"})
    if unknown:
        raise LosslabError(
            f"unknown mnist1d option(s) {unknown}; valid: {', '.join(sorted(set(args) - {'url'}))}"
        )
    args.update(overrides)
    view = get_dataset_args()
    view.__dict__.update(args)
    # The package seeds the global generators; the caller's state is put back afterwards.
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        return make_dataset(view)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)


@lru_cache(maxsize=1)
def _frozen_published() -> tuple[np.ndarray, ...]:
    data = generate_mnist1d()
    arrays = tuple(data[k] for k in ("x", "y", "x_test", "y_test"))
    for a in arrays:
        a.setflags(write=False)
    return arrays


def _published() -> dict[str, np.ndarray]:
    # Generating takes about a second; a study loads the same data for every cell.
    return dict(zip(("x", "y", "x_test", "y_test"), _frozen_published(), strict=True))


def load_mnist1d(
    root: str | os.PathLike | None,
    rng: np.random.Generator,
    *,
    generator_seed: int | None = None,
    **generator_args: Any,
) -> Dataset:
    """MNIST-1D: 4000 train / 1000 test float signals ``(N, 40)``, 10 classes.

    The split and the sample order are the package's (``rng`` is unused), so the
    reference protocol of Greydanus & Kobak (ICML 2024), batches taken in order
    (``bix = (step * 100) % 4000``), applies as is.

    Args:
        generator_seed: the package's own ``seed`` arg (default None: its 42). The
            ``seed`` of ``load_dataset`` only drives losslab's dev split and noise.
        **generator_args: other overrides of the package's dataset args (see
            :func:`generate_mnist1d`); leave all empty for the published data.
    """
    if generator_seed is not None:
        generator_args["seed"] = generator_seed
    data = generate_mnist1d(**generator_args) if generator_args else _published()
    return Dataset.loaded(
        "mnist1d",
        (data["x"], data["y"]),
        (data["x_test"], data["y_test"]),
        10,
        metadata={
            "source": "mnist1d package, make_dataset(get_dataset_args()) generated offline",
            "generator_args": dict(generator_args),
        },
    )
