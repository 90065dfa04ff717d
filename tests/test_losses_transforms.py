"""Every loss and activation under torch.compile, torch.func (vmap, grad, hessian) and autocast.

The references are the same losses in eager mode (values and autograd gradients) in
float64, and for mixed precision the float32 computation. Compiling is slow on 2 cores:
the registry-wide tests build ONE graph for all losses (or activations) with the
``aot_eager`` backend, which runs Dynamo's capture (``fullgraph=True`` fails on any graph
break) and AOTAutograd's tracing of forward and backward but skips Inductor's C++ code
generation; one test compiles three representative losses with Inductor itself.

Tolerances (``TOL``): eager and transformed runs evaluate the same float64 formulas, possibly
grouped differently or through another code path (the eager hand-written backward vs. the
differentiable formula under transforms; Inductor's vectorised exp/log, accurate to ~1 ulp).
Values, gradients and Hessian entries here are <= ~5e2, each the result of <= ~50 roundings
(unit round-off 2**-53 = 1.1e-16) of intermediates <= ~1e3, with sums of <= N * C = 30
terms and no division by a small number: the two can differ by <= 50 * 1e3 * 1.1e-16 ~ 6e-12
absolute. rtol = atol = 1e-11 keeps a >= 2x margin on that worst case (the differences seen
are ~1e-14) while any wrong formula would be off by O(1).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import grad, hessian, vmap

from losslab.activations import ACTIVATIONS, get_activation
from losslab.losses import LOSSES, TWO_SCALE_LOSSES, get_loss

C = 5
N = 6
M = 3
NAMES = sorted(LOSSES)
TOL = {"rtol": 1e-11, "atol": 1e-11}


def _model(seed=0):
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, C, bias=False))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return net.double()


def _loss(name, **kwargs):
    """The loss with default settings; two-scale losses attached to a model."""
    loss = get_loss(name, **kwargs).double()
    return loss.attach(_model()) if name in TWO_SCALE_LOSSES else loss


def _data(seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(N, C, generator=gen, dtype=torch.float64)
    return logits, torch.randint(0, C, (N,), generator=gen)


def _eager_value_and_grad(loss, logits, labels):
    z = logits.clone().requires_grad_(True)
    value = loss(z, labels)
    (g,) = torch.autograd.grad(value, z)
    return value.detach(), g


def _check_compiled(names, backend):
    losses = [_loss(name) for name in names]

    def all_losses(z, t):
        return tuple(loss(z, t) for loss in losses)

    compiled = torch.compile(all_losses, fullgraph=True, dynamic=False, backend=backend)
    logits, labels = _data(1)
    z = logits.clone().requires_grad_(True)
    values = compiled(z, labels)
    for i, (name, loss) in enumerate(zip(names, losses, strict=True)):
        (g,) = torch.autograd.grad(values[i], z, retain_graph=True)
        want_value, want_grad = _eager_value_and_grad(loss, logits, labels)
        torch.testing.assert_close(values[i].detach(), want_value, **TOL, msg=name)
        torch.testing.assert_close(g, want_grad, **TOL, msg=name)


@pytest.mark.slow
def test_whole_registry_under_compile_fullgraph():
    _check_compiled(NAMES, "aot_eager")


@pytest.mark.slow
def test_representative_losses_under_inductor():
    # One softmax-statistics loss, one raw-logit loss, one two-scale loss. Inductor's caches
    # are keyed without ATEN_CPU_CAPABILITY: a kernel cached by a run at another SIMD level
    # (make test-matrix) would be reused and fail to compile, so this test compiles afresh.
    with torch._inductor.config.patch(force_disable_caches=True):
        _check_compiled(["cauchy_schwarz", "cubed_hinge", "two_scale"], "inductor")


def test_every_activation_under_compile_fullgraph():
    acts = [get_activation(name).double() for name in sorted(ACTIVATIONS)]

    def all_acts(x):
        return tuple(act(x).sum() for act in acts)

    compiled = torch.compile(all_acts, fullgraph=True, dynamic=False, backend="aot_eager")
    x = torch.linspace(-3, 3, 2 * 4 * 3, dtype=torch.float64).reshape(2, 4, 3)
    xc = x.clone().requires_grad_(True)
    values = compiled(xc)
    for i, act in enumerate(acts):
        (g,) = torch.autograd.grad(values[i], xc, retain_graph=True)
        xe = x.clone().requires_grad_(True)
        want = act(xe).sum()
        (want_grad,) = torch.autograd.grad(want, xe)
        torch.testing.assert_close(values[i].detach(), want.detach(), **TOL)
        torch.testing.assert_close(g, want_grad, **TOL)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_a_model_axis_equals_a_loop(name):
    loss = _loss(name, reduction="none")
    gen = torch.Generator().manual_seed(2)
    logits = 2 * torch.randn(M, N, C, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, C, (N,), generator=gen)
    got = vmap(lambda z: loss(z, labels))(logits)
    want = torch.stack([loss(z, labels) for z in logits])
    torch.testing.assert_close(got, want, **TOL)
    per_model = torch.randint(0, C, (M, N), generator=gen)  # each model its own labels
    got = vmap(loss)(logits, per_model)
    want = torch.stack([loss(z, t) for z, t in zip(logits, per_model, strict=True)])
    torch.testing.assert_close(got, want, **TOL)
    if name in TWO_SCALE_LOSSES:
        scales = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
        got = vmap(lambda z, r: loss(z, labels, scale=r))(logits, scales)
        want = torch.stack([loss(z, labels, scale=r) for z, r in zip(logits, scales, strict=True)])
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("name", NAMES)
def test_func_grad_and_hessian_equal_autograd(name):
    loss = _loss(name)
    logits, labels = _data(3)
    _, want_grad = _eager_value_and_grad(loss, logits, labels)
    torch.testing.assert_close(grad(lambda z: loss(z, labels))(logits), want_grad, **TOL)
    # Eager double backward (create_graph) runs the hand-written backward of the kernels
    # with differentiable ops; torch.func.hessian runs the plain formula: two independent
    # code paths that must agree.
    want = torch.autograd.functional.hessian(lambda z: loss(z, labels), logits)
    got = hessian(lambda z: loss(z, labels))(logits)
    torch.testing.assert_close(got, want, **TOL)
    flat = got.reshape(N * C, N * C)
    torch.testing.assert_close(flat, flat.T, **TOL)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_under_vmap_grad_hessian(name):
    act = get_activation(name).double()
    x = torch.linspace(-2.5, 2.5, M * N, dtype=torch.float64).reshape(M, N) + 0.01
    torch.testing.assert_close(vmap(act)(x), torch.stack([act(row) for row in x]), **TOL)
    xe = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(act(xe).sum(), xe)
    torch.testing.assert_close(grad(lambda v: act(v).sum())(x), want, **TOL)
    h = hessian(lambda v: act(v).sum())(x[0])
    diag = torch.autograd.functional.hessian(lambda v: act(v).sum(), x[0])
    torch.testing.assert_close(h, diag, **TOL)
