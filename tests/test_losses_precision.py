"""Mixed precision: float16 / bfloat16 logits, with and without torch.autocast, for every loss.

The reference is the same loss in float32 on the same (already rounded) logits: losslab
computes half-precision logits in float32, so the only error left is the final rounding
of the result (and of the gradient) to the output dtype. Logits reach +/-1e4 (the
README's promise), where a float16 computation of squares or cubes would overflow.
"""

from __future__ import annotations

import pytest
import torch

from losslab.losses import LOSSES, TWO_SCALE_LOSSES, get_loss

C = 6
NAMES = sorted(LOSSES)
HALF = [torch.float16, torch.bfloat16]
# One rounding to the output dtype: relative error <= 2^-11 (float16) / 2^-8 (bfloat16);
# the bound is 1%, far looser. atol covers values that round to ~0.
ROUNDING = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}


def _loss(name):
    loss = get_loss(name)
    return loss.attach(2.0) if name in TWO_SCALE_LOSSES else loss


def _logits(dtype, scale):
    gen = torch.Generator().manual_seed(0)
    x = scale * (2 * torch.rand(8, C, generator=gen) - 1)
    x[0, :2] = torch.tensor([scale, -scale])
    return x.to(dtype), torch.randint(0, C, (8,), generator=gen)


def _value_and_grad(loss, logits, labels):
    z = logits.clone().requires_grad_(True)
    value = loss(z, labels)
    (g,) = torch.autograd.grad(value, z)
    return value.detach(), g


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("scale", [3.0, 1e4])
def test_half_logits_under_autocast_give_float32_within_rounding(name, dtype, scale):
    logits, labels = _logits(dtype, scale)
    loss = _loss(name)
    want, want_grad = _value_and_grad(loss, logits.float(), labels)
    with torch.autocast("cpu", dtype=dtype):
        got, grad = _value_and_grad(loss, logits, labels)
    assert got.dtype == torch.float32 and grad.dtype == dtype
    assert torch.isfinite(got)
    # autocast keeps these ops in float32 and losslab casts half logits to float32 first: the
    # same float32 operations on the same numbers, bit-identical (a half-precision op slipping
    # in would be off by >= 2^-11 relative)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    _assert_rounded(grad, want_grad, dtype)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("scale", [3.0, 1e4])
def test_half_logits_without_autocast_are_float32_rounded_once(name, dtype, scale):
    logits, labels = _logits(dtype, scale)
    loss = _loss(name)
    want, want_grad = _value_and_grad(loss, logits.float(), labels)
    got, grad = _value_and_grad(loss, logits, labels)
    assert got.dtype == dtype and grad.dtype == dtype
    _assert_rounded(got, want, dtype)
    _assert_rounded(grad, want_grad, dtype)
    if dtype == torch.bfloat16:  # float32's range: finite whatever the logits
        assert torch.isfinite(got) and torch.isfinite(grad).all()
        # the promise (1%), implied by the one rounding above (2^-8 = 0.4%); 1e-6
        # absolute only for a value that is ~0
        assert float((got.float() - want).abs()) <= 0.01 * float(want.abs()) + 1e-6


def _assert_rounded(got, want, dtype):
    """got == want rounded to dtype, up to one rounding (inf exactly where want overflows)."""
    limit = torch.finfo(dtype).max
    overflow = want.abs() > limit
    assert torch.equal(torch.isinf(got), overflow), (got, want)
    eps = ROUNDING[dtype]
    # rtol: twice the one rounding. atol: float16 values below 6e-5 are subnormal, spaced
    # 2^-24 = 6e-8 apart, so their rounding error is absolute (<= 3e-8 < 2 eps 1e-3 = 1e-6);
    # bfloat16 has float32's range and needs none, its 8e-6 only matters for values ~0.
    torch.testing.assert_close(
        got.float()[~overflow], want[~overflow], rtol=2 * eps, atol=2 * eps * 1e-3
    )
