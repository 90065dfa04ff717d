"""Engine internals: per-model lr / weight decay in one stack, weight-decay scope, the
scale learning-rate multiplier, huge-loss divergence, measurement hooks, progress / stop,
the result record."""

import json
import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import roundoff
from losslab.errors import LosslabError
from losslab.losses import get_loss
from losslab.models import mlp, parameter_scale
from losslab.train import ModelSpec, TrainConfig, train, train_many
from losslab.train.optim import Param, StackOptimizer
from losslab.train.tracker import DIVERGENCE_FACTOR


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float64)
    return {
        "x_train": x[:200],
        "y_train": y[:200],
        "x_dev": x[200:260],
        "y_dev": y[200:260],
        "x_test": x[260:320],
        "y_test": y[260:320],
    }


F64 = {"dtype": "float64", "device": "cpu", "batch_size": 50, "steps": 12, "eval_every": 4}

# A float64 step rounds each sum of K <= 64 terms (64 input features, batches of 50) to within
# gamma_64 = 64 eps64 = 7e-15 of its terms' magnitude; how much training amplifies that depends
# on the run (RMSprop's division by sqrt(v) + eps, an lr decay, a large lr), so it is measured
# as in tests/roundoff.py: the reference again from weights scaled by (1 + gamma_64). An
# error entering at step t grows no more than one entering at step 0, so T x (that run's
# distance + gamma_64 |x|) bounds a difference that is round-off only.
GAMMA = 64 * 2.0**-53


def _shaken(model):
    return roundoff.shaken(model, GAMMA)


def _bound(steps, reference, moved):
    bound = roundoff.bound(steps, reference, moved, GAMMA)
    # Past 1e-6 the bound would hide a real bug (the second model's weight decay left out
    # moves its weights by ~T lr wd |w| = 12 x 5e-3 x 1e-2 x 0.1 = 6e-5): too chaotic to
    # compare, and the test must say so rather than pass.
    assert bound < 1e-6, f"round-off amplified to {bound:.1e}"
    return bound


@pytest.mark.parametrize(
    "optimizer, decay",
    [("sgd", "weights"), ("momentum", "weights"), ("rmsprop", "all"), ("adam", "weights")],
)
def test_one_stack_with_three_learning_rates_equals_three_runs(digits, optimizer, decay):
    """Per-model lr and weight decay inside ONE stack (with an lr decay on top) train each
    model as a separate run with that lr and weight decay would."""
    hparams = [
        {"lr": 0.02, "weight_decay": 0.0},
        {"lr": 0.005, "weight_decay": 1e-2},
        {"lr": 0.001, "weight_decay": 1e-3},
    ]
    specs = [ModelSpec("log", 1, lr=h["lr"], weight_decay=h["weight_decay"]) for h in hparams]
    config = TrainConfig(
        optimizer=optimizer, decay=decay, lr_decay="inverse_time", decay_rate=0.5, **F64
    )

    def net(seed):
        return mlp(64, [16], 10, seed=seed)

    stacked = train_many(net, specs, digits, config)
    # One run: every result carries the wall time of the same single run.
    assert len({r.seconds for r in stacked}) == 1
    for h, result in zip(hparams, stacked, strict=True):
        alone_config = TrainConfig.from_dict({**config.to_dict(), **h, "seed": 1})
        alone = train(net(1), digits, "log", alone_config)
        shaken = train(_shaken(net(1)), digits, "log", alone_config)
        # lr times the decay factor, grouped per model or not: <= 2 roundings apart.
        assert result.curves["lr"] == pytest.approx(alone.curves["lr"], rel=1e-15)
        # The stack's batched matmuls and per-model (M, 1, ...) lr / weight-decay multiplies
        # against the single model's path: round-off only, to the bound above.
        steps = config.steps
        for key in ("train_loss", "dev_loss", "test_loss", "train_batch_loss"):
            tol = _bound(steps, alone.curves[key], shaken.curves[key])
            np.testing.assert_allclose(result.curves[key], alone.curves[key], rtol=0, atol=tol)
        for p, q, r in zip(
            result.model.parameters(),
            alone.model.parameters(),
            shaken.model.parameters(),
            strict=True,
        ):
            tol = _bound(steps, q.detach().numpy(), r.detach().numpy())
            torch.testing.assert_close(p, q, rtol=0, atol=tol)


