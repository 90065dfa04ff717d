"""Convolutional networks of the seeds and of the MNIST-1D reference experiments.

* :func:`janocha_convnet` — Janocha & Czarnecki 2017 §3, the CIFAR-10 convnet.
* :func:`lenet5` — LeNet-5 "adjusted for CIFAR10/100", Berlyand et al. §3.2-3.3.
* :func:`vgg_small` — the VGG-like CNN of the Daza assignment (question 4).
* :func:`mnist1d_cnn` — the MNIST-1D CNN of Greydanus & Kobak (ICML 2024).

Each factory initialises the weights from one generator (``seed=`` / ``generator=``),
see :func:`losslab.models.mlp.initialise_`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from losslab.checks import check_int, check_real
from losslab.errors import LosslabError
from losslab.models.mlp import initialised, make_activation


def _pooled(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _as_images(x: torch.Tensor, channels: int, size: int, model: str) -> torch.Tensor:
    """(N, C, H, W), or (N, H, W) when C = 1, else a LosslabError naming the expected shape."""
    if isinstance(x, torch.Tensor) and channels == 1 and x.dim() == 3:
        x = x.unsqueeze(1)
    if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != (channels, size, size):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        single = f" or (N, {size}, {size})" if channels == 1 else ""
        raise LosslabError(
            f"{model} expects images of shape (N, {channels}, {size}, {size}){single}, "
            f"got {shape}; set in_channels= / image_size= to match your data"
        )
    return x


class _ImageNet(nn.Module):
    """A net of ``features`` then ``classifier`` over square images.

    Args:
        name: the registry name (for messages).
        in_channels: C_in; ``image_size``: S, at least ``min_size``; ``classes``: C.

    Shape:
        input (N, C_in, S, S), or (N, S, S) when C_in = 1; output (N, C).
    """

    features: nn.Module
    classifier: nn.Module

    def __init__(self, name: str, in_channels: int, image_size: int, classes: int,
                 min_size: int = 1) -> None:
        super().__init__()
        self.name = name
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.image_size = check_int("image_size", image_size, min_size)
        check_int("classes", classes, 1)
        self.sample_shape = (in_channels, image_size, image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _as_images(x, self.in_channels, self.image_size, self.name)
        return self.classifier(self.features(x))


class JanochaConvNet(_ImageNet):
    """The CIFAR-10 convnet of Janocha & Czarnecki 2017, §3.

    Three blocks ``Conv(k x k, 64, same padding) -> activation -> [BatchNorm2d] -> pool``
    with a 3x3 stride-2 max-pool after the first block and 3x3 stride-2 average pools
    after the other two, then ``Linear -> activation -> [Dropout] -> Linear`` (128 hidden
    units, C logits). The paper lists "ReLU activation functions, batch-normalisation and
    pooling operations in between them" in that order, which we follow; pools use padding
    1 ("same" pooling, 32 -> 16 -> 8 -> 4) and average pools ignore the padding.

    Args:
        in_channels: C_in (default 3).
        classes: C (default 10).
        image_size: S, the side of the square input (default 32).
        channels: filters per convolution (default 64).
        kernel_size: odd convolution size (default 5).
        hidden: width of the fully connected hidden layer (default 128).
        activation, activation_kwargs: a ``losslab.activations`` name (default "relu").
        batchnorm: batch-norm after each convolution's activation (default True).
        dropout: dropout before the output layer (default 0, as in the paper).

    Shape:
        input (N, C_in, S, S), or (N, S, S) when C_in = 1; output (N, C).
    """

    def __init__(
        self,
        in_channels: int = 3,
        classes: int = 10,
        image_size: int = 32,
        channels: int = 64,
        kernel_size: int = 5,
        hidden: int = 128,
        activation: str = "relu",
        activation_kwargs: Mapping[str, Any] | None = None,
        batchnorm: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__("janocha_convnet", in_channels, image_size, classes, min_size=4)
        check_int("channels", channels, 1)
        check_int("hidden", hidden, 1)
        if check_int("kernel_size", kernel_size, 1) % 2 == 0:
            raise LosslabError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        dropout = check_real("dropout", dropout, 0.0, 1.0, high_open=True)
        layers: list[nn.Module] = []
        size, previous = image_size, in_channels
        pools = [
            nn.MaxPool2d(3, 2, 1),
            nn.AvgPool2d(3, 2, 1, count_include_pad=False),
            nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        ]
        for pool in pools:
            layers.append(nn.Conv2d(previous, channels, kernel_size, padding=kernel_size // 2))
            layers.append(make_activation(activation, activation_kwargs))
            if batchnorm:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(pool)
            size, previous = _pooled(size, 3, 2, 1), channels
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [
            nn.Flatten(),
            nn.Linear(channels * size * size, hidden),
            make_activation(activation, activation_kwargs),
        ]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(hidden, classes))
        self.classifier = nn.Sequential(*head)


janocha_convnet = initialised(
    JanochaConvNet,
    "janocha_convnet",
    "An initialised :class:`JanochaConvNet` (seed: Janocha & Czarnecki 2017, §3, CIFAR-10).",
    init_note=", for ReLU-like activations",
)


class LeNet5(_ImageNet):
    """LeNet-5 adjusted for CIFAR-10/100 (Berlyand et al. §3.2-3.3, their ref. [21]).

    ``Conv(5x5, 6) -> act -> MaxPool(2) -> Conv(5x5, 16) -> act -> MaxPool(2) ->
    Linear(16 s^2, 120) -> act -> Linear(120, 84) -> act -> Linear(84, C)``: the paper
    describes "two sets of convolutional layers, each followed by a max pooling layer,
    afterwards two fully connected layers" with "over 50,000 parameters"; we read it as
    the classic CIFAR LeNet-5 (62,006 parameters for C = 10) whose two fully connected
    hidden layers precede the output layer.

    Args:
        in_channels: C_in (default 3).
        classes: C (default 10; 100 for CIFAR-100 fine labels, 20 for coarse).
        image_size: S (default 32; at least 16).
        activation, activation_kwargs: a ``losslab.activations`` name (default "relu").
        bias: biases in every layer (default True; ``bias=False`` with ReLU makes the
            logits exactly homogeneous in the weights, ``z = R * z_hat``).

    Shape:
        input (N, C_in, S, S), or (N, S, S) when C_in = 1; output (N, C).
    """

    def __init__(
        self,
        in_channels: int = 3,
        classes: int = 10,
        image_size: int = 32,
        activation: str = "relu",
        activation_kwargs: Mapping[str, Any] | None = None,
        bias: bool = True,
    ):
        super().__init__("lenet5", in_channels, image_size, classes, min_size=16)
        size = ((image_size - 4) // 2 - 4) // 2

        def act() -> nn.Module:
            return make_activation(activation, activation_kwargs)

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, bias=bias), act(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, bias=bias), act(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * size * size, 120, bias=bias), act(),
            nn.Linear(120, 84, bias=bias), act(),
            nn.Linear(84, classes, bias=bias),
        )  # fmt: skip


lenet5 = initialised(
    LeNet5,
    "lenet5",
    "An initialised :class:`LeNet5` (seed: Berlyand, Creese & Jabin 2021, §3.2-3.3).",
)


# Channel multipliers of the VGG-like net; "M" is a 3x3 stride-2 max-pool.
_VGG_LAYOUT = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M")


class VGGSmall(_ImageNet):
    """The VGG-like CNN of the Daza assignment (question 4; Simonyan & Zisserman 2014).

    The report says only "a series of convolutional layers, batch normalization, ReLU
    and pooling layers"; we use the layer table of the course assignment it answers
    (UvA Deep Learning 2019, assignment 1): 3x3 convolutions (padding 1) with
    64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M channels (``width`` = 64), each
    ``Conv -> [BatchNorm2d] -> activation``, "M" a 3x3 stride-2 max-pool with padding 1,
    then one ``Linear`` to C logits (32 x 32 inputs end at 1 x 1 x 512).

    Args:
        in_channels: C_in (default 3).
        classes: C (default 10).
        image_size: S (default 32).
        batchnorm: batch-norm after every convolution (default True).
        width: channels of the first convolution; the others are 2x, 4x, 8x it
            (default 64, the assignment's net: 9.23M parameters; 16 for a quick CPU run).
        activation, activation_kwargs: a ``losslab.activations`` name (default "relu").

    Shape:
        input (N, C_in, S, S), or (N, S, S) when C_in = 1; output (N, C).
    """

    def __init__(
        self,
        in_channels: int = 3,
        classes: int = 10,
        image_size: int = 32,
        batchnorm: bool = True,
        width: int = 64,
        activation: str = "relu",
        activation_kwargs: Mapping[str, Any] | None = None,
    ):
        super().__init__("vgg_small", in_channels, image_size, classes)
        check_int("width", width, 1)
        layers: list[nn.Module] = []
        size, previous = image_size, in_channels
        for item in _VGG_LAYOUT:
            if isinstance(item, str):  # "M"
                layers.append(nn.MaxPool2d(3, 2, 1))
                size = _pooled(size, 3, 2, 1)
                continue
            layers.append(nn.Conv2d(previous, item * width, 3, padding=1))
            if batchnorm:
                layers.append(nn.BatchNorm2d(item * width))
            layers.append(make_activation(activation, activation_kwargs))
            previous = item * width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(previous * size * size, classes))


vgg_small = initialised(
    VGGSmall,
    "vgg_small",
    """An initialised :class:`VGGSmall` (seed: Daza assignment, question 4: 77.0 ± 0.6 %
    CIFAR-10 test accuracy with batch-norm, 73.8 % without, Adam 1e-4, 5000 steps).""",
)


class MNIST1DCNN(nn.Module):
    """The MNIST-1D CNN (Greydanus & Kobak, "Scaling down deep learning", ICML 2024).

    ``Conv1d(1, K, 5, stride 2, pad 1) -> act -> Conv1d(K, K, 3, 2, 1) -> act ->
    Conv1d(K, K, 3, 2, 1) -> act -> flatten -> Linear(K L', C)``; for L = 40, K = 25 the
    lengths go 40 -> 19 -> 10 -> 5 and the linear layer reads 125 features.

    Args:
        length: L, samples per signal (default 40).
        channels: K, channels of each convolution (default 25).
        classes: C (default 10).
        activation, activation_kwargs: a ``losslab.activations`` name (default "relu").
        bias: biases in every layer (default True).

    Shape:
        input (N, L) or (N, 1, L); output (N, C).
    """

    def __init__(
        self,
        length: int = 40,
        channels: int = 25,
        classes: int = 10,
        activation: str = "relu",
        activation_kwargs: Mapping[str, Any] | None = None,
        bias: bool = True,
    ):
        super().__init__()
        self.length = check_int("length", length, 8)
        check_int("channels", channels, 1)
        check_int("classes", classes, 1)

        def act() -> nn.Module:
            return make_activation(activation, activation_kwargs)

        size = _pooled(_pooled(_pooled(length, 5, 2, 1), 3, 2, 1), 3, 2, 1)
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=1, bias=bias), act(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1, bias=bias), act(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1, bias=bias), act(),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * size, classes, bias=bias)
        )
        self.sample_shape = (1, length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and x.dim() == 2:
            x = x.unsqueeze(1)
        if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != (1, self.length):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise LosslabError(
                f"mnist1d_cnn expects input of shape (N, {self.length}) or "
                f"(N, 1, {self.length}), got {shape}; set length= to match your data"
            )
        return self.classifier(self.features(x))


mnist1d_cnn = initialised(
    MNIST1DCNN,
    "mnist1d_cnn",
    """An initialised :class:`MNIST1DCNN`, 5,210 parameters by default (Greydanus & Kobak,
    "Scaling down deep learning", ICML 2024: ~94 % test accuracy on MNIST-1D).""",
    init_note="; the paper used PyTorch's default, 'torch'",
)
