"""The parameter scale R of a positively homogeneous network (seed: Berlyand et al. eq. 9).

For a network of L linear/conv layers with ReLU-like activations and no biases,
the logits factor as ``z = R * z_hat`` with ``R = prod_l ||alpha_l||``, where
``alpha_l`` is the vector of all parameters of layer ``l`` (the output layer
included) and ``z_hat`` are the logits of the same network with every layer
scaled to unit norm: each layer is homogeneous of degree one, so the logits are
homogeneous of degree L (Berlyand et al. section 2.2). With biases the bias vector is
part of ``alpha_l`` (that is what "the vector of that layer's parameters" means) but the
factorisation is then only approximate; batch-norm layers are not counted and also break
it. Residual connections break it too: in the MNIST-1D MLP (``mnist1d_mlp``,
``h + relu(W_2 h)``) the skip path is homogeneous of a lower degree than the branch, so
its logits are no multiple of R; :func:`parameter_scale` still returns the product of
norms, which is then only a size measure, not the factor of eq. 9.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from losslab.errors import LosslabError

_SCALED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _sum_of_squares(layer: nn.Module) -> torch.Tensor:
    # A scaled layer has a weight, so the sum is a tensor, never sum()'s start 0.
    return cast(torch.Tensor, sum((p * p).sum() for p in layer.parameters(recurse=False)))


def parameter_scale(model: nn.Module) -> torch.Tensor:
    """R = prod over the model's Linear/Conv layers of the Euclidean norm of their parameters.

    Args:
        model: any ``nn.Module``; every ``nn.Linear`` / ``nn.ConvNd`` inside counts as a layer.

    Returns:
        A 0-dim tensor, differentiable with respect to the model's parameters.
    """
    norms = [
        torch.sqrt(_sum_of_squares(layer))
        for layer in model.modules()
        if isinstance(layer, _SCALED_LAYERS)
    ]
    if not norms:
        raise LosslabError(
            f"parameter_scale: {type(model).__name__} has no nn.Linear or nn.Conv layer; "
            "R is defined as the product of the layers' parameter norms (Berlyand et al. eq. 9)"
        )
    return torch.stack(norms).prod()
