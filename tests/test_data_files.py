"""File-based sources: IDX, CIFAR pickles, NPZ/CSV arrays, file search and downloads.

Every test writes its own small files; nothing is downloaded (the network entry point
``losslab.data.download.open_url`` is replaced).
"""

from __future__ import annotations

import builtins
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from losslab.data import download, idx, load_dataset
from losslab.errors import LosslabError

# float32 unit roundoff: pixels are stored as the float32 quotient k / 255, correctly rounded.
U32 = 2.0**-24


@pytest.fixture(autouse=True)
def _isolated_search_path(tmp_path, monkeypatch):
    """No real data directory, cache or network is visible to these tests."""
    monkeypatch.setenv("LOSSLAB_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("mnist", "fashion_mnist"):
        monkeypatch.setitem(idx._LAYOUT[name], "system", (str(tmp_path / "system"),))

    def no_network(url, timeout=30.0):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(download, "open_url", no_network)


# --- IDX ----------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype("u1"): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.tobytes()


def write_mnist(directory: Path, gz: bool, n_train=12, n_test=5, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 6, 7), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 6, 7), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_raw_and_gzipped(tmp_path, gz):
    arrays = write_mnist(tmp_path / "data", gz)
    ds = load_dataset("mnist", root=tmp_path / "data")
    # one float32 rounding of k / 255 (u32 relative) against float64's (u64): rtol 2 u32
    expected = arrays["train-images-idx3-ubyte"] / 255.0
    np.testing.assert_allclose(ds.x_train, expected, rtol=2 * U32, atol=0)
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert ds.input_shape == (6, 7) and ds.x_train.dtype == np.float32
    files = ds.metadata["files"]
    assert len(files) == 4 and all(f.endswith(".gz") == gz for f in files)
    train_file = Path(files[0])
    assert ds.metadata["sha256"][files[0]] == hashlib.sha256(train_file.read_bytes()).hexdigest()


def test_fashion_found_in_subdirectory_of_losslab_data(tmp_path):
    arrays = write_mnist(tmp_path / "env" / "fashion-mnist", gz=True)
    ds = load_dataset("fashion_mnist", flatten=True)
    assert ds.x_train.shape == (12, 42)
    assert ds.class_names[9] == "Ankle boot"
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte"])


def test_root_is_searched_before_losslab_data(tmp_path):
    write_mnist(tmp_path / "env" / "mnist", gz=False, n_train=12)
    write_mnist(tmp_path / "mine", gz=False, n_train=20)
    assert len(load_dataset("mnist", root=tmp_path / "mine").y_train) == 20
    assert len(load_dataset("mnist").y_train) == 12


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (lambda b: b"\x08\x03" + b[2:], "not an IDX file"),
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"\x00", "truncated or corrupted"),
        (lambda b: gzip.compress(b)[:-20], "gzip"),
        (lambda b: b[:6], "truncated"),
    ],
)
def test_corrupted_idx_refused(tmp_path, corrupt, match):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(LosslabError, match=match):
        load_dataset("mnist", root=tmp_path)


def test_idx_labels_out_of_range_and_length_mismatch(tmp_path):
    write_mnist(tmp_path, gz=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.full(12, 10, dtype=np.uint8)))
    with pytest.raises(LosslabError, match="out of range"):
        load_dataset("mnist", root=tmp_path)
    labels.write_bytes(idx_bytes(np.zeros(11, dtype=np.uint8)))
    with pytest.raises(LosslabError, match="12 samples but y_train has 11"):
        load_dataset("mnist", root=tmp_path)


def test_missing_files_offline_message(tmp_path):
    with pytest.raises(LosslabError) as info:
        load_dataset("fashion_mnist", root=tmp_path / "nowhere")
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz or train-images-idx3-ubyte" in message
    assert "t10k-labels-idx1-ubyte" in message
    assert str(tmp_path / "nowhere") in message
    assert str(tmp_path / "env" / "fashion-mnist") in message
    assert str(tmp_path / "cache" / "losslab" / "fashion_mnist") in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "offline" in message and "network disabled" in message
    assert not (tmp_path / "nowhere").exists()  # nothing is created when offline


