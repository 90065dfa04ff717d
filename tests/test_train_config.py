"""TrainConfig / ModelSpec validation, learning-rate decays, device choice, batch order."""

import math

import pytest
import torch

from losslab.errors import LosslabError
from losslab.train import ModelSpec, TrainConfig, resolve_device
from losslab.train.data import BatchOrder, as_train_data


@pytest.mark.parametrize(
    "kwargs",
    [
        {"optimizer": "adagrad"},
        {"lr": 0.0},
        {"lr": float("nan")},
        {"batch_size": 0},
        {"steps": 1.5},
        {"eval_every": 0},
        {"weight_decay": -1e-4},
        {"lr_decay": "cosine"},
        {"decay_rate": 0.0},
        {"momentum": 1.5},
        {"betas": (0.9,)},
        {"seed": -1},
        {"patience": 0},
        {"monitor": "test_accuracy"},
        {"dtype": "float16"},
        {"engine": "jit"},
        {"device": "tpu"},
        {"checkpoint_every": 0},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(LosslabError):
        TrainConfig(**kwargs)


def test_config_normalises_names_and_round_trips():
    config = TrainConfig(optimizer="Adam", lr_decay="inverse-time", decay_rate=0.5)
    assert config.optimizer == "adam" and config.lr_decay == "inverse_time"
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(LosslabError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"learning_rate": 0.1})


@pytest.mark.parametrize("epoch", [0, 1, 2, 7])
def test_learning_rate_decays_follow_the_lecture_notes(epoch):
    a0, d = 0.1, 0.5
    expected = {
        "constant": a0,
        "inverse_time": a0 / (1.0 + d * epoch),
        "exponential": a0 * d**epoch,
        "inverse_sqrt": a0 * d / math.sqrt(epoch if epoch > 0 else 1),
    }
    # The same <= 3 float64 operations (power or sqrt, product, quotient) on each side, maybe
    # grouped differently: <= 6 roundings, 6.7e-16 relative; 1e-14 (15x).
    for name, value in expected.items():
        config = TrainConfig(lr=a0, lr_decay=name, decay_rate=d)
        assert config.learning_rate(epoch) == pytest.approx(value, rel=1e-14)
    assert TrainConfig(lr=a0, lr_decay="exponential").learning_rate(epoch) == pytest.approx(
        a0 * 0.95**epoch, rel=1e-14
    )


def test_device_auto_and_unavailable_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(LosslabError, match="CUDA is not available"):
            TrainConfig(device="cuda")


def test_model_spec_validation():
    assert ModelSpec("hinge", 3).label == "hinge/seed=3"
    with pytest.raises(LosslabError):
        ModelSpec(loss=3)
    with pytest.raises(LosslabError):
        ModelSpec("log", seed=-2)
    with pytest.raises(LosslabError):
        ModelSpec(torch.nn.CrossEntropyLoss(), loss_kwargs={"a": 1})
    with pytest.raises(LosslabError):
        ModelSpec("log", lr=-1.0)


def test_batch_order_is_per_seed_and_covers_each_epoch():
    a = BatchOrder([0, 1], n=10, batch_size=3, shuffle=True, device=torch.device("cpu"))
    b = BatchOrder([1], n=10, batch_size=3, shuffle=True, device=torch.device("cpu"))
    assert a.steps_per_epoch == 3
    epoch = torch.cat([a.indices(s) for s in range(3)], dim=1)
    for row in epoch:
        assert len(set(row.tolist())) == 9  # a permutation minus the dropped remainder
    assert torch.equal(epoch[1], torch.cat([b.indices(s)[0] for s in range(3)]))
    assert not torch.equal(epoch[0], epoch[1])
    assert not torch.equal(a.indices(3), epoch[:, :3])  # a fresh permutation next epoch
    ordered = BatchOrder([0], n=8, batch_size=4, shuffle=False, device=torch.device("cpu"))
    assert ordered.indices(3).tolist() == [[4, 5, 6, 7]]  # bix = step * N mod n


def test_as_train_data_checks_inputs():
    cpu, f32 = torch.device("cpu"), torch.float32
    x, y = torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])
    data = as_train_data({"x_train": x, "y_train": y}, cpu, f32)
    assert data.num_classes == 2 and data.x_dev is None
    with pytest.raises(LosslabError, match="x_train"):
        as_train_data({}, cpu, f32)
    with pytest.raises(LosslabError, match="integer class labels"):
        as_train_data({"x_train": x, "y_train": y.float()}, cpu, f32)
    with pytest.raises(LosslabError, match="NaN"):
        as_train_data({"x_train": x.clone().fill_(float("nan")), "y_train": y}, cpu, f32)
    with pytest.raises(LosslabError, match="lie in"):
        as_train_data({"x_train": x, "y_train": y, "num_classes": 1}, cpu, f32)
    with pytest.raises(LosslabError, match="n = len"):
        as_train_data({"x_train": x[:3], "y_train": y}, cpu, f32)


def test_numpy_numbers_are_accepted():
    """Grids built with NumPy give np.int64 / np.float32 values: they are plain numbers."""
    import numpy as np

    config = TrainConfig(steps=np.int64(7), batch_size=np.int32(5), lr=np.float32(0.5))
    assert config.steps == 7 and type(config.steps) is int
    assert config.batch_size == 5 and config.lr == 0.5
    with pytest.raises(LosslabError, match="steps"):
        TrainConfig(steps=np.float64(7.5))
