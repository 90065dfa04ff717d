"""CIFAR-10 and CIFAR-100 from the official python pickle batches, loaded without executing code.

A pickle can call any importable function while it loads; :class:`DataOnlyUnpickler`
therefore resolves only NumPy's array-rebuilding helpers (``_reconstruct``,
``_frombuffer``, ``ndarray``, ``dtype``, and ``_codecs.encode`` restricted to
``(str, "latin1")``, which Python 3 protocol-2 pickles use for raw bytes). Plain
containers, numbers, str and bytes need no lookup at all. Any other global
(``os.system``, ``builtins.open``, ``eval``, ...) is refused with a LosslabError
*before* it is called, and object arrays are refused after loading.

Files are read from ``cifar-10-batches-py/`` (``cifar-100-python/``) or straight out of
the official tarball ``cifar-10-python.tar.gz`` (``cifar-100-python.tar.gz``) without
extracting it.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from losslab.data.dataset import Dataset
from losslab.data.download import RemoteFile, sha256_bytes
from losslab.data.locate import FileSpec, locate
from losslab.errors import LosslabError


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Python 3 pickles (protocol <= 2) store bytes as ``_codecs.encode(str, "latin1")``."""
    if not isinstance(text, str) or encoding != "latin1":
        raise LosslabError("refusing _codecs.encode with anything but (str, 'latin1')")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    # The helpers are looked up from NumPy's own reduce output, so both module spellings
    # (numpy.core before 2.0, numpy._core after) map to the installed function.
    reconstruct = np.zeros(1).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = frombuffer
    return allowed


_ALLOWED = _allowed_globals()


