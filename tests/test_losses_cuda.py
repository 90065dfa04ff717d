"""Losses on a CUDA device: no host synchronisation, and float16 training with GradScaler.

Skipped without a CUDA device (the build machine has none). On a GPU machine:
``.venv/bin/python -m pytest tests/test_losses_cuda.py``.
"""

from __future__ import annotations

import math

import pytest
import torch

from losslab.losses import LOSSES, TWO_SCALE_LOSSES, get_loss
from losslab.models import mlp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

NAMES = sorted(LOSSES)


def _loss(name, model=None):
    loss = get_loss(name).cuda()
    if name in TWO_SCALE_LOSSES:
        loss.attach(model if model is not None else 2.0)  # set-up: may synchronise
    return loss


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_runs_without_a_host_sync(name):
    loss = _loss(name)
    logits = torch.randn(64, 10, device="cuda", requires_grad=True)
    labels = torch.randint(0, 10, (64,), device="cuda")
    soft = torch.softmax(torch.randn(64, 10, device="cuda"), -1)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for target in (labels, soft):
            loss(logits, target).backward()
            loss.per_sample(logits, target)
        loss.predict_logits(logits)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(logits.grad).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_float16_gradscaler_mnist_mlp_has_no_nonfinite_steps_after_warmup(name):
    gen = torch.Generator().manual_seed(0)
    # MNIST-shaped data: 784 pixels in [0, 1], 10 classes that depend on the pixels.
    x = torch.rand(2048, 784, generator=gen)
    y = (x[:, :10].argmax(1)).long()
    x, y = x.cuda(), y.cuda()
    model = mlp(784, [256, 256], 10, seed=0).cuda()
    loss = _loss(name, model)
    params = [*model.parameters(), *loss.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    scaler = torch.amp.GradScaler("cuda")
    skipped_after_warmup = 0
    # GradScaler starts at 2^16 and halves on each skipped step. Gradients of these bounded
    # losses on a 784-256-256-10 MLP are <= ~1e2, so scale * grad fits float16's 65504 from
    # 2^9 on: <= 7 skips, and 20 warm-up steps leave a ~3x margin. It only grows again
    # after 2000 clean steps (growth_interval), beyond these 100: any later skip is a real
    # inf/NaN gradient, hence the exact count 0.
    warmup, steps = 20, 100
    for step in range(steps):
        batch = torch.randint(0, 2048, (128,), generator=gen).cuda()
        with torch.autocast("cuda", dtype=torch.float16):
            value = loss(model(x[batch]), y[batch])
        assert value.dtype == torch.float32  # losses run in float32 under autocast
        opt.zero_grad(set_to_none=True)
        scaler.scale(value).backward()
        before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        # GradScaler lowers the scale exactly when it skipped a step for inf/NaN grads.
        if step >= warmup and scaler.get_scale() < before:
            skipped_after_warmup += 1
    assert skipped_after_warmup == 0
    assert math.isfinite(float(value))
