"""Every refusal is one LosslabError line, raised before any work starts, and writes nothing.

Each case runs the real entry point: the ``losslab`` command through ``cli.main`` (exit
status 2, one line on stderr, no traceback), ``load_dataset``,
``train`` / ``train_many``.
"""

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from losslab.data import load_dataset
from losslab.errors import LosslabError
from losslab.models import mlp
from losslab.train import TrainConfig, train, train_many


def _refused(console, *args):
    """Run ``losslab ARGS``; assert exit 2 and one error line; return that line."""
    code, out, err = console(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and out == ""
    return lines[0]


def _ran(console, *args):
    code, out, err = console(*args)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return {"x_train": x[:200], "y_train": y[:200], "x_test": x[200:300], "y_test": y[200:300]}


# ---------------------------------------------------------------- labels and class counts
def _npz(tmp_path, y, **extra):
    path = tmp_path / "d.npz"
    x = np.random.default_rng(0).normal(size=(len(y), 3))
    np.savez(path, x=x, y=np.asarray(y), **extra)
    return path


def test_labels_far_beyond_the_sample_count_are_refused(tmp_path, console):
    # 40 samples, one label 1e9: today a billion-column output layer, killed for memory.
    y = np.r_[np.arange(39) % 3, 10**9]
    path = _npz(tmp_path, y)
    with pytest.raises(LosslabError, match="largest label is 1000000000.*num_classes="):
        load_dataset("arrays", path=path)
    line = _refused(console, "train", "--dataset", "arrays", "--root", str(path))
    assert "1000000000" in line
    # Given explicitly, the count is the user's decision.
    small = _npz(tmp_path, np.r_[np.arange(39) % 3, 50])
    assert load_dataset("arrays", path=small, num_classes=51).num_classes == 51


def test_declared_class_names_give_the_class_count(tmp_path):
    names = np.array(["a", "b", "c", "d", "e"])
    ds = load_dataset("arrays", path=_npz(tmp_path, np.arange(40) % 3, class_names=names))
    assert ds.num_classes == 5 and ds.class_names == list(names)
    with pytest.raises(LosslabError, match="label 3 is out of range for the 2 declared"):
        load_dataset("arrays", path=_npz(tmp_path, np.arange(40) % 4, class_names=names[:2]))


@pytest.mark.parametrize(
    "y, message",
    [
        (np.r_[np.arange(39) % 3, -1], ">= 0"),
        (np.r_[np.arange(39) % 3, 1.5], "whole numbers"),
        (np.r_[np.arange(39) % 3, np.nan], "whole numbers"),
    ],
)
def test_negative_fractional_and_nan_labels_are_refused(tmp_path, y, message):
    with pytest.raises(LosslabError, match=message):
        load_dataset("arrays", path=_npz(tmp_path, y))


def test_trainer_refuses_more_classes_than_samples(digits):
    data = {**digits, "y_train": np.r_[digits["y_train"][:-1], 10**6]}
    with pytest.raises(LosslabError, match="largest label is 1000000"):
        train(mlp(64, [], 10, seed=0), data, "log", TrainConfig(steps=1, device="cpu"))


# ---------------------------------------------------------------- refused before work starts
def test_model_with_fewer_outputs_than_classes(digits, tmp_path):
    path = tmp_path / "run.pt"
    config = TrainConfig(steps=5, device="cpu", checkpoint_path=str(path))
    with pytest.raises(LosslabError, match="outputs 3 logits but the data has 10 classes"):
        train(mlp(64, [], 3, seed=0), digits, "log", config)
    with pytest.raises(LosslabError, match="model 0 outputs 3 logits"):
        train_many(lambda s: mlp(64, [], 3, seed=s), ["log"], digits, config)
    assert not path.exists()


def test_checkpoint_folder_that_does_not_exist(digits, tmp_path):
    path = tmp_path / "missing" / "run.pt"
    net = mlp(64, [], 10, seed=0)
    before = [p.detach().clone() for p in net.parameters()]
    config = TrainConfig(steps=5, device="cpu", checkpoint_path=str(path))
    with pytest.raises(LosslabError, match="does not exist; create it first"):
        train(net, digits, "log", config)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert not path.parent.exists()


def test_foreign_checkpoint_never_advises_weights_only_false(digits, tmp_path):
    path = tmp_path / "run.pt"
    torch.save({"version": 1, "payload": np.random.default_rng(0)}, path)
    config = TrainConfig(steps=2, device="cpu", checkpoint_path=str(path))
    with pytest.raises(LosslabError) as info:
        train(mlp(64, [], 10, seed=0), digits, "log", config)
    message = str(info.value)
    assert "weights_only" not in message and "\n" not in message
    assert "nothing was run" in message


def test_huge_hidden_width_says_how_much_memory(console):
    line = _refused(console, "train", "--dataset", "checkerboard", "--hidden", "100000000000")
    # 1e11 x 1e11 float32 weights of the second layer would not be built at all; the first
    # layer alone asks for 2 x 1e11 x 4 bytes = 745 GiB.
    assert "GiB of memory" in line and "--hidden" in line


def test_missing_dataset_is_one_line_with_the_command_that_fixes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(LosslabError) as info:
        load_dataset("cifar10", root=tmp_path, download=False)
    message = str(info.value)
    assert "\n" not in message and "fix: " in message and "curl -LO https://" in message
    assert not (tmp_path / "home").exists()


def test_seed_beyond_63_bits_is_accepted():
    assert TrainConfig(seed=2**63).seed == 2**63


# ---------------------------------------------------------------- what `losslab train` did
BASE = ["train", "--dataset", "checkerboard", "--steps", "3", "--hidden", "8"]


def test_loss_args_reach_the_loss_and_are_checked(console, tmp_path):
    out = tmp_path / "r.json"
    printed = _ran(console, *BASE, "--loss", "GCE", "--loss-arg", "q=0.25", "--out", str(out))
    # The canonical name, not the spelling typed; the options as parsed (a float here).
    assert printed.splitlines()[0].split(" | ")[2] == "loss gce q=0.25"
    stored = json.loads(out.read_text())
    assert stored["loss"] == "gce" and stored["loss_kwargs"] == {"q": 0.25}
    assert stored["result"]["steps_run"] == 3
    line = _refused(console, *BASE, "--loss", "gce", "--loss-arg", "z=1")
    assert "'z'" in line and "accepts: q" in line
    line = _refused(console, *BASE, "--loss", "gce", "--loss-arg", "q=2.5")
    assert "q" in line
    assert "NAME=VALUE" in _refused(console, *BASE, "--loss-arg", "q")


def test_out_never_overwrites(console, tmp_path):
    out = tmp_path / "r.json"
    out.write_text("keep me")
    assert "already exists" in _refused(console, *BASE, "--out", str(out))
    assert out.read_text() == "keep me"
    missing = tmp_path / "no" / "r.json"
    assert "not writable" in _refused(console, *BASE, "--out", str(missing))
    assert not missing.parent.exists()


def test_reports_the_batch_size_actually_used(console):
    printed = _ran(console, *BASE, "--batch-size", "5000", "--json")
    # checkerboard has 800 training samples: the trainer caps the batch there.
    assert "batch 800 (capped from 5000)" in printed
    assert json.loads(printed.strip().splitlines()[-1])["batch_size"] == 800


def test_eval_every_zero_and_root_without_files_are_refused(console, tmp_path):
    assert "eval_every" in _refused(console, *BASE, "--eval-every", "0")
    line = _refused(console, *BASE, "--root", str(tmp_path))
    assert "reads no files" in line
