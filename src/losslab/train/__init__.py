"""Training: one model, or M models of one architecture at once (the batched engine).

::

    from losslab.train import ModelSpec, TrainConfig, train, train_many

    result = train(net, dataset, "log", TrainConfig(steps=2000))        # one model, in place
    results = train_many(lambda seed: mlp(2, [200] * 5, 4, seed=seed),   # a loss x seed grid
                         [ModelSpec(loss, seed) for loss in losses for seed in range(5)],
                         dataset, TrainConfig(lr=3e-5, batch_size=50))

Modules: :mod:`~losslab.train.config` (TrainConfig, ModelSpec, lr decays),
:mod:`~losslab.train.data` (device-resident data, seeded batch order),
:mod:`~losslab.train.backends` (stack vs loop), :mod:`~losslab.train.losses` (per-model
losses in few calls), :mod:`~losslab.train.optim` (per-model lr and weight decay),
:mod:`~losslab.train.tracker` (divergence, early stopping, best weights),
:mod:`~losslab.train.evaluate` (chunked evaluation), :mod:`~losslab.train.measure`
(measurement hooks), :mod:`~losslab.train.console` (progress display),
:mod:`~losslab.train.engine` (the loop), :mod:`~losslab.train.checkpoint` (checkpoint
files), :mod:`~losslab.train.result` (TrainResult and its JSON), :mod:`~losslab.train.api`
(train, train_many).
"""

from losslab.train.api import train, train_many
from losslab.train.config import ModelSpec, TrainConfig, resolve_device
from losslab.train.data import TrainData, as_train_data
from losslab.train.measure import MeasureContext, Measurement
from losslab.train.result import CURVE_KEYS, TrainResult

__all__ = [
    "CURVE_KEYS",
    "MeasureContext",
    "Measurement",
    "ModelSpec",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "as_train_data",
    "resolve_device",
    "train",
    "train_many",
]
