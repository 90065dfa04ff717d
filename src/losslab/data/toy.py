"""The 2-D toy sets of Janocha & Czarnecki 2017, sec. 3: checkerboard, spirals, random labels.

All three live in the square [-1, 1]^2 (spirals up to their jitter), have 4 classes and
800 train / 800 test points by default, and are drawn from the ``rng`` passed in (the
``"data_source"`` stream of the ``seed`` given to ``load_dataset``). Features are ``(N, 2)``
float32.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from losslab.data.dataset import Dataset
from losslab.errors import LosslabError


def _check_sizes(n_train: int, n_test: int, num_classes: int) -> None:
    for what, n in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(n, int) or n < 1:
            raise LosslabError(f"{what} must be a positive integer, got {n!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise LosslabError(f"num_classes must be an integer >= 2, got {num_classes!r}")


def checkerboard_labels(x: np.ndarray, grid: int = 8, num_classes: int = 4) -> np.ndarray:
    """Class of each point of the checkerboard: square ``(i, j)`` gets ``(i + j) mod C``.

    ``[-1, 1]^2`` is cut into ``grid x grid`` equal squares; ``i = floor((x0 + 1) / 2 * grid)``
    indexes the first coordinate, ``j`` the second (the right/top edge belongs to the last
    square). This is our reading of the seed's "cyclic class assignment": along every row
    and column the classes cycle 0, 1, 2, 3, 0, ...

    Args:
        x: points ``(N, 2)`` in ``[-1, 1]^2``.
        grid: squares per side (default 8, i.e. 64 squares).
        num_classes: C (default 4).

    Returns:
        int64 labels ``(N,)``.
    """
    cells = np.clip(np.floor((np.asarray(x) + 1.0) / 2.0 * grid), 0, grid - 1).astype(np.int64)
    return (cells[:, 0] + cells[:, 1]) % num_classes


def _toy(name: str, sets: list[np.ndarray], c: int, params: dict[str, Any]) -> Dataset:
    """The dataset of ``sets`` = [x_train, y_train, x_test, y_test]."""
    x_tr, y_tr, x_te, y_te = sets
    return Dataset.loaded(
        name, (x_tr, y_tr), (x_te, y_te), c,
        metadata={"source": f"generated {name} (Janocha & Czarnecki 2017, sec. 3)", **params},
    )  # fmt: skip


def load_checkerboard(
    root: str | os.PathLike | None,
    rng: np.random.Generator,
    *,
    n_train: int = 800,
    n_test: int = 800,
    grid: int = 8,
    num_classes: int = 4,
) -> Dataset:
    """Checkerboard: points uniform on ``[-1, 1]^2``, labelled by :func:`checkerboard_labels`.

    Args:
        n_train, n_test: sample counts (default 800 / 800).
        grid: squares per side (default 8).
        num_classes: C (default 4).
    """
    _check_sizes(n_train, n_test, num_classes)
    if not isinstance(grid, int) or grid < 1:
        raise LosslabError(f"grid must be a positive integer, got {grid!r}")
    x_tr = rng.uniform(-1.0, 1.0, size=(n_train, 2))
    x_te = rng.uniform(-1.0, 1.0, size=(n_test, 2))
    y_tr = checkerboard_labels(x_tr, grid, num_classes)
    y_te = checkerboard_labels(x_te, grid, num_classes)
    params = {"grid": grid, "n_train": n_train, "n_test": n_test}
    return _toy("checkerboard", [x_tr, y_tr, x_te, y_te], num_classes, params)


def spiral_points(
    labels: np.ndarray,
    rng: np.random.Generator,
    num_classes: int = 4,
    turns: float = 1.5,
    noise: float = 0.02,
    r_min: float = 0.1,
) -> np.ndarray:
    """Points on C spiral arms, arm k rotated by ``2 pi k / C`` (a quarter-turn for C = 4).

    For each point, ``t ~ U(0, 1)``, radius ``r = r_min + (1 - r_min) t`` and angle
    ``theta = 2 pi turns t + 2 pi k / C``; the point is ``r (cos theta, sin theta)`` plus
    Gaussian noise of std ``noise`` on each coordinate. Neighbouring arms are
    ``(1 - r_min) / (C turns)`` apart along a ray (0.15 with the defaults).

    Args:
        labels: arm index of each point ``(N,)``.
        rng: NumPy Generator.
        num_classes: C, the number of arms.
        turns: full turns of each arm (default 1.5).
        noise: std of the Gaussian jitter (default 0.02).
        r_min: inner radius where the arms start (default 0.1).

    Returns:
        float64 points ``(N, 2)``.
    """
    t = rng.uniform(0.0, 1.0, size=len(labels))
    radius = r_min + (1.0 - r_min) * t
    theta = 2.0 * np.pi * turns * t + 2.0 * np.pi * labels / num_classes
    points = radius[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return points + noise * rng.standard_normal(points.shape)


def load_spirals(
    root: str | os.PathLike | None,
    rng: np.random.Generator,
    *,
    n_train: int = 800,
    n_test: int = 800,
    num_classes: int = 4,
    turns: float = 1.5,
    noise: float = 0.02,
) -> Dataset:
    """Spirals: the 4-class generalisation of two spirals (arms a quarter-turn apart).

    Classes are balanced (``n // C`` points per arm, the remainder spread over the first
    arms) and shuffled; geometry as in :func:`spiral_points`.
    """
    _check_sizes(n_train, n_test, num_classes)
    if turns <= 0 or noise < 0:
        raise LosslabError(f"spirals need turns > 0 and noise >= 0, got {turns}, {noise}")
    sets: list[np.ndarray] = []
    for n in (n_train, n_test):
        y = rng.permutation(np.arange(n) % num_classes)
        sets += [spiral_points(y, rng, num_classes, turns, noise), y]
    params = {"turns": turns, "noise": noise, "n_train": n_train, "n_test": n_test}
    return _toy("spirals", sets, num_classes, params)


def load_random_labels(
    root: str | os.PathLike | None,
    rng: np.random.Generator,
    *,
    n_train: int = 800,
    n_test: int = 800,
    num_classes: int = 4,
) -> Dataset:
    """Random labels: points uniform on ``[-1, 1]^2`` with labels uniform on 0..C-1.

    Labels are independent of the points, so the only way to fit the training set is to
    memorise it (the seed's memorisation test); test accuracy is at chance, 1/C, by design.
    """
    _check_sizes(n_train, n_test, num_classes)
    sets: list[np.ndarray] = []
    for n in (n_train, n_test):
        sets += [rng.uniform(-1.0, 1.0, size=(n, 2)), rng.integers(0, num_classes, size=n)]
    params = {"n_train": n_train, "n_test": n_test}
    return _toy("random_labels", sets, num_classes, params)
