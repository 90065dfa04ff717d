"""Learning-rate schedules: the lecture notes' formulas, torch's ExponentialLR, and the same
sequence of rates from the torch trainer and the NumPy engine."""

import math

import numpy as np
import pytest
import torch

from losslab import npnet
from losslab.errors import LosslabError
from losslab.models import mlp
from losslab.schedules import DEFAULT_DECAY_RATE, SCHEDULES, learning_rate
from losslab.train import TrainConfig, train


def _notes(name, a0, e, d):
    # Lecture notes 2018, section 7.3, written out independently of the module.
    return {
        "constant": a0,
        "inverse_time": a0 / (1.0 + d * e),
        "exponential": a0 * d**e,
        "inverse_sqrt": a0 * d / math.sqrt(e if e > 0 else 1),
    }[name]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_follow_the_lecture_notes(name):
    for e in range(6):
        # Same <= 3 float64 operations (a power or sqrt, a product, a quotient), maybe in another
        # order: <= 3 roundings each side, 6.7e-16 relative; 1e-14 (15x).
        assert learning_rate(name, 0.2, e, 0.5) == pytest.approx(_notes(name, 0.2, e, 0.5), 1e-14)
        default = DEFAULT_DECAY_RATE[name]
        assert learning_rate(name, 0.2, e) == pytest.approx(_notes(name, 0.2, e, default), 1e-14)


def test_exponential_is_torchs_exponential_lr_stepped_per_epoch():
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.2)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)
    for epoch in range(6):
        # torch multiplies by gamma once per step: e <= 5 roundings of half an ulp, against
        # lr0 * gamma**e's two: <= 7 x 1.1e-16 = 7.8e-16 relative; 1e-14 (13x).
        assert learning_rate("exponential", 0.2, epoch) == pytest.approx(
            opt.param_groups[0]["lr"], rel=1e-14
        )
        opt.step()
        sched.step()


def test_bad_arguments_are_refused():
    with pytest.raises(LosslabError, match="Valid learning-rate schedule names"):
        learning_rate("cosine", 0.1, 1)
    with pytest.raises(LosslabError, match="epoch must be an integer >= 0"):
        learning_rate("inverse_time", 0.1, -1)
    with pytest.raises(LosslabError, match="decay_rate"):
        learning_rate("exponential", 0.1, 1, 0.0)
    with pytest.raises(LosslabError, match="lr0"):
        learning_rate("constant", -0.1, 1)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_both_engines_produce_the_same_learning_rates(name):
    """80 samples at batch 20: 4 steps per epoch, rates read at steps 2, 4, ..., 16 by both
    the torch trainer and npnet.fit, each against the notes' formula at epoch (s - 1) // 4."""
    rng = np.random.default_rng(0)
    data = {"x_train": rng.normal(size=(80, 5)), "y_train": rng.integers(0, 3, 80)}
    config = TrainConfig(
        optimizer="sgd",
        lr=0.1,
        lr_decay=name,
        decay_rate=0.7,
        batch_size=20,
        steps=16,
        eval_every=2,
        device="cpu",
    )
    torch_rates = train(mlp(5, [4], 3, seed=0), data, "log", config).curves
    fitted = npnet.fit(
        data,
        hidden=(4,),
        optimizer="sgd",
        lr=0.1,
        lr_decay=name,
        decay_rate=0.7,
        batch_size=20,
        steps=16,
        eval_every=2,
    ).history
    assert torch_rates["step"] == fitted["step"] == list(range(2, 17, 2))
    expected = [_notes(name, 0.1, (s - 1) // 4, 0.7) for s in fitted["step"]]
    assert fitted["lr"] == torch_rates["lr"]  # the same function of the same numbers
    # The notes' formula written out again: <= 3 roundings each side (see the first test).
    assert fitted["lr"] == pytest.approx(expected, rel=1e-14)
