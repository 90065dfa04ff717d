"""The user's own data: an NPZ file with ``x``/``y`` arrays or a CSV file with a label column.

::

    load_dataset("arrays", path="mine.npz")                       # x, y [, x_test, y_test]
    load_dataset("arrays", path="mine.csv", label_column="class")  # header row optional
    load_dataset("arrays", path="train.csv", test_path="test.csv")

Without a test set, a stratified ``test_fraction`` (default 0.25) of the samples is held
out, drawn from the ``seed``. NPZ files are read with ``allow_pickle=False``: object
arrays are refused, nothing in the file is executed.
"""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from losslab.checks import check_real
from losslab.data.dataset import Dataset, as_features, as_labels, infer_num_classes
from losslab.data.download import sha256_bytes
from losslab.data.splits import stratified_split
from losslab.errors import LosslabError


def _resolve(path: str | os.PathLike, root: str | os.PathLike | None) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and root is not None:
        p = Path(root).expanduser() / p
    if not p.is_file():
        raise LosslabError(f"arrays: file {p} does not exist; pass path= to an .npz or .csv file")
    return p


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an NPZ file (``x`` and ``y`` required), read without pickle."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as err:
        raise LosslabError(
            f"{path}: holds object arrays, which are refused ({err}); save plain numeric "
            "arrays with np.savez(path, x=..., y=...)"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise LosslabError(f"{path}: not a readable NPZ file ({err})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise LosslabError(
            f"{path}: the NPZ file has keys {sorted(arrays)} but needs 'x' and 'y' "
            "(optionally 'x_test' and 'y_test'); save it with np.savez(path, x=..., y=...)"
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise LosslabError(f"{path}: give both 'x_test' and 'y_test' or neither")
    return arrays


def read_csv(
    path: Path, label_column: str | int | None = None, delimiter: str = ","
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Features ``(N, D)`` and labels ``(N,)`` of a CSV file, and its header if it has one.

    The first row is a header when any of its cells is not a number. ``label_column`` is
    a header name or a column index; by default the column named ``"label"``, else the
    last column.
    """
    with open(path, newline="") as handle:
        rows = [r for r in csv.reader(handle, delimiter=delimiter) if r]
    if not rows:
        raise LosslabError(f"{path}: the CSV file is empty")
    header = None
    if not all(_is_number(cell) for cell in rows[0]):
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    width = len(header) if header else len(rows[0]) if rows else 0
    if not rows or width < 2:
        raise LosslabError(f"{path}: need at least one data row and two columns (x, label)")
    col = _label_index(path, header, width, label_column)
    try:
        table = np.array([[float(cell) for cell in row] for row in rows], dtype=np.float64)
    except ValueError:
        line = next(i for i, r in enumerate(rows) if not all(map(_is_number, r)))
        line += 2 if header else 1
        raise LosslabError(f"{path}: line {line} holds a cell that is not a number") from None
    if table.ndim != 2 or table.shape[1] != width:
        raise LosslabError(f"{path}: rows have different numbers of columns (expected {width})")
    labels = table[:, col]
    features = np.delete(table, col, axis=1)
    return features, as_labels(labels, None, f"{path} column {col}"), header


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _label_index(path: Path, header: list[str] | None, width: int, label_column: Any) -> int:
    if label_column is None:
        return header.index("label") if header and "label" in header else width - 1
    if isinstance(label_column, int) and not isinstance(label_column, bool):
        if not -width <= label_column < width:
            raise LosslabError(f"{path}: label_column {label_column} outside 0..{width - 1}")
        return label_column % width
    if header is None or label_column not in header:
        raise LosslabError(
            f"{path}: no column named {label_column!r}"
            + (f"; columns: {', '.join(header)}" if header else " (the file has no header row)")
        )
    return header.index(label_column)


def _read(
    path: Path, label_column: Any, delimiter: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(x, y, x_test, y_test, class_names) of a .npz or delimited text file."""
    if path.suffix.lower() == ".npz":
        arrays = read_npz(path)
        return (
            arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"),
            arrays.get("class_names"),
        )  # fmt: skip
    x, y, _ = read_csv(path, label_column, delimiter)
    return x, y, None, None, None


def load_arrays(
    root: str | os.PathLike | None,
    rng: np.random.Generator,
    *,
    path: str | os.PathLike | None = None,
    test_path: str | os.PathLike | None = None,
    label_column: str | int | None = None,
    delimiter: str = ",",
    test_fraction: float = 0.25,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
) -> Dataset:
    """Load the user's NPZ or CSV data (file type from the suffix: ``.npz``, else CSV).

    Args:
        path: the data file (relative paths are taken under ``root`` when given).
        test_path: an optional second file holding the test set (same format).
        label_column: CSV only: header name or index of the label column (default
            ``"label"`` if present, else the last column).
        delimiter: CSV only: the field separator (default ``","``).
        test_fraction: share held out as a stratified test set when the data has none.
        num_classes: C (default: the number of declared class names, else the largest
            label + 1, refused when that is more classes than samples).
        class_names: C names (default: an NPZ's ``class_names`` array, else "0".."C-1").

    Shapes: NPZ ``x`` may be ``(N, ...)`` (e.g. images); CSV features are ``(N, D)``.
    """
    if path is None:
        raise LosslabError("the arrays dataset needs path= to an .npz or .csv file")
    file = _resolve(path, root)
    files = [file]
    x, y, x_test, y_test, names = _read(file, label_column, delimiter)
    if test_path is not None:
        if x_test is not None:
            raise LosslabError(f"{file} already holds x_test/y_test; drop test_path=")
        files.append(_resolve(test_path, root))
        x_test, y_test, *_ = _read(files[1], label_column, delimiter)
    x, y = as_features(x, f"{file} x"), as_labels(y, num_classes, f"{file} y")
    if len(x) != len(y):
        raise LosslabError(
            f"{file}: x has {len(x)} samples but y has {len(y)}; one label per sample is needed"
        )
    split: dict[str, Any] = {"test": "given"}
    if x_test is None:
        fraction = check_real("test_fraction", test_fraction, 0.0, 1.0, high_open=True)
        if fraction == 0:
            raise LosslabError(f"{file} has no test set: give test_path= or test_fraction > 0")
        keep, held = stratified_split(y, fraction, rng)
        x, y, x_test, y_test = x[keep], y[keep], x[held], y[held]
        split = {
            "test": "stratified split drawn from the 'data_source' stream",
            "fraction": fraction,
        }
    y_test = as_labels(y_test, num_classes, f"{files[-1]} y_test")
    if class_names is None and names is not None:
        class_names = [str(n) for n in names.tolist()]
    if num_classes is None:
        num_classes = infer_num_classes(
            [y, y_test], None if class_names is None else len(class_names), str(file)
        )
    return Dataset.loaded(
        "arrays",
        (x, y),
        (x_test, y_test),
        num_classes,
        class_names=class_names,
        metadata={
            "source": f"user arrays from {file.name}",
            "files": [str(f) for f in files],
            "sha256": {str(f): sha256_bytes(f.read_bytes()) for f in files},
            **split,
        },
    )