def test_download_false_does_not_touch_the_network(tmp_path, monkeypatch):
    def fail(url, timeout=30.0):
        raise AssertionError("network used")

    monkeypatch.setattr(download, "open_url", fail)
    with pytest.raises(LosslabError, match="download=False"):
        load_dataset("mnist", download=False)


class _Response(io.BytesIO):
    headers: dict = {}


def _serve(files: dict[str, bytes], seen: list):
    def open_url(url, timeout=30.0):
        seen.append(url)
        return _Response(files[url.rsplit("/", 1)[1]])

    return open_url


def test_download_checks_sha256_and_loads(tmp_path, monkeypatch):
    arrays = write_mnist(tmp_path / "src", gz=True, n_train=8)
    files = {p.name: p.read_bytes() for p in (tmp_path / "src").iterdir()}
    digests = {n[:-3]: hashlib.sha256(b).hexdigest() for n, b in files.items()}
    monkeypatch.setitem(idx._SHA256, "mnist", digests)
    seen: list[str] = []
    monkeypatch.setattr(download, "open_url", _serve(files, seen))
    ds = load_dataset("mnist", root=tmp_path / "root")
    assert len(seen) == 4 and all(u.startswith("https://") for u in seen)
    assert (tmp_path / "root" / "mnist" / "train-images-idx3-ubyte.gz").exists()
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte"])


def test_download_with_wrong_checksum_is_discarded(tmp_path, monkeypatch):
    write_mnist(tmp_path / "src", gz=True)
    files = {p.name: p.read_bytes() for p in (tmp_path / "src").iterdir()}
    monkeypatch.setattr(download, "open_url", _serve(files, []))
    with pytest.raises(LosslabError, match="SHA-256"):
        load_dataset("mnist", root=tmp_path / "root")
    assert not list((tmp_path / "root").rglob("*idx*"))


# --- CIFAR ---------------------------------------------------------------------------------


def _py2_like(obj):
    """Keys and strings as bytes, as in the official (Python 2) CIFAR pickles."""
    if isinstance(obj, dict):
        return {k.encode(): _py2_like(v) for k, v in obj.items()}
    if isinstance(obj, list) and obj and isinstance(obj[0], str):
        return [s.encode() for s in obj]
    return obj


def cifar_batches(kind: str, per_batch=4, n_test=6, seed=0) -> dict[str, object]:
    rng = np.random.default_rng(seed)

    def batch(n):
        b = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "batch_label": "x"}
        if kind == "cifar10":
            b["labels"] = rng.integers(0, 10, n).tolist()
        else:
            b["fine_labels"] = rng.integers(0, 100, n).tolist()
            b["coarse_labels"] = rng.integers(0, 20, n).tolist()
        return b

    if kind == "cifar10":
        out = {f"data_batch_{i}": batch(per_batch) for i in range(1, 6)}
        out["test_batch"] = batch(n_test)
        out["batches.meta"] = {"label_names": [f"c{i}" for i in range(10)]}
    else:
        out = {"train": batch(5 * per_batch), "test": batch(n_test)}
        out["meta"] = {
            "fine_label_names": [f"f{i}" for i in range(100)],
            "coarse_label_names": [f"s{i}" for i in range(20)],
        }
    return out


FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
TARBALLS = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}