def test_weight_decay_all_matches_torch_weight_decay(digits):
    """decay="all" is torch.optim's weight_decay on every parameter (biases included)."""
    config = TrainConfig(
        lr=0.01,
        shuffle=False,
        batch_size=50,
        steps=8,
        eval_every=8,
        weight_decay=0.05,
        decay="all",
        optimizer="sgd",
        dtype="float64",
        device="cpu",
    )
    result = train(mlp(64, [20], 10, seed=2), digits, "log", config)
    reference = mlp(64, [20], 10, seed=2).double()
    opt = torch.optim.SGD(reference.parameters(), lr=0.01, weight_decay=0.05)
    x, y = torch.as_tensor(digits["x_train"]), torch.as_tensor(digits["y_train"])
    for step in range(8):
        start = (step % 4) * 50
        opt.zero_grad()
        F.cross_entropy(reference(x[start : start + 50]), y[start : start + 50]).backward()
        opt.step()
    for p, q in zip(result.model.parameters(), reference.parameters(), strict=True):
        # float64, 8 SGD steps of the same operations in other orders: each step rounds w to
        # an ulp and lr x gradient to lr gamma_64 of its terms (<= ~1): <= 8 x (1.1e-16 |w| +
        # 1e-2 x 7e-15) ~ 1e-15 absolute (SGD at lr 0.01 barely amplifies: slope 1 + lr |H|).
        # atol 1e-14 (10x); rtol 1e-12 for the larger weights.
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("multiplier", [0.0, 1.0, 7.0])
def test_scale_lr_multiplier_scales_the_step_of_the_loss_scales(digits, multiplier):
    """One full-batch SGD step: R1, R2 move by -multiplier x lr x dL/dR (autograd on the
    unstacked model and a fresh loss), the weights by -lr x dL/dW whatever the multiplier."""
    n = len(digits["y_train"])
    config = TrainConfig(
        optimizer="sgd",
        lr=0.05,
        batch_size=n,
        steps=1,
        eval_every=1,
        shuffle=False,
        dtype="float64",
        device="cpu",
        scale_lr_multiplier=multiplier,
    )
    [r] = train_many(
        lambda s: mlp(64, [16], 10, bias=False, seed=s),
        [("two_scale", 0, {"loss_kwargs": {"eta": 0.1}})],
        digits,
        config,
    )
    model = mlp(64, [16], 10, bias=False, seed=0).double()
    # The engine initialises R1 = R(alpha^0) from a number (as attach(float) does), then
    # differentiates through the model's R: the same two calls here.
    loss = get_loss("two_scale", eta=0.1).double().attach(float(parameter_scale(model).detach()))
    loss.attach(model)
    before = {k: v.detach().clone() for k, v in loss.named_parameters()}
    value = loss(model(torch.as_tensor(digits["x_train"])), torch.as_tensor(digits["y_train"]))
    value.backward()
    for name, p in loss.named_parameters():
        expected = before[name] - multiplier * 0.05 * p.grad
        # float64, one step: dL/dR sums 200 per-sample terms (of size ~0.1 at most) in another
        # order, gamma_200 = 2.2e-14 of them, times 7 x 0.05: <= ~1e-15 absolute against
        # R1 ~ 24, R2 ~ 240, i.e. <= 1e-16 relative, plus the update's rounding. rtol 1e-14.
        torch.testing.assert_close(
            dict(r.loss.named_parameters())[name], expected, rtol=1e-14, atol=0.0
        )
    for p, q in zip(r.model.parameters(), model.parameters(), strict=True):
        # The gradient entries sum 200 terms averaging <= 0.2: 0.05 x gamma_200 x 0.2 ~ 2e-16
        # absolute (atol 1e-15, 5x), plus two roundings of |q| <= 0.9 (rtol 1e-14).
        torch.testing.assert_close(p, q - 0.05 * q.grad, rtol=1e-14, atol=1e-15)


