"""npnet: a from-scratch NumPy engine whose every backward pass is derived by hand.

It never imports torch; its tests check every backward against numerical
gradients and against PyTorch in float64.

* :mod:`~losslab.npnet.functional` — ``*_forward`` / ``*_backward`` pairs (linear,
  activations, softmax, cross-entropy, dropout, batch-norm, conv2d, pooling);
* :mod:`~losslab.npnet.losses` — every loss of the seeds but the two-scale ones;
* :mod:`~losslab.npnet.layers` — layers with ``params``/``grads``, ``Sequential``,
  ``MLP``, initialisers, the Janocha convnet and a small VGG;
* :mod:`~losslab.npnet.optim` — SGD, momentum, RMSprop, Adam, L2 weight decay,
  learning-rate decay, early stopping;
* :mod:`~losslab.npnet.gradcheck` — centred-difference gradient checks;
* :func:`fit` — the training loop (Daza's NumPy MLP protocol by default).

Example (one training step by hand, then the whole Daza protocol)::

    import numpy as np
    from losslab import npnet

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((200, 64)), rng.integers(0, 10, 200)
    net = npnet.MLP([64, 100, 10], rng=0)
    loss = npnet.get_loss("log")
    opt = npnet.get_optimizer("sgd", lr=0.1)
    value = loss.forward(net.forward(x), y)
    net.backward(loss.backward())
    opt.step(net.params, net.grads)
    result = npnet.fit(x, y, steps=100)
"""

from losslab.npnet import functional
from losslab.npnet.gradcheck import check_layer, numerical_gradient, relative_error
from losslab.npnet.layers import (
    ACTIVATIONS,
    INITIALISERS,
    MLP,
    Activation,
    AdaptiveReLU,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dropout,
    Flatten,
    Layer,
    Linear,
    MaxPool2d,
    PReLU,
    Sequential,
    Softmax,
    Swish,
    get_activation,
    init_weight,
    janocha_convnet,
    vgg_small,
)
from losslab.npnet.losses import LOSSES, Loss, get_loss
from losslab.npnet.optim import (
    OPTIMIZERS,
    SGD,
    Adam,
    EarlyStopping,
    Momentum,
    Optimizer,
    RMSprop,
    add_l2_gradient,
    get_optimizer,
    l2_penalty,
)
from losslab.npnet.train import FitResult, evaluate, fit

__all__ = [
    "ACTIVATIONS",
    "INITIALISERS",
    "LOSSES",
    "MLP",
    "OPTIMIZERS",
    "SGD",
    "Activation",
    "AdaptiveReLU",
    "Adam",
    "AvgPool2d",
    "BatchNorm",
    "Conv2d",
    "Dropout",
    "EarlyStopping",
    "FitResult",
    "Flatten",
    "Layer",
    "Linear",
    "Loss",
    "MaxPool2d",
    "Momentum",
    "Optimizer",
    "PReLU",
    "RMSprop",
    "Sequential",
    "Softmax",
    "Swish",
    "add_l2_gradient",
    "check_layer",
    "evaluate",
    "fit",
    "functional",
    "get_activation",
    "get_loss",
    "get_optimizer",
    "init_weight",
    "janocha_convnet",
    "l2_penalty",
    "numerical_gradient",
    "relative_error",
    "vgg_small",
]