def write_cifar(root: Path, kind: str, as_tarball: bool, batches=None) -> dict:
    batches = batches or cifar_batches(kind)
    blobs = {
        name: (b if isinstance(b, bytes) else pickle.dumps(_py2_like(b), protocol=2))
        for name, b in batches.items()
    }
    root.mkdir(parents=True, exist_ok=True)
    if as_tarball:
        with tarfile.open(root / TARBALLS[kind], "w:gz") as tar:
            for name, blob in blobs.items():
                info = tarfile.TarInfo(f"{FOLDERS[kind]}/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        folder = root / FOLDERS[kind]
        folder.mkdir()
        for name, blob in blobs.items():
            (folder / name).write_bytes(blob)
    return batches


@pytest.mark.parametrize("as_tarball", [False, True])
def test_cifar10_folder_and_tarball(tmp_path, as_tarball):
    batches = write_cifar(tmp_path, "cifar10", as_tarball)
    ds = load_dataset("cifar10", root=tmp_path)
    data = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    labels = sum((batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.input_shape == (3, 32, 32)
    # channel-major rows: the first 1024 bytes are the red plane of the 32x32 image
    # float32 k / 255 against float64's: one float32 rounding, rtol 2 u32
    red = ds.x_train[:, 0].reshape(20, -1)
    np.testing.assert_allclose(red, data[:, :1024] / 255, rtol=2 * U32, atol=0)
    blue = ds.x_train[:, 2, 1, 3]
    np.testing.assert_allclose(blue, data[:, 2048 + 32 + 3] / 255, rtol=2 * U32, atol=0)
    np.testing.assert_array_equal(ds.y_train, labels)
    np.testing.assert_array_equal(ds.y_test, batches["test_batch"]["labels"])
    assert ds.class_names == [f"c{i}" for i in range(10)]
    assert ds.coarse_train is None


def test_cifar100_keeps_coarse_labels_through_dev_split(tmp_path):
    batches = write_cifar(tmp_path, "cifar100", as_tarball=True)
    ds = load_dataset("cifar100", root=tmp_path, dev_fraction=0.25, standardize=True)
    assert ds.num_classes == 100 and ds.num_coarse_classes == 20
    np.testing.assert_array_equal(ds.coarse_test, batches["test"]["coarse_labels"])
    fine = np.array(batches["train"]["fine_labels"])
    coarse = np.array(batches["train"]["coarse_labels"])
    pairs = set(zip(fine.tolist(), coarse.tolist(), strict=True))
    assert len(ds.coarse_train) + len(ds.coarse_dev) == 20
    for y, c in zip(
        np.concatenate([ds.y_train, ds.y_dev]).tolist(),
        np.concatenate([ds.coarse_train, ds.coarse_dev]).tolist(),
        strict=True,
    ):
        assert (y, c) in pairs
    assert ds.metadata["coarse_class_names"][19] == "s19"
    assert len(ds.metadata["standardize"]["mean"]) == 3


class _Payload:
    """Unpickling this would create ``target``: ``open(target, "w")`` or ``touch target``."""

    def __init__(self, target, how):
        self.target, self.how = target, how

    def __reduce__(self):
        if self.how == "open":
            return (builtins.open, (self.target, "w"))
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("how", ["open", "system"])
@pytest.mark.parametrize("as_tarball", [False, True])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, as_tarball, how):
    target = tmp_path / "pwned.txt"
    batches = cifar_batches("cifar10")
    batches["data_batch_3"] = pickle.dumps({b"data": _Payload(str(target), how)}, protocol=2)
    write_cifar(tmp_path / "data", "cifar10", as_tarball, batches)
    with pytest.raises(LosslabError, match=f"refusing.*{how}"):
        load_dataset("cifar10", root=tmp_path / "data")
    assert not target.exists()


def test_pickle_with_object_array_or_wrong_content_refused(tmp_path):
    batches = cifar_batches("cifar10")
    batches["data_batch_1"] = {"data": np.array([1, "a"], dtype=object), "labels": [0, 1]}
    write_cifar(tmp_path / "a", "cifar10", False, batches)
    with pytest.raises(LosslabError, match="object array"):
        load_dataset("cifar10", root=tmp_path / "a")
    batches = cifar_batches("cifar10")
    batches["test_batch"]["data"] = np.zeros((6, 100), np.uint8)
    write_cifar(tmp_path / "b", "cifar10", False, batches)
    with pytest.raises(LosslabError, match="3072"):
        load_dataset("cifar10", root=tmp_path / "b")


def test_truncated_pickle_and_bad_labels_refused(tmp_path):
    batches = cifar_batches("cifar10")
    batches["data_batch_2"] = pickle.dumps(_py2_like(batches["data_batch_2"]), protocol=2)[:-40]
    write_cifar(tmp_path / "a", "cifar10", False, batches)
    with pytest.raises(LosslabError, match="not a readable pickle"):
        load_dataset("cifar10", root=tmp_path / "a")
    batches = cifar_batches("cifar10")
    batches["data_batch_4"]["labels"][0] = 10
    write_cifar(tmp_path / "b", "cifar10", False, batches)
    with pytest.raises(LosslabError, match="out of range"):
        load_dataset("cifar10", root=tmp_path / "b")


def test_incomplete_tarball_and_non_dict_batch_refused(tmp_path):
    batches = cifar_batches("cifar10")
    del batches["data_batch_5"]
    write_cifar(tmp_path / "a", "cifar10", True, batches)
    with pytest.raises(LosslabError, match="lacks cifar-10-batches-py/data_batch_5"):
        load_dataset("cifar10", root=tmp_path / "a")
    batches = cifar_batches("cifar10")
    batches["data_batch_1"] = [1, 2, 3]
    write_cifar(tmp_path / "b", "cifar10", False, batches)
    with pytest.raises(LosslabError, match="expected a dict"):
        load_dataset("cifar10", root=tmp_path / "b")


def test_self_referencing_pickle_does_not_hang(tmp_path):
    loop: list = []
    loop.append(loop)
    batches = cifar_batches("cifar10")
    batches["data_batch_2"]["extra"] = loop
    write_cifar(tmp_path, "cifar10", False, batches)
    assert len(load_dataset("cifar10", root=tmp_path).y_train) == 20


def test_numpy2_protocol5_arrays_are_accepted(tmp_path):
    batches = cifar_batches("cifar10")
    batches["data_batch_5"] = pickle.dumps(batches["data_batch_5"], protocol=5)
    write_cifar(tmp_path, "cifar10", False, batches)
    ds = load_dataset("cifar10", root=tmp_path)
    assert len(ds.y_train) == 20


# --- arrays (NPZ / CSV) --------------------------------------------------------------------


def test_npz_without_test_is_split_stratified(tmp_path):
    x = np.arange(80, dtype=np.float64).reshape(40, 2)
    y = np.arange(40) % 4
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset("arrays", root=tmp_path, path="d.npz", seed=3)
    assert (len(ds.y_train), len(ds.y_test)) == (30, 10)
    # stratified by construction: each class holds out floor or ceil of its share 2.5
    assert all(abs(np.sum(ds.y_test == c) - 2.5) < 1 for c in range(4))
    rows = {tuple(r) for r in np.concatenate([ds.x_train, ds.x_test]).tolist()}
    assert rows == {tuple(r) for r in x.tolist()}
    np.testing.assert_array_equal(ds.y_train, (ds.x_train[:, 0] // 2) % 4)


def test_npz_with_test_set_images_and_names(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        x=rng.random((10, 3, 4, 4)),
        y=np.arange(10) % 3,
        x_test=rng.random((4, 3, 4, 4)),
        y_test=np.array([0, 1, 2, 2]),
        class_names=np.array(["cat", "dog", "eel"]),
    )
    ds = load_dataset("arrays", path=tmp_path / "d.npz", standardize=True)
    assert ds.input_shape == (3, 4, 4) and ds.class_names == ["cat", "dog", "eel"]
    assert ds.metadata["standardize"]["mode"] == "per_channel"
    channel_means = ds.x_train.astype(np.float64).mean(axis=(0, 2, 3))
    # (x - m) / s in float32 with m, s rounded to float32: each value is within
    # u32 (|m| / s + 3 |e|) of exact e, and exact values average to 0 per channel; the mean
    # of |e| is <= 1 (their mean square is 1) and x in [0, 1) keeps |m| / s <= 1 / s
    raw = np.load(tmp_path / "d.npz")["x"]
    s = raw.std(axis=(0, 2, 3))
    tol = 2 * U32 * (np.abs(raw.mean(axis=(0, 2, 3))) / s + 3)
    assert np.all(np.abs(channel_means) <= tol)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"features": np.zeros((3, 2)), "y": np.zeros(3)}, "needs 'x' and 'y'"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(4)}, "3 samples but y has 4"),
        ({"x": np.array([[0.0, np.nan]] * 4), "y": np.arange(4) % 2}, "NaN"),
        ({"x": np.array([[0.0, np.inf]] * 4), "y": np.arange(4) % 2}, "infinite"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, -1, 0])}, ">= 0"),
        ({"x": np.zeros((4, 2)), "y": np.array([0.5, 1, 1, 0])}, "whole numbers"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 1, 0]), "x_test": np.zeros((2, 2))}, "both"),
        ({"x": np.zeros((4, 2)), "y": np.array(["a", "b", "a", "b"])}, "integers"),
    ],
)
def test_bad_npz_refused(tmp_path, arrays, match):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(LosslabError, match=match):
        load_dataset("arrays", path=tmp_path / "d.npz")