class _Grows(nn.Module):
    """Cross-entropy times ``factor`` after ``after`` training steps (finite, huge)."""

    def __init__(self, after: int, factor: float):
        super().__init__()
        self.after, self.factor, self.calls = after, factor, 0

    def forward(self, logits, target):
        self.calls += torch.is_grad_enabled()
        value = F.cross_entropy(logits, target)
        return value * self.factor if self.calls > self.after else value


def test_a_huge_but_finite_loss_is_divergence(digits):
    config = TrainConfig(
        lr=1e-3, device="cpu", dtype="float64", batch_size=50, steps=12, eval_every=4
    )
    # 10x past the documented factor diverges; 1e3, far inside it (and the ~2.3 starting loss
    # times 1e3 is still finite and ordinary), does not.
    huge, large = _Grows(after=5, factor=10 * DIVERGENCE_FACTOR), _Grows(after=5, factor=1e3)
    results = train_many(
        lambda s: mlp(64, [8], 10, seed=s), [(huge, 0), (large, 0)], digits, config
    )
    assert results[0].diverged and results[0].diverged_at == 6
    assert results[0].curves["step"] == [4.0]
    assert not results[1].diverged and results[1].steps_run == 12


class _Probe:
    """A measurement that records what the context hands it (for the tests below)."""

    def __init__(self, when="eval", needs_grads=False):
        self.name, self.when, self.needs_grads = "probe", when, needs_grads
        self.contexts = []

    def __call__(self, ctx):
        self.contexts.append(
            {
                "step": ctx.step,
                "models": ctx.models,
                "test_logits": ctx.logits("test").clone(),
                "predict": ctx.predict(ctx.inputs("test")),
                "labels": ctx.labels("test"),
                "grads": {k: v.clone() for k, v in ctx.grad_norms().items()}
                if self.needs_grads
                else None,
                "scales": ctx.loss_scales(),
            }
        )
        return [[("probe", "m", float(i))] for i in range(ctx.num_models)]


@pytest.mark.parametrize("engine", ["stack", "loop"])
def test_grad_norms_equal_autograd_on_the_unstacked_models(digits, engine):
    """One full-batch step of M = 3 models: the context's per-layer gradient norms equal
    those of torch.autograd on each initial model alone with its own loss."""
    n = len(digits["y_train"])
    config = TrainConfig(
        optimizer="sgd",
        lr=0.1,
        batch_size=n,
        steps=1,
        eval_every=1,
        shuffle=False,
        dtype="float64",
        device="cpu",
        engine=engine,
    )
    specs = [("log", 0), ("hinge", 1), ("two_scale", 2, {"loss_kwargs": {"eta": 0.1}})]
    probe = _Probe(needs_grads=True)

    def net(s):
        return mlp(64, [16, 12], 10, seed=s)

    results = train_many(net, specs, digits, config, measure=[probe])
    [seen] = probe.contexts
    x, y = torch.as_tensor(digits["x_train"]), torch.as_tensor(digits["y_train"])
    for i, (name, seed, *rest) in enumerate(specs):
        model = net(seed).double()
        loss = get_loss(name, **(rest[0]["loss_kwargs"] if rest else {})).double()
        if name == "two_scale":
            loss.attach(float(parameter_scale(model).detach())).attach(model)
        loss(model(x), y).backward()
        layers = {}
        for pname, p in model.named_parameters():
            layer = pname.rpartition(".")[0]
            layers[layer] = layers.get(layer, 0.0) + float(p.grad.pow(2).sum())
        assert set(seen["grads"]) == set(layers)
        for layer, square in layers.items():
            # float64: gradient entries sum 200 per-sample terms in another order (gamma_200 =
            # 2.2e-14 of the terms, of the order of the large entries that make up the norm);
            # then sums of <= 1040 squares, <= 1040 eps64 = 1.2e-13 relative. Bound ~2e-13; 5x.
            assert float(seen["grads"][layer][i]) == pytest.approx(math.sqrt(square), rel=1e-12)
        assert results[i].measurements == [(1, "probe", "m", float(i))]


