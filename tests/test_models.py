"""Tests of losslab.models: the factories, for_data, parameter_scale and the model stack.

References are independent of the code under test: parameter counts worked out by hand
from the layer tables, float64 NumPy re-implementations of the small nets, each model's
own forward/backward (the stack must equal M separate models), and ``torch.optim`` run
on M separate models (one optimizer over the stack must equal M optimizers).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from losslab.errors import LosslabError
from losslab.models import (
    MODELS,
    for_data,
    get_model,
    janocha_convnet,
    lenet5,
    mlp,
    mnist1d_cnn,
    mnist1d_mlp,
    models_for,
    parameter_scale,
    stack_models,
    vgg_small,
)

# One small configuration per registered model and per variant (batch-norm, dropout,
# no bias, other activations), in float64: (registry name, sample shape, factory kwargs).
CASES = {
    "mlp": ("mlp", (6,), {"hidden": [7, 5], "classes": 3}),
    "mlp_linear": ("mlp", (6,), {"hidden": [], "classes": 3}),
    "mlp_bn": ("mlp", (2, 3), {"hidden": [7, 5], "classes": 3, "batchnorm": True}),
    "mlp_dropout": ("mlp", (6,), {"hidden": [7], "classes": 3, "dropout": 0.5}),
    "mlp_tanh_nobias": (
        "mlp",
        (6,),
        {"hidden": [7, 5], "classes": 3, "activation": "tanh", "bias": False, "init": "xavier"},
    ),
    "mlp_prelu": ("mlp", (6,), {"hidden": [7], "classes": 3, "activation": "prelu"}),
    "janocha_convnet": (
        "janocha_convnet",
        (1, 8, 8),
        {"channels": 4, "hidden": 6, "classes": 3, "dropout": 0.25},
    ),
    "janocha_convnet_nobn": (
        "janocha_convnet",
        (2, 8, 8),
        {"channels": 4, "hidden": 6, "classes": 3, "batchnorm": False},
    ),
    "lenet5": ("lenet5", (1, 16, 16), {"classes": 3}),
    "vgg_small": ("vgg_small", (1, 8, 8), {"width": 2, "classes": 3}),
    "vgg_small_nobn": ("vgg_small", (1, 8, 8), {"width": 2, "classes": 3, "batchnorm": False}),
    "mnist1d_mlp": ("mnist1d_mlp", (12,), {"hidden": 5}),
    "mnist1d_cnn": ("mnist1d_cnn", (12,), {"channels": 3}),
}
M = 3

EPS64 = 2.0**-53
# The stack runs the same float64 layers as M separate models with other kernels (bmm, vmap,
# batched convs), so each entry is the same sum of K terms in another order: rounded to
# gamma_K = K eps64 of the terms' magnitude. The longest sums here are the weight gradients of
# the convnets, over batch x positions = 6 x 256 (K <= 1536: gamma_K = 1.7e-13), with terms
# of size <= ~16; batch-norm over 6 samples divides by their sd (~3x more). Worst case
# ~1e-11 absolute (measured <= 7e-15); outputs, buffers and parameters are no worse.
# The optimizer test adds 3 steps whose updates depend on a gradient's round-off only through
# lr (SGD) or lr eps / (|g| + eps) (Adam, RMSprop: nearly sign(g) steps), so the bound holds.
F64 = {"rtol": 1e-11, "atol": 1e-11}


def _gen(seed: int = 0) -> torch.Generator:
    # Inputs from their own generator: the global one depends on what else ran in this worker.
    return torch.Generator().manual_seed(seed)


def _models(case: str, seeds=range(M)) -> tuple[list[nn.Module], tuple[int, ...]]:
    name, shape, kwargs = CASES[case]
    kwargs = dict(kwargs)
    classes = kwargs.pop("classes", 10)
    return [for_data(name, shape, classes, seed=s, **kwargs).double() for s in seeds], shape


def _has(model: nn.Module, kind: type) -> bool:
    return any(isinstance(m, kind) for m in model.modules())


def _per_model_grad(stack, name: str, index: int, like: torch.Tensor) -> torch.Tensor:
    grad = stack.stacked(name).grad[index]
    # the fast path stores Linear weights transposed, (D_in, D_out)
    return grad.T if stack.path == "mlp" and like.dim() == 2 else grad


def test_cases_cover_every_registered_model():
    assert {name for name, _, _ in CASES.values()} == set(MODELS)


# --------------------------------------------------------------------------- factories


def test_parameter_counts_match_the_layer_tables():
    def count(model):
        return sum(p.numel() for p in model.parameters())

    # 5 x 25 + 25, 25 x 25 x 3 + 25 twice, 125 x 10 + 10 (Greydanus 2020, MNIST-1D CNN)
    assert count(mnist1d_cnn()) == 150 + 1900 + 1900 + 1260 == 5210
    assert count(mnist1d_mlp()) == 4100 + 10100 + 1010 == 15210
    # classic CIFAR LeNet-5: conv 3->6, 6->16 (5x5), fc 400-120-84-10
    assert count(lenet5()) == 456 + 2416 + 48120 + 10164 + 850 == 62006
    # Janocha: three 5x5x64 convs (+ BN), 32 -> 16 -> 8 -> 4, FC 1024->128->10
    assert count(janocha_convnet()) == 4864 + 2 * 102464 + 3 * 128 + 131200 + 1290
    # Janocha MNIST net 784-512x5-10 (1.46M; Janocha & Czarnecki 2017, section 3)
    assert count(mlp(784, [512] * 5, 10)) == 401920 + 4 * 262656 + 5130
    # VGG-like: 3x3 convs 64, 128, 256, 256, 512 x 4 (+ BN), Linear 512 -> 10
    convs = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512)] + [(512, 512)] * 3
    expected = sum(9 * a * b + b for a, b in convs) + 2 * sum(b for _, b in convs) + 5130
    assert count(vgg_small()) == expected == 9231114
    assert count(vgg_small(batchnorm=False)) == expected - 2 * sum(b for _, b in convs)


@pytest.mark.parametrize(
    ("model", "x", "classes"),
    [
        (mlp(2, [200] * 2, 4), torch.zeros(5, 2), 4),
        (mlp(784, [], 10), torch.zeros(5, 1, 28, 28), 10),
        (janocha_convnet(), torch.zeros(2, 3, 32, 32), 10),
        (janocha_convnet(in_channels=1, image_size=28), torch.zeros(2, 28, 28), 10),
        (lenet5(classes=20), torch.zeros(2, 3, 32, 32), 20),
        (vgg_small(width=4), torch.zeros(2, 3, 32, 32), 10),
        (mnist1d_mlp(), torch.zeros(5, 40), 10),
        (mnist1d_cnn(), torch.zeros(5, 1, 40), 10),
    ],
)
def test_factory_output_shapes(model, x, classes):
    assert model.eval()(x).shape == (x.shape[0], classes)


def test_janocha_convnet_layout():
    net = janocha_convnet()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(64, (5, 5))] * 3
    pools = [m for m in net.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert [type(p) for p in pools] == [nn.MaxPool2d, nn.AvgPool2d, nn.AvgPool2d]
    assert all(p.kernel_size == 3 and p.stride == 2 for p in pools)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 3
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(1024, 128), (128, 10)]


def test_mlp_without_hidden_layers_is_affine():
    net = mlp(5, [], 3, seed=1).double()
    (linear,) = [m for m in net.modules() if isinstance(m, nn.Linear)]
    x = np.random.default_rng(0).normal(size=(4, 5))
    w, b = linear.weight.detach().numpy(), linear.bias.detach().numpy()
    expected = x @ w.T + b
    # float64 dot products of 5 terms plus the bias on both sides: each rounded to within
    # gamma_6 = 6 eps64 of its terms' magnitude |x| |w| + |b|; 2x for the two sides.
    bound = 2 * 6 * EPS64 * (np.abs(x) @ np.abs(w).T + np.abs(b)).max()
    np.testing.assert_allclose(
        net(torch.from_numpy(x)).detach().numpy(), expected, rtol=0, atol=bound
    )


def test_mnist1d_mlp_matches_numpy_residual_formula():
    net = mnist1d_mlp(init="torch", seed=3).double()
    w1, b1, w2, b2, w3, b3 = [p.detach().numpy() for p in net.parameters()]
    x = np.random.default_rng(1).normal(size=(6, 40))
    h = np.maximum(0.0, x @ w1.T + b1)
    h = h + np.maximum(0.0, h @ w2.T + b2)
    expected = h @ w3.T + b3
    # Three float64 layers of K = 40, 100, 100 terms: an error entering a layer is carried on
    # through |W|, so the output is within (40 + 100 + 100 + 4) eps64 of the same net run on
    # absolute values (the magnitude of every term); 2x for the two sides.
    m = np.abs(x) @ np.abs(w1).T + np.abs(b1)
    m = m + m @ np.abs(w2).T + np.abs(b2)
    bound = 2 * 244 * EPS64 * (m @ np.abs(w3).T + np.abs(b3)).max()
    np.testing.assert_allclose(
        net(torch.from_numpy(x)).detach().numpy(), expected, rtol=0, atol=bound
    )


def test_mnist1d_cnn_lengths_follow_the_paper():
    seen = []
    net = mnist1d_cnn()
    for conv in [m for m in net.modules() if isinstance(m, nn.Conv1d)]:
        conv.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[1:])))
    net(torch.zeros(2, 40))
    assert seen == [(25, 19), (25, 10), (25, 5)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_seed_same_weights_and_different_seed_different(case):
    (a, b), _ = _models(case, seeds=[4, 4])
    (c,), _ = _models(case, seeds=[5])
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name
    weights = [p for p in a.parameters() if p.dim() >= 2]
    other = [p for p in c.parameters() if p.dim() >= 2]
    assert all(not torch.equal(p, q) for p, q in zip(weights, other, strict=True))


def test_seed_does_not_touch_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    mlp(3, [4], 2, seed=9)
    janocha_convnet(seed=9, channels=2, hidden=2)
    assert torch.equal(torch.rand(3), expected)


def test_he_init_has_the_right_variance():
    net = mlp(400, [300], 2, seed=0)
    weight = net[1].weight.detach().double()
    # 120,000 N(0, 2/400) draws: the mean's standard error is sqrt(2/400 / 1.2e5) = 2.0e-4 and
    # the variance's relative one sqrt(2 / 1.2e5) = 0.41%; 1e-3 and 2% are ~5 of them (a random
    # seed fails with probability ~1e-6; measured 0.1 and 0.9 standard errors).
    assert weight.mean().abs() < 1e-3
    assert weight.var().item() == pytest.approx(2 / 400, rel=0.02)


# --------------------------------------------------------------------------- registry, for_data


def test_get_model_unknown_name_and_bad_keyword():
    with pytest.raises(LosslabError, match="lenet5"):
        get_model("lenet")
    with pytest.raises(LosslabError, match="accepts"):
        get_model("lenet5", hidden=3)


@pytest.mark.parametrize(
    ("name", "shape", "expected"),
    [
        ("mlp", (2,), {"in_features": 2}),
        ("mlp", (1, 28, 28), {"in_features": 784}),
        ("mnist1d_mlp", (40,), {"in_features": 40}),
        ("janocha_convnet", (3, 32, 32), {"in_channels": 3, "image_size": 32}),
        ("lenet5", (28, 28), {"in_channels": 1, "image_size": 28}),
        ("vgg_small", (1, 8, 8), {"in_channels": 1, "image_size": 8}),
        ("mnist1d_cnn", (40,), {"length": 40}),
        ("mnist1d_cnn", (1, 40), {"length": 40}),
    ],
)
def test_for_data_sizes_the_model(name, shape, expected):
    net = for_data(name, shape, 7, seed=2)
    reference = get_model(name, classes=7, seed=2, **expected)
    assert repr(net) == repr(reference)
    for p, q in zip(net.parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q)
    assert net.eval()(torch.zeros(2, *shape)).shape == (2, 7)


def test_for_data_passes_the_other_keywords():
    net = for_data("mlp", (4,), 3, hidden=[5, 6], dropout=0.5, batchnorm=True, bias=False)
    assert sum(isinstance(m, nn.Dropout) for m in net) == 2
    assert sum(isinstance(m, nn.BatchNorm1d) for m in net) == 2
    assert all(m.bias is None for m in net if isinstance(m, nn.Linear))


def test_models_for_lists_what_fits():
    assert models_for((40,)) == ["mlp", "mnist1d_mlp", "mnist1d_cnn"]
    assert set(models_for((3, 32, 32))) == {
        "mlp",
        "mnist1d_mlp",
        "janocha_convnet",
        "lenet5",
        "vgg_small",
    }
    assert "lenet5" not in models_for((1, 8, 8))


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("janocha_convnet", (40,), 10), {}, "fit this shape: mlp, mnist1d_mlp, mnist1d_cnn"),
        (("lenet5", (3, 32, 20), 10), {}, "square images"),
        (("mnist1d_cnn", (3, 32, 32), 10), {}, "1-D signals"),
        (("mlp", (2,), 1), {}, "num_classes"),
        (("mlp", (0,), 3), {}, "input_shape"),
        (("mlp", 5, 3), {}, "input_shape"),
        (("mlp", (2,), 3), {"classes": 4}, "classes"),
        (("lenet5", (3, 32, 32), 3), {"image_size": 32}, "image_size"),
        (("lenet5", (3, 32, 32), 3), {"dropout": 0.5}, "accepts"),
        (("resnet", (3, 32, 32), 3), {}, "Valid model names"),
    ],
)
def test_for_data_errors(args, kwargs, match):
    with pytest.raises(LosslabError, match=match):
        for_data(*args, **kwargs)


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (mlp, {"in_features": 2, "hidden": [0]}, "hidden"),
        (mlp, {"in_features": 2, "dropout": 1.0}, "dropout"),
        (mlp, {"in_features": 2, "seed": 1, "generator": torch.Generator()}, "either"),
        (mlp, {"in_features": 2, "seed": "1"}, "seed"),
        (mlp, {"in_features": 2, "activation": "relux"}, "relu"),
        (janocha_convnet, {"kernel_size": 4}, "odd"),
        (lenet5, {"image_size": 8}, "image_size"),
    ],
)
def test_factory_argument_errors(factory, kwargs, match):
    with pytest.raises(LosslabError, match=match):
        factory(**kwargs)


@pytest.mark.parametrize(
    ("model", "x"),
    [
        (mlp(4, [3], 2), torch.zeros(2, 5)),
        (janocha_convnet(channels=2, hidden=2), torch.zeros(2, 32, 32)),
        (lenet5(), torch.zeros(2, 1, 32, 32)),
        (mnist1d_cnn(), torch.zeros(2, 2, 40)),
    ],
)
def test_wrong_input_shape_is_a_losslab_error(model, x):
    with pytest.raises(LosslabError, match="expects"):
        model(x)


# --------------------------------------------------------------------------- parameter_scale


def test_parameter_scale_is_the_product_of_layer_norms():
    net = mlp(3, [4, 5], 2, seed=0).double()
    layers = [m for m in net if isinstance(m, nn.Linear)]
    expected = math.prod(
        math.sqrt(sum(float((p.detach().numpy() ** 2).sum()) for p in lin.parameters()))
        for lin in layers
    )
    # A product of 3 norms, each the root of <= 30 positive squares: <= 3 x (30 + 2) eps64
    # ~ 1e-14 relative; 1e-13.
    assert parameter_scale(net).item() == pytest.approx(expected, rel=1e-13)


def test_bias_free_relu_net_factors_as_r_times_unit_net():
    net = mlp(3, [6, 5], 4, bias=False, seed=1).double()
    x = torch.randn(7, 3, dtype=torch.float64, generator=_gen())
    r = parameter_scale(net)
    unit = copy.deepcopy(net)
    with torch.no_grad():
        for layer in unit:
            if isinstance(layer, nn.Linear):
                layer.weight /= layer.weight.norm()
    # Each unit weight is W / ||W|| with ||W|| a root of <= 30 squares: ~32 eps64 relative, and
    # r a product of three such norms. The net is linear in each layer's weights, so the two
    # sides differ by ~(3 x 32 + the matmuls' 6 + 5 + 3) eps64 ~ 1.2e-14 of the output's
    # magnitude |x| |W1| |W2| |W3|; 10x.
    magnitude = x.abs()
    for layer in net:
        if isinstance(layer, nn.Linear):
            magnitude = magnitude @ layer.weight.detach().abs().T
    bound = 10 * 110 * EPS64 * float(magnitude.max())
    torch.testing.assert_close(net(x), r * unit(x), rtol=0, atol=bound)


# --------------------------------------------------------------------------- the model stack


@pytest.mark.parametrize("case", sorted(CASES))
def test_stack_forward_equals_each_model_in_eval_mode(case):
    models, shape = _models(case)
    for model in models:
        model.eval()
    stack = stack_models(models).eval()
    x = torch.randn(5, *shape, dtype=torch.float64, generator=_gen(0))
    xs = torch.randn(M, 5, *shape, dtype=torch.float64, generator=_gen(1))
    with torch.no_grad():
        torch.testing.assert_close(stack(x), torch.stack([m(x) for m in models]), **F64)
        torch.testing.assert_close(
            stack(xs), torch.stack([m(xs[i]) for i, m in enumerate(models)]), **F64
        )
        one = xs[:, :1]
        torch.testing.assert_close(
            stack(one, per_model=True),
            torch.stack([m(one[i]) for i, m in enumerate(models)]),
            **F64,
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_stack_training_forward_gradients_and_running_stats(case):
    models, shape = _models(case)
    if any(_has(m, nn.Dropout) for m in models):
        for model in models:
            for layer in model.modules():
                if isinstance(layer, nn.Dropout):
                    layer.p = 0.0
    stack = stack_models(models).train()
    x = torch.randn(M, 6, *shape, dtype=torch.float64, generator=_gen())
    target = torch.randint(0, 3, (M, 6), generator=_gen())
    out = stack(x)
    loss = sum(F.cross_entropy(out[i], target[i]) for i in range(M))
    loss.backward()
    for i, model in enumerate(models):
        model.train()
        ref = model(x[i])
        torch.testing.assert_close(out[i], ref, **F64)
        F.cross_entropy(ref, target[i]).backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(_per_model_grad(stack, name, i, p), p.grad, msg=name, **F64)
        for name, b in model.named_buffers():
            # float64 running statistics: one momentum update of a batch mean / variance; the
            # integer num_batches_tracked must be equal (rtol/atol do not apply to integers).
            torch.testing.assert_close(stack.stacked(name)[i], b, msg=name, **F64)


@pytest.mark.parametrize("case", ["mlp", "mlp_tanh_nobias", "janocha_convnet_nobn", "lenet5"])
def test_stack_parameter_scale_and_its_gradient(case):
    models, _ = _models(case)
    stack = stack_models(models)
    scale = stack.parameter_scale()
    assert scale.shape == (M,)
    scale.sum().backward()
    for i, model in enumerate(models):
        r = parameter_scale(model)
        torch.testing.assert_close(scale[i], r, **F64)
        r.backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(_per_model_grad(stack, name, i, p), p.grad, msg=name, **F64)


@pytest.mark.parametrize("case", ["mlp_bn", "mlp_prelu", "janocha_convnet", "mnist1d_mlp"])
def test_unstack_and_state_dict_round_trip(case):
    models, shape = _models(case)
    stack = stack_models(models).train()
    x = torch.randn(8, *shape, dtype=torch.float64, generator=_gen())
    with torch.no_grad():
        stack(x)  # moves the batch-norm running statistics away from their start
        for p in stack.parameters():
            p.add_(0.1)
    stack.eval()
    back = stack.unstack()
    assert [type(b) for b in back] == [type(m) for m in models]
    assert not any(b.training for b in back)
    with torch.no_grad():
        torch.testing.assert_close(torch.stack([b(x) for b in back]), stack(x), **F64)
        # Restacked and reloaded stacks run the same kernels on the same numbers: equal.
        restacked = stack_models(back)
        torch.testing.assert_close(restacked(x), stack(x), rtol=0, atol=0)
        other, _ = _models(case, seeds=range(10, 10 + M))
        fresh = stack_models(other).eval()
        fresh.load_state_dict(stack.state_dict())
        torch.testing.assert_close(fresh(x), stack(x), rtol=0, atol=0)


def test_stack_of_one_model_given_alone():
    net = mlp(3, [4], 2, dropout=0.5, seed=0).eval()
    stack = stack_models(net).eval()
    x = torch.randn(5, 3, generator=_gen())
    assert stack.num_models == 1
    # float32 sums of 3 and 4 terms, other kernels: ~4 eps32 = 2.4e-7 of terms |w x| <= ~2,
    # twice (two layers): ~1e-6 absolute; 2x.
    torch.testing.assert_close(stack(x), net(x).unsqueeze(0), rtol=0, atol=2e-6)


def test_stack_paths():
    assert stack_models([mlp(2, [3], 2, seed=s) for s in range(2)]).path == "mlp"
    assert stack_models([mlp(2, [3], 2, activation="prelu")] * 2).path == "vmap"
    assert stack_models([mnist1d_cnn()] * 2).path == "vmap"
    assert stack_models([mlp(2, [3], 2)] * 2, path="vmap").path == "vmap"
    with pytest.raises(LosslabError, match="path='vmap'"):
        stack_models([mnist1d_cnn()] * 2, path="mlp")
    with pytest.raises(LosslabError, match="path must be"):
        stack_models([mlp(2, [3], 2)], path="fast")


@pytest.mark.parametrize("path", ["mlp", "vmap"])
@pytest.mark.parametrize(
    ("optimizer", "kwargs"),
    [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}),
        (torch.optim.RMSprop, {"lr": 1e-2}),
        (torch.optim.Adam, {"lr": 1e-2, "weight_decay": 1e-3}),
    ],
)
def test_one_optimizer_over_the_stack_equals_one_per_model(path, optimizer, kwargs):
    # bias=False: a bias right before batch-norm has a zero gradient, which Adam would
    # turn into rounding noise of either sign
    models = [mlp(4, [6, 5], 3, batchnorm=True, bias=False, seed=s).double() for s in range(M)]
    stack = stack_models(models, path=path).train()
    stack_opt = optimizer(stack.parameters(), **kwargs)
    model_opts = [optimizer(m.parameters(), **kwargs) for m in models]
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(8, 4, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 3, (8,), generator=gen)
        stack_opt.zero_grad()
        out = stack(x)
        sum(F.cross_entropy(out[i], y) for i in range(M)).backward()
        stack_opt.step()
        for model, opt in zip(models, model_opts, strict=True):
            opt.zero_grad()
            F.cross_entropy(model.train()(x), y).backward()
            opt.step()
    for i, model in enumerate(models):
        for name, p in model.named_parameters():
            got = stack.stacked(name)[i]
            got = got.T if path == "mlp" and p.dim() == 2 else got
            torch.testing.assert_close(got, p, msg=name, **F64)


def _identity_dropout_stack(path: str, p: float, seed: int, m: int = 4):
    # Model i gets seed seed * m + i: m distinct dropout streams.
    # Linear(I) -> ReLU -> Dropout -> Linear(I) with inputs of ones: the output is the
    # dropout mask itself, so its statistics can be read off directly.
    models = []
    for _ in range(m):
        net = mlp(200, [200], 200, dropout=p).double()
        with torch.no_grad():
            for layer in net:
                if isinstance(layer, nn.Linear):
                    layer.weight.copy_(torch.eye(200))
        models.append(net)
    return stack_models(models, path=path, seeds=[seed * m + i for i in range(m)])


@pytest.mark.parametrize("path", ["mlp", "vmap"])
def test_stack_dropout_masks_per_model(path):
    p = 0.3
    stack = _identity_dropout_stack(path, p, seed=0).train()
    x = torch.ones(50, 200, dtype=torch.float64)
    out = stack(x)
    kept = out != 0
    # inverted dropout: the kept units are scaled by 1/(1-p). Exact: 1 times the rounded
    # 1 / (1 - p), then products with the identity and sums with zeros, which do not round.
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / (1 - p)), rtol=0, atol=0)
    # 40,000 Bernoulli(p) draws: standard error sqrt(.3 * .7 / 4e4) = 2.3e-3, 0.014 is 6 of them
    assert abs((~kept).double().mean().item() - p) < 0.014
    for i in range(1, 4):
        # Independent masks disagree on a fraction 2p(1-p) = 0.42 of 10,000 units (standard
        # error 4.9e-3); 0.39 is 6 standard errors below, shared masks give 0.
        assert (kept[0] != kept[i]).double().mean() > 0.39
    again = _identity_dropout_stack(path, p, seed=0).train()(x)
    assert torch.equal(out, again)
    other = _identity_dropout_stack(path, p, seed=1).train()(x)
    assert not torch.equal(out, other)
    # Identity weights, zero biases, ones in: exact in any summation order.
    torch.testing.assert_close(
        stack.eval()(x), torch.ones(4, 50, 200, dtype=torch.float64), rtol=0, atol=0
    )


@pytest.mark.parametrize("path", ["mlp", "vmap"])
def test_stack_dropout_gradient_uses_the_same_mask(path):
    stack = _identity_dropout_stack(path, 0.5, seed=2, m=2).train()
    x = torch.ones(5, 200, dtype=torch.float64)
    out = stack(x)
    out.sum().backward()
    mask = out.detach()
    # d(sum out)/d(b1) = column sums of the mask through W2 = I and the active ReLU: sums of
    # 0s and 2s (p = 0.5), exact in any order.
    torch.testing.assert_close(stack.stacked("1.bias").grad, mask.sum(1), rtol=0, atol=0)


@pytest.mark.parametrize("path", ["mlp", "vmap"])
def test_stack_dropout_never_reads_the_global_rng(path):
    models = [mlp(8, [16], 2, dropout=0.5, seed=s) for s in range(2)]
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    first = stack_models(models, path=path).train()(torch.ones(4, 8))
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(1)
    second = stack_models(models, path=path).train()(torch.ones(4, 8))
    assert torch.equal(first, second)  # default seeds 0..M-1, not the global generator


def test_stack_input_errors():
    stack = stack_models([mlp(4, [3], 2, seed=s) for s in range(2)])
    with pytest.raises(LosslabError, match="expects a shared batch"):
        stack(torch.zeros(5, 3))
    with pytest.raises(LosslabError, match="per-model input"):
        stack(torch.zeros(3, 5, 4), per_model=True)
    with pytest.raises(LosslabError, match="tensor"):
        stack([[0.0] * 4])
    with pytest.raises(LosslabError, match="torch.float32"):
        stack(torch.zeros(5, 4, dtype=torch.float64))


def test_stack_models_errors():
    with pytest.raises(LosslabError, match="at least one"):
        stack_models([])
    with pytest.raises(LosslabError, match="architecture"):
        stack_models([mlp(2, [3], 2), mlp(2, [4], 2)])
    with pytest.raises(LosslabError, match="architecture"):
        stack_models([mlp(2, [3], 2), mlp(2, [3], 2, dropout=0.5)])
    with pytest.raises(LosslabError, match="share one architecture"):
        stack_models([mlp(40, [3], 10), mnist1d_mlp()])
    with pytest.raises(LosslabError, match="nn.Module"):
        stack_models([mlp(2, [3], 2), "mlp"])
    with pytest.raises(LosslabError, match="seeds must be a sequence of 1"):
        stack_models([mlp(2, [3], 2)], seeds=[0, 1])
    with pytest.raises(LosslabError, match="seed must be an integer >= 0"):
        stack_models([mlp(2, [3], 2)], seeds=[-1])