class DataOnlyUnpickler(pickle.Unpickler):
    """An unpickler that admits plain data and NumPy arrays and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        raise LosslabError(
            f"refusing to load a pickle that references {module}.{name}: only plain data "
            "and NumPy arrays are accepted (a pickle naming anything else could run code). "
            "Use the official CIFAR files"
        )


def load_pickle_data(data: bytes, what: str) -> Any:
    """Unpickle ``data`` with :class:`DataOnlyUnpickler`; refuse object arrays.

    Python 2 strings (CIFAR was pickled by Python 2) come back as bytes.
    """
    try:
        obj = DataOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except LosslabError as err:
        raise LosslabError(f"{what}: {err}") from None
    except Exception as err:  # noqa: BLE001 - any decoder failure means a corrupt file
        raise LosslabError(
            f"{what}: not a readable pickle ({type(err).__name__}: {err}); "
            "the file is truncated or corrupted, fetch it again"
        ) from None
    _refuse_objects(obj, what)
    return obj


def _refuse_objects(obj: Any, what: str) -> None:
    stack, seen = [obj], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:  # a pickle may hold cycles (a list that contains itself)
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:
                raise LosslabError(f"{what}: holds an object array; only numeric data is accepted")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _as_dict(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise LosslabError(f"{what}: expected a dict of arrays, got {type(obj).__name__}")
    return {_text(k): v for k, v in obj.items()}


# The official download location of both tarballs (Krizhevsky's page).
SOURCE = "https://www.cs.toronto.edu/~kriz/"

_CIFAR: dict[str, dict[str, Any]] = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "tarball": "cifar-10-python.tar.gz",
        "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test": ("test_batch",),
        "meta": "batches.meta",
        "label_key": "labels",
        "names_key": "label_names",
        "num_classes": 10,
        "sha256": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        "size": 170498071,
        "subdirs": ("cifar10", "cifar-10", "CIFAR10"),
        "source": "CIFAR-10 (Krizhevsky 2009), python pickle batches",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "tarball": "cifar-100-python.tar.gz",
        "train": ("train",),
        "test": ("test",),
        "meta": "meta",
        "label_key": "fine_labels",
        "names_key": "fine_label_names",
        "num_classes": 100,
        "sha256": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
        "size": 169001437,
        "subdirs": ("cifar100", "cifar-100", "CIFAR100"),
        "source": "CIFAR-100 (Krizhevsky 2009), python pickle batches",
    },
}


def _read_members(path: Path, info: dict[str, Any]) -> tuple[dict[str, bytes], dict[str, str]]:
    """The raw bytes of every needed member, from the folder or the tarball, with digests."""
    names = [*info["train"], *info["test"], info["meta"]]
    blobs: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    if path.is_dir():
        for member in names:
            file = path / member
            if not file.is_file():
                raise LosslabError(f"{path}: {member} is missing; the folder is incomplete")
            blobs[member] = file.read_bytes()
            digests[str(file)] = sha256_bytes(blobs[member])
        return blobs, digests
    raw = path.read_bytes()
    digests[str(path)] = sha256_bytes(raw)
    wanted = {f"{info['folder']}/{member}": member for member in names}
    try:
        # One pass over the members: seeking back in a gzip stream would decompress again.
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as tar:
            for entry in tar:
                handle = tar.extractfile(entry) if entry.name in wanted else None
                if handle is not None:
                    blobs[wanted[entry.name]] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise LosslabError(f"{path}: unreadable archive ({err}); fetch it again") from None
    missing = [name for name, member in wanted.items() if member not in blobs]
    if missing:
        raise LosslabError(f"{path}: the archive lacks {', '.join(missing)}")
    return blobs, digests


def _batch(blob: bytes, what: str, label_keys: tuple[str, ...]) -> list[np.ndarray]:
    batch = _as_dict(load_pickle_data(blob, what), what)
    data = batch.get("data")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        shape = getattr(data, "shape", type(data).__name__)
        raise LosslabError(f"{what}: 'data' must be a (N, 3072) uint8 array, got {shape}")
    out = [data.reshape(-1, 3, 32, 32)]
    for key in label_keys:
        if key not in batch:
            raise LosslabError(f"{what}: the batch has no {key!r} entry")
        labels = np.asarray(batch[key])
        if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
            raise LosslabError(
                f"{what}: {key!r} must hold {len(data)} integers, got {labels.shape} "
                f"of {labels.dtype}"
            )
        out.append(labels)
    return out


def _load_cifar(name: str, root: str | os.PathLike | None, download: bool) -> Dataset:
    info = _CIFAR[name]
    remote = RemoteFile(
        filename=info["tarball"],
        urls=(SOURCE + info["tarball"],),
        sha256=info["sha256"],
        size=info["size"],
    )
    (path,) = locate(
        name,
        [FileSpec(alternatives=(info["folder"], info["tarball"]), remote=remote)],
        root,
        info["subdirs"],
        how_to=f"Unpack {info['tarball']} or leave the tarball itself in that directory.",
        allow_download=download,
    )
    blobs, digests = _read_members(path, info)
    coarse = name == "cifar100"
    keys = (info["label_key"], "coarse_labels") if coarse else (info["label_key"],)
    splits = {}
    for split in ("train", "test"):
        parts = [_batch(blobs[m], f"{path}/{m}", keys) for m in info[split]]
        splits[split] = [np.concatenate(column) for column in zip(*parts, strict=True)]
    meta = _as_dict(load_pickle_data(blobs[info["meta"]], f"{path}/{info['meta']}"), "meta")
    class_names = [_text(n) for n in meta.get(info["names_key"], [])]
    if len(class_names) != info["num_classes"]:
        raise LosslabError(f"{path}: the meta file lacks {info['num_classes']} class names")
    metadata: dict[str, Any] = {
        "source": info["source"],
        "files": [str(path)],
        "sha256": digests,
        "scaling": "pixel / 255, in [0, 1]; images (N, 3, 32, 32), channels RGB",
    }
    if coarse:
        metadata["coarse_class_names"] = [_text(n) for n in meta.get("coarse_label_names", [])]
        if len(metadata["coarse_class_names"]) != 20:
            raise LosslabError(f"{path}: the meta file lacks the 20 coarse class names")
    return Dataset.loaded(
        name,
        (np.divide(splits["train"][0], 255, dtype=np.float32), splits["train"][1]),
        (np.divide(splits["test"][0], 255, dtype=np.float32), splits["test"][1]),
        info["num_classes"],
        class_names=class_names,
        coarse=(splits["train"][2], splits["test"][2]) if coarse else None,
        metadata=metadata,
    )


def load_cifar10(
    root: str | os.PathLike | None, rng: np.random.Generator, *, download: bool = True
) -> Dataset:
    """CIFAR-10: 50000 train / 10000 test colour 32x32 images ``(N, 3, 32, 32)``, 10 classes.

    Pixels scaled to [0, 1]; the split is the official one (``rng`` unused).
    """
    return _load_cifar("cifar10", root, download)


def load_cifar100(
    root: str | os.PathLike | None, rng: np.random.Generator, *, download: bool = True
) -> Dataset:
    """CIFAR-100: 50000 train / 10000 test colour 32x32 images, 100 fine classes.

    The 20 coarse (super-class) labels are kept in ``coarse_train`` / ``coarse_test`` and
    their names in ``metadata["coarse_class_names"]``.
    """
    return _load_cifar("cifar100", root, download)


def files_needed(name: str) -> str:
    """Where the files of ``name`` (``cifar10`` or ``cifar100``) go, in words that hold on
    every machine: the tarball or its unpacked folder, in ``$LOSSLAB_DATA/<name>/`` or
    ``~/.cache/losslab/<name>/`` (or the study's ``root``), and where it is downloaded from.
    """
    info = _CIFAR.get(name)
    if info is None:
        raise LosslabError(f"unknown CIFAR dataset {name!r}; choose one of {', '.join(_CIFAR)}")
    return (f"`{info['tarball']}` ({info['size'] / 1e6:.0f} MB) or its unpacked folder "
            f"`{info['folder']}/`, in `$LOSSLAB_DATA/{name}/` or `~/.cache/losslab/{name}/` "
            f"(or the dataset's `root`); a run fetches it from "
            f"{SOURCE}{info['tarball']} when online")
