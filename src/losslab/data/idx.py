"""MNIST and Fashion-MNIST from their IDX files (raw or gzipped).

IDX layout (LeCun): two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), a byte with the number of dimensions d, then d
big-endian uint32 sizes and the big-endian data. Gzip is detected from the content
(bytes 1f 8b), not from the file name.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from losslab.data.dataset import Dataset
from losslab.data.download import RemoteFile, sha256_bytes
from losslab.data.locate import FileSpec, locate
from losslab.errors import LosslabError

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
    """Decode IDX bytes (gzipped or raw) into an array of the declared shape.

    Raises LosslabError for a bad gzip stream, a wrong magic number, an unknown type
    byte, or a payload whose size differs from the header's (truncated or padded file).
    """
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise LosslabError(
                f"{what}: corrupted gzip stream ({err}); fetch the file again"
            ) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise LosslabError(
            f"{what}: not an IDX file (magic bytes {data[:4].hex() or 'missing'}; expected "
            "00 00 <type> <ndim>); is this really an MNIST-format file?"
        )
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise LosslabError(f"{what}: IDX header is truncated or declares 0 dimensions")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise LosslabError(
            f"{what}: IDX header declares shape {shape} ({expected} bytes) but the file holds "
            f"{len(data) - header} bytes of data; the file is truncated or corrupted"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def read_idx(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Read an IDX file; return ``(array, sha256 of the file's bytes)``."""
    raw = Path(path).read_bytes()
    return parse_idx(raw, str(path)), sha256_bytes(raw)


_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# SHA-256 of the official .gz files (the same digests tensorflow-datasets pins).
_SHA256 = {
    "fashion_mnist": {
        "train-images-idx3-ubyte": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        "train-labels-idx1-ubyte": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        "t10k-images-idx3-ubyte": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        "t10k-labels-idx1-ubyte": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    },
    "mnist": {
        "train-images-idx3-ubyte": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        "train-labels-idx1-ubyte": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        "t10k-images-idx3-ubyte": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        "t10k-labels-idx1-ubyte": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    },
}

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

_LAYOUT: dict[str, dict[str, Any]] = {
    "fashion_mnist": {
        "subdirs": ("fashion_mnist", "fashion-mnist", "FashionMNIST/raw"),
        "system": ("/usr/share/datasets/fashion-mnist",),
        "urls": (_FASHION_URL,),
        "source": "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), IDX files",
        "how_to": "On Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
        "(installs the files into /usr/share/datasets/fashion-mnist).",
    },
    "mnist": {
        "subdirs": ("mnist", "MNIST/raw"),
        "system": ("/usr/share/datasets/mnist",),
        "urls": _MNIST_URLS,
        "source": "MNIST (LeCun, Cortes & Burges), IDX files",
        "how_to": "MNIST's original site is http://yann.lecun.com/exdb/mnist/.",
    },
}


def _specs(name: str) -> list[FileSpec]:
    specs = []
    for base in _FILES + _TEST_FILES:
        remote = RemoteFile(
            filename=base + ".gz",
            urls=tuple(u + base + ".gz" for u in _LAYOUT[name]["urls"]),
            sha256=_SHA256[name][base],
        )
        specs.append(FileSpec(alternatives=(base + ".gz", base), remote=remote))
    return specs


def _load_idx_dataset(name: str, root: str | os.PathLike | None, download: bool) -> Dataset:
    layout = _LAYOUT[name]
    paths = locate(
        name,
        _specs(name),
        root,
        layout["subdirs"],
        layout["system"],
        layout["how_to"],
        allow_download=download,
    )
    arrays, digests = [], {}
    for path in paths:
        array, digest = read_idx(path)
        arrays.append(array)
        digests[str(path)] = digest
    x_train, y_train, x_test, y_test = arrays
    for images, what in ((x_train, paths[0]), (x_test, paths[2])):
        if images.ndim != 3:
            raise LosslabError(f"{what}: expected images (N, H, W), got shape {images.shape}")
    for labels, what in ((y_train, paths[1]), (y_test, paths[3])):
        if labels.ndim != 1:
            raise LosslabError(f"{what}: expected labels (N,), got shape {labels.shape}")
    class_names = FASHION_CLASSES if name == "fashion_mnist" else [str(d) for d in range(10)]
    return Dataset.loaded(
        name,
        (np.divide(x_train, 255, dtype=np.float32), y_train),
        (np.divide(x_test, 255, dtype=np.float32), y_test),
        10,
        class_names=class_names,
        metadata={
            "source": layout["source"],
            "files": [str(p) for p in paths],
            "sha256": digests,
            "scaling": "pixel / 255, in [0, 1]",
        },
    )


def load_fashion_mnist(
    root: str | os.PathLike | None, rng: np.random.Generator, *, download: bool = True
) -> Dataset:
    """Fashion-MNIST: 60000 train / 10000 test grey 28x28 images, 10 classes.

    Pixels are scaled to [0, 1]; images are ``(N, 28, 28)``. Files are looked for as in
    :mod:`losslab.data.locate` (also ``/usr/share/datasets/fashion-mnist`` from the Debian
    package ``dataset-fashion-mnist``) and downloaded when missing and ``download=True``.
    ``rng`` is unused: the split is the official one.
    """
    return _load_idx_dataset("fashion_mnist", root, download)


def load_mnist(
    root: str | os.PathLike | None, rng: np.random.Generator, *, download: bool = True
) -> Dataset:
    """MNIST: 60000 train / 10000 test grey 28x28 digit images, 10 classes.

    Pixels are scaled to [0, 1]; images are ``(N, 28, 28)``; the split is the official one.
    """
    return _load_idx_dataset("mnist", root, download)