def test_context_logits_and_predict_equal_the_returned_models(digits):
    """Final measurements see the returned (model, loss) pairs: logits through
    predict_logits (two-scale: R1 z / R), labels, predict(x) and loss scales."""
    config = TrainConfig(
        lr=0.01, device="cpu", dtype="float64", batch_size=50, steps=6, eval_every=3
    )
    specs = [("log", 0), ("hinge", 1), ("two_scale", 0, {"loss_kwargs": {"eta": 0.1}})]
    probe, final = _Probe(), _Probe(when="final")
    results = train_many(
        lambda s: mlp(64, [16], 10, bias=False, seed=s),
        specs,
        digits,
        config,
        measure=[probe, final],
    )
    assert [c["step"] for c in probe.contexts] == [3, 6]
    [ctx] = final.contexts
    assert ctx["models"] == [r.label for r in results]
    x, y = torch.as_tensor(digits["x_test"]), torch.as_tensor(digits["y_test"])
    assert torch.equal(ctx["labels"], y)
    with torch.no_grad():
        for i, r in enumerate(results):
            expected = r.model(x)
            if specs[i][0] == "two_scale":
                expected = r.loss.predict_logits(expected)
                assert ctx["scales"][i] == {"R1": float(r.loss.r1), "R2": float(r.loss.r2)}
            else:
                assert ctx["scales"][i] == {}
            # float64, same weights: batched vs single matmuls of 64 and 16 terms round to
            # gamma_64 = 7e-15 of the terms' magnitude (<= ~10 here): ~7e-14 absolute, and
            # predict_logits's R1 / R keeps two-scale logits at that size. 1e-12 (~15x).
            torch.testing.assert_close(ctx["test_logits"][i], expected, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(ctx["predict"][i], expected, rtol=1e-12, atol=1e-12)
            assert r.measurements == [
                (3, "probe", "m", float(i)),
                (6, "probe", "m", float(i)),
                (6, "probe", "m", float(i)),
            ]


def test_bad_measurements_are_losslab_errors(digits):
    class Wrong:
        name, when, needs_grads = "wrong", "sometimes", False

        def __call__(self, ctx):
            return []

    with pytest.raises(LosslabError, match="when must be"):
        train_many(lambda s: mlp(64, [], 10, seed=s), ["log"], digits, measure=[Wrong()])
    with pytest.raises(LosslabError, match="Measurement objects"):
        train_many(lambda s: mlp(64, [], 10, seed=s), ["log"], digits, measure=[print])


def test_progress_reports_and_stop_interrupts_at_the_next_step(digits, tmp_path):
    """progress sees every evaluation; a stop set during step 7 ends the run after step 7
    with one more evaluation, every result marked interrupted; resuming its checkpoint
    finishes the run exactly as an uninterrupted one."""
    base = {"lr": 0.01, "device": "cpu", "batch_size": 50, "eval_every": 5, "steps": 20}
    specs = [("log", 0), ("hinge", 1)]

    def net(s):
        return mlp(64, [16], 10, seed=s)

    reports = []
    stop = threading.Event()

    def progress(info):
        reports.append(info)
        if info["step"] >= 7:
            stop.set()

    path = str(tmp_path / "run.pt")
    first = train_many(
        net, specs, digits, TrainConfig(**base, checkpoint_path=path), progress=progress, stop=stop
    )
    evaluated = [r for r in reports if r["step"] % 5 == 0]
    assert evaluated[0]["step"] == 5 and evaluated[0]["models"] == 2
    assert evaluated[0]["steps"] == 20 and evaluated[0]["elapsed"] >= 0
    assert set(evaluated[0]["last_eval"]) >= {"test_accuracy", "train_loss"}
    stopped_at = next(r["step"] for r in reports if r["step"] >= 7) + 1
    for r in first:
        assert r.interrupted and r.steps_run == stopped_at
        assert r.curves["step"][-1] == stopped_at and r.to_dict()["interrupted"] is True
    resumed = train_many(net, specs, digits, TrainConfig(**base, checkpoint_path=path))
    straight = train_many(net, specs, digits, TrainConfig(**base))
    for a, b in zip(resumed, straight, strict=True):
        assert not a.interrupted and a.steps_run == 20
        # The resumed run has one extra evaluation (at the interruption). Exact: the checkpoint
        # holds every float of the state, so the remaining steps repeat the same operations.
        assert [
            v for s, v in zip(a.curves["step"], a.curves["test_loss"], strict=True) if s % 5 == 0
        ] == b.curves["test_loss"]
        for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
            assert torch.equal(p, q)


def test_result_record_holds_the_resolved_configuration(digits):
    config = TrainConfig(device="cpu", batch_size=500, steps=2, eval_every=2, weight_decay=1e-4)
    specs = [ModelSpec("alpha", 3, {"alpha": 4}, lr=1e-2), ModelSpec("log", 1)]
    results = train_many(lambda s: mlp(64, [8], 10, seed=s), specs, digits, config)
    record = json.loads(json.dumps(results[0].to_dict(), allow_nan=False))
    assert record["schema"] == 1 and record["interrupted"] is False
    assert record["measurements"] == []
    cfg = record["config"]
    assert cfg["loss"]["name"] == "alpha" and cfg["loss"]["kwargs"] == {"alpha": 4}
    assert cfg["lr"] == 1e-2 and cfg["weight_decay"] == 1e-4 and cfg["seed"] == 3
    assert cfg["train"]["lr"] == 1e-2 and cfg["train"]["decay"] == "weights"
    assert cfg["train"]["batch_size"] == 500 and cfg["train"]["batch_size_used"] == 200
    assert cfg["model"]["class"] == "MLP" and cfg["model"]["parameters"] == 64 * 8 + 8 + 8 * 10 + 10
    assert cfg["data"]["num_classes"] == 10 and cfg["data"]["n_train"] == 200
    assert cfg["versions"]["torch"] == torch.__version__
    assert results[1].to_dict()["config"]["lr"] == config.lr


def test_the_users_loss_module_is_left_as_it_was(digits):
    loss = get_loss("two_scale", eta=0.1)
    assert loss.validate
    train(
        mlp(64, [8], 10, bias=False, seed=0),
        digits,
        loss,
        TrainConfig(device="cpu", batch_size=50, steps=2, eval_every=2),
    )
    assert loss.validate


@pytest.mark.parametrize("lrs", [(0.1, 0.1), (0.1, 0.3)])
def test_loss_scales_and_biases_are_not_weight_decayed(lrs):
    """With zero gradients, SGD moves a decayed weight by -lr * wd * w (per model) and leaves
    biases (decay="weights") and loss-owned scales where they are."""
    weight = nn.Parameter(torch.ones(2, 3, 4, dtype=torch.float64))
    bias = nn.Parameter(torch.ones(2, 4, dtype=torch.float64))
    scale = nn.Parameter(torch.ones((), dtype=torch.float64))
    params = [
        Param(weight, None, decayed=True),
        Param(bias, None, decayed=False),
        Param(scale, 1, decayed=False, scale=True),
    ]
    config = TrainConfig(optimizer="sgd", scale_lr_multiplier=3.0)
    opt = StackOptimizer(config, params, lrs, [0.5, 0.2], torch.device("cpu"), torch.float64)
    for p in (weight, bias, scale):
        p.grad = torch.zeros_like(p)
    opt.step()
    for m, (lr, wd) in enumerate(zip(lrs, (0.5, 0.2), strict=True)):
        # float64 w - lr (wd w) or w (1 - lr wd) at w = 1: <= 3 roundings, 3.3e-16; 1e-15.
        expected = torch.full((3, 4), 1 - lr * wd, dtype=torch.float64)
        torch.testing.assert_close(weight[m], expected, rtol=1e-15, atol=0)
    assert torch.equal(bias, torch.ones(2, 4, dtype=torch.float64))
    assert float(scale.detach()) == 1.0