def test_npz_object_array_refused_without_unpickling(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.array([[1], ["a"]], dtype=object), y=np.array([0, 1]))
    with pytest.raises(LosslabError, match="object arrays"):
        load_dataset("arrays", path=tmp_path / "d.npz")


def test_csv_with_header_and_label_column(tmp_path):
    (tmp_path / "d.csv").write_text(
        "a,label,b\n" + "".join(f"{i},{i % 2},{2 * i}\n" for i in range(20))
    )
    ds = load_dataset("arrays", path=tmp_path / "d.csv", seed=1)
    np.testing.assert_array_equal(ds.y_train, ds.x_train[:, 0] % 2)
    np.testing.assert_array_equal(ds.x_train[:, 1], 2 * ds.x_train[:, 0])
    by_name = load_dataset("arrays", path=tmp_path / "d.csv", label_column="b", num_classes=40)
    np.testing.assert_array_equal(by_name.y_train, 2 * by_name.x_train[:, 0])


def test_csv_without_header_uses_last_column_and_test_file(tmp_path):
    (tmp_path / "tr.csv").write_text("".join(f"{i};{i * 0.5};{i % 3}\n" for i in range(9)))
    (tmp_path / "te.csv").write_text("1;2;2\n3;4;0\n")
    ds = load_dataset("arrays", root=tmp_path, path="tr.csv", test_path="te.csv", delimiter=";")
    assert ds.x_train.shape == (9, 2) and ds.num_classes == 3
    np.testing.assert_array_equal(ds.y_test, [2, 0])
    np.testing.assert_array_equal(ds.x_test, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ("a,label\n1,0\nx,1\n", {}, "line 3"),
        ("a,label\n1,0\n2,1.5\n", {}, "whole numbers"),
        ("a,b\n1,0\n2,1\n", {"label_column": "c"}, "no column named 'c'"),
        ("", {}, "empty"),
        ("1,nan,0\n2,3,1\n3,3,1\n4,4,0\n", {}, "NaN"),
    ],
)
def test_bad_csv_refused(tmp_path, text, kwargs, match):
    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(LosslabError, match=match):
        load_dataset("arrays", path=tmp_path / "d.csv", **kwargs)


def test_arrays_needs_an_existing_path(tmp_path):
    with pytest.raises(LosslabError, match="path="):
        load_dataset("arrays")
    with pytest.raises(LosslabError, match="does not exist"):
        load_dataset("arrays", path=tmp_path / "none.npz")
