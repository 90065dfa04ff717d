"""The training engine: batched == one by one, plain-PyTorch parity, determinism,
divergence, early stopping, checkpoints."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import roundoff
from losslab.errors import LosslabError
from losslab.models import mlp, mnist1d_cnn
from losslab.seeding import draw_seed, seeded_global_rng, torch_generator
from losslab.train import ModelSpec, TrainConfig, train, train_many


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float64)
    return {
        "x_train": x[:400],
        "y_train": y[:400],
        "x_dev": x[400:500],
        "y_dev": y[400:500],
        "x_test": x[500:600],
        "y_test": y[500:600],
    }


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# Comparing two float64 runs that differ only in the order of their sums (the stack's batched
# matmuls against the loop's one matmul per model): K <= 64 terms per sum here (64 input
# features, batches of 50), so gamma_64 = 64 u; the bound is tests/roundoff.py's. Measured on
# the case that once failed on another machine, the bound sits ~50x above the difference.
U64 = 2.0**-53
GAMMA = 64 * U64
LOSS_CURVES = ("train_loss", "dev_loss", "test_loss", "train_batch_loss")


def _shaken(model):
    return roundoff.shaken(model, GAMMA)


def _bound(steps, reference, moved):
    return roundoff.bound(steps, reference, moved, GAMMA)


DIGITS_SIZES = {"train": 400, "dev": 100, "test": 100}


def _assert_same(a, b, shaken, steps, sizes, batch):
    """``a`` equals the reference run ``b`` to the round-off bound above; ``shaken`` is ``b``
    again from perturbed initial weights (see :func:`_shaken`); ``sizes``: samples per split."""
    for key in LOSS_CURVES:
        tol = _bound(steps, b.curves[key], shaken.curves[key])
        # Past 1e-5 the bound would hide the smallest bug worth finding (dropping the weight
        # decay 1e-3 moves weights by ~T lr wd |w| ~ 5e-5): the run would be too chaotic to
        # compare, and the test must say so rather than pass.
        assert tol < 1e-5, f"{key}: round-off amplified to {tol:.1e}"
        np.testing.assert_allclose(a.curves[key], b.curves[key], rtol=0, atol=tol)
    # Hinge losses pin wrong-class logits at the kink -1/2: a round-off tie may flip the argmax
    # of one sample, i.e. an accuracy may differ by one sample of its split (400 train, 100
    # dev/test samples in the digits fixture, or one batch).
    for key, n in [(f"{s}_accuracy", n) for s, n in sizes.items()] + [
        ("train_batch_accuracy", batch)
    ]:
        np.testing.assert_allclose(a.curves[key], b.curves[key], rtol=0, atol=1.001 / n)
    sa, sb, ss = _state(a.model), _state(b.model), _state(shaken.model)
    assert sa.keys() == sb.keys()
    for k in sa:
        tol = _bound(steps, sb[k].double().numpy(), ss[k].double().numpy())
        assert tol < 1e-5, f"{k}: round-off amplified to {tol:.1e}"
        torch.testing.assert_close(sa[k].double(), sb[k].double(), rtol=0, atol=tol)


F64 = {"dtype": "float64", "device": "cpu", "batch_size": 50, "steps": 24, "eval_every": 8}


@pytest.mark.parametrize(
    "batchnorm, seeds, optimizer",
    [
        (False, (0, 1), "adam"),
        (True, (0, 1), "adam"),
        (True, (2,), "momentum"),
        (False, (0, 3), "rmsprop"),
        (False, (1,), "sgd"),
    ],
)
def test_batched_equals_one_by_one(digits, batchnorm, seeds, optimizer):
    """The stack (shared batch with one seed, per-model batches with two) trains every model
    exactly as training it alone with the plain per-model loop, two-scale losses included."""
    losses = [("log", {}), ("hinge", {}), ("two_scale", {"eta": 0.1})]
    specs = [ModelSpec(name, seed, kwargs) for name, kwargs in losses for seed in seeds]
    # Adam's first steps move every weight by ~lr; RMSprop (no bias correction) by
    # lr / sqrt(1 - alpha) = 10 lr. At 10 * 0.01 the two-scale models of seed 3 pile samples
    # onto the eta threshold, where which scale a sample gets is decided by round-off, and
    # the shaken run drifts by 5e-6 on loss: too chaotic to compare. Equal step sizes instead.
    lr = 0.01 * math.sqrt(1 - 0.99) if optimizer == "rmsprop" else 0.01
    # decay="all": a bias that no weight decay touches has gradients near round-off on the
    # digits' constant pixels, which RMSprop's g / sqrt(v) scales up to lr-sized steps.
    config = TrainConfig(optimizer=optimizer, lr=lr, weight_decay=1e-3, decay="all", **F64)

    def net(seed):
        # A bias feeding batch-norm has an analytically zero gradient; Adam would turn its
        # round-off noise into lr-sized steps of random sign, so those nets have no bias.
        return mlp(64, [32, 16], 10, batchnorm=batchnorm, bias=not batchnorm, seed=seed)

    batched = train_many(net, specs, digits, config)
    for spec, result in zip(specs, batched, strict=True):
        cfg = TrainConfig.from_dict({**config.to_dict(), "seed": spec.seed})
        alone = train(net(spec.seed), digits, spec.loss, cfg, **spec.loss_kwargs)
        shaken = train(_shaken(net(spec.seed)), digits, spec.loss, cfg, **spec.loss_kwargs)
        _assert_same(result, alone, shaken, cfg.steps, DIGITS_SIZES, cfg.batch_size)
        if spec.loss == "two_scale":
            for name in ("r1", "r2"):
                mine, theirs, moved = (
                    float(getattr(r.loss, name).detach()) for r in (result, alone, shaken)
                )
                assert mine == pytest.approx(theirs, rel=0, abs=_bound(cfg.steps, theirs, moved))


def test_batched_convnet_vmap_path_equals_one_by_one():
    gen = torch.Generator().manual_seed(0)
    data = {
        "x_train": torch.randn(60, 40, generator=gen, dtype=torch.float64),
        "y_train": torch.randint(0, 10, (60,), generator=gen),
    }
    config = TrainConfig(
        lr=1e-2, dtype="float64", device="cpu", batch_size=20, steps=6, eval_every=3
    )
    specs = [ModelSpec("log", 0), ModelSpec("squared_hinge", 1)]
    batched = train_many(lambda s: mnist1d_cnn(seed=s), specs, data, config)
    for spec, result in zip(specs, batched, strict=True):
        cfg = TrainConfig.from_dict({**config.to_dict(), "seed": spec.seed})
        alone = train(mnist1d_cnn(seed=spec.seed), data, spec.loss, cfg)
        shaken = train(_shaken(mnist1d_cnn(seed=spec.seed)), data, spec.loss, cfg)
        _assert_same(result, alone, shaken, cfg.steps, {"train": 60}, cfg.batch_size)


def test_train_matches_a_plain_pytorch_loop(digits):
    """Independent reference: nn.Sequential + F.cross_entropy + torch.optim.Adam (foreach),
    batches taken in order (shuffle=False), no losslab code in the loop. Weight decay on
    the weight matrices only (the lecture notes' penalty): torch's own param groups."""
    config = TrainConfig(
        lr=0.01,
        shuffle=False,
        dtype="float64",
        device="cpu",
        batch_size=64,
        steps=15,
        eval_every=5,
        weight_decay=1e-4,
    )
    model = mlp(64, [20], 10, seed=4).double()
    reference = mlp(64, [20], 10, seed=4).double()
    result = train(model, digits, "log", config)
    x = torch.as_tensor(digits["x_train"])
    y = torch.as_tensor(digits["y_train"])
    groups = [
        {"params": [p for p in reference.parameters() if p.dim() >= 2], "weight_decay": 1e-4},
        {"params": [p for p in reference.parameters() if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.Adam(groups, lr=0.01, foreach=True)
    for step in range(15):
        start = (step % (400 // 64)) * 64
        loss = F.cross_entropy(reference(x[start : start + 64]), y[start : start + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p, q in zip(result.model.parameters(), reference.parameters(), strict=True):
        # Same float64 ops except fused vs foreach Adam and the engine's own matmul paths:
        # each of the 15 steps rounds sums of <= 64 terms to gamma_64 = 64 * 2**-53 ~ 7e-15
        # relative, ~1e-13 after 15 steps. Adam divides by sqrt(v_hat) + eps, which turns a
        # gradient error into an update error of at most lr * dg / (sqrt(v_hat) + eps); where
        # |g| is tiny that factor can reach ~1e3-1e4, hence rtol 1e-9 (and atol 1e-11 for
        # weights near zero, 1e-9 * their ~1e-2 scale).
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-11)
    with torch.no_grad():
        xt, yt = torch.as_tensor(digits["x_test"]), torch.as_tensor(digits["y_test"])
        acc = (reference(xt).argmax(1) == yt).double().mean().item()
    # Accuracies are k / 100: approx's 1e-6 relative admits no differing sample.
    assert result.final["test_accuracy"] == pytest.approx(acc)
    assert result.curves["step"] == [5.0, 10.0, 15.0]


def test_same_seed_is_bit_identical_and_common_random_numbers(digits):
    """Same seed -> identical runs on CPU; the same loss and seed twice in one stack train
    identically (same initial weights, same batches) while other models differ."""
    config = TrainConfig(lr=0.01, device="cpu", batch_size=50, steps=20, eval_every=10)
    specs = [("log", 0), ("cauchy_schwarz", 0), ("log", 0, {"label": "again"}), ("log", 1)]

    def net(s):
        return mlp(64, [32], 10, dropout=0.2, seed=s)

    first = train_many(net, specs, digits, config)
    second = train_many(net, specs, digits, config)
    assert first[0].curves == first[2].curves  # one seed: one stream of dropout masks
    assert first[0].curves != first[3].curves and first[0].curves != first[1].curves
    for a, b in zip(first, second, strict=True):
        assert a.curves == b.curves
        for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
            assert torch.equal(p, q)
    loop = TrainConfig.from_dict({**config.to_dict(), "engine": "loop"})
    same = train_many(net, specs, digits, loop)
    assert same[0].curves == same[2].curves  # loop: each seed owns its dropout masks too
    assert same[0].curves != same[3].curves and same[0].curves != same[1].curves
    nodrop = train_many(lambda s: mlp(64, [32], 10, seed=s), specs, digits, config)
    assert nodrop[0].curves == nodrop[2].curves


class _BlowsUp(nn.Module):
    """Cross-entropy that turns inf after ``after`` training steps (a diverging model)."""

    def __init__(self, after: int):
        super().__init__()
        self.after, self.calls = after, 0

    def forward(self, logits, target):
        self.calls += torch.is_grad_enabled()  # evaluations run under no_grad
        value = F.cross_entropy(logits, target)
        return value * math.inf if self.calls > self.after else value


@pytest.mark.parametrize("engine", ["stack", "loop"])
def test_divergence_is_reported_and_spares_siblings(digits, engine):
    config = TrainConfig(
        lr=0.01, device="cpu", dtype="float64", batch_size=50, steps=20, eval_every=5, engine=engine
    )

    def net(s):
        return mlp(64, [16], 10, seed=s)

    healthy = [("log", 0), ("hinge", 1)]
    results = train_many(net, [*healthy, (_BlowsUp(after=7), 0)], digits, config)
    reference = train_many(net, healthy, digits, config)
    shaken = train_many(lambda s: _shaken(net(s)), healthy, digits, config)
    bad = results[2]
    assert bad.diverged and bad.diverged_at == 8 and bad.steps_run == 8
    assert bad.curves["step"] == [5.0] and bad.final["step"] == 5.0
    for r, ref, moved in zip(results[:2], reference, shaken, strict=True):
        assert not r.diverged and r.steps_run == 20
        _assert_same(r, ref, moved, config.steps, DIGITS_SIZES, config.batch_size)


def test_all_models_diverging_stops_the_run(digits):
    config = TrainConfig(lr=0.01, device="cpu", batch_size=50, steps=100, eval_every=5)
    [bad] = train_many(lambda s: mlp(64, [], 10, seed=s), [(_BlowsUp(after=0), 0)], digits, config)
    assert bad.diverged and bad.diverged_at == 1 and bad.curves["step"] == []
    assert math.isnan(bad.final["test_accuracy"])


def test_early_stopping_restores_the_best_weights(digits):
    config = TrainConfig(
        lr=0.05,
        device="cpu",
        dtype="float64",
        batch_size=50,
        steps=400,
        eval_every=4,
        patience=2,
        monitor="dev_loss",
    )
    results = train_many(
        lambda s: mlp(64, [64], 10, seed=s), [("log", 0), ("l2", 1)], digits, config
    )
    for r in results:
        dev = r.curves["dev_loss"]
        best = int(np.argmin(dev))
        assert r.best_step == r.curves["step"][best]
        assert r.final == {k: v[best] for k, v in r.curves.items()}
        if r.stopped_early:
            assert r.steps_run == r.curves["step"][-1] < 400
            assert len(dev) - 1 - best == 2
        with torch.no_grad():
            x = torch.as_tensor(digits["x_dev"])
            acc = (r.model(x).argmax(1) == torch.as_tensor(digits["y_dev"])).double().mean()
        # The stack (bmm) and the restored module (mm) round differently in float32: a
        # near-tied row may flip its arg-max, so the two may differ by one sample of n.
        assert float(acc) == pytest.approx(r.final["dev_accuracy"], rel=0, abs=1.001 / len(x))
    assert any(r.stopped_early for r in results)


@pytest.mark.parametrize("engine", ["stack", "loop"])
def test_checkpoint_resume_is_exact(digits, tmp_path, engine):
    """10 steps, checkpoint, a fresh process-like resume to 20 == 20 steps straight
    (dropout, Adam state, batch order mid-epoch and the curves all carry over)."""
    base = {"lr": 0.01, "device": "cpu", "batch_size": 30, "eval_every": 5, "engine": engine}
    specs = [("log", 0), ("two_scale", 1, {"loss_kwargs": {"eta": 0.5}})]

    def net(s):
        return mlp(64, [16], 10, dropout=0.3, seed=s)

    straight = train_many(net, specs, digits, TrainConfig(steps=20, **base))
    path = str(tmp_path / "run.pt")
    train_many(net, specs, digits, TrainConfig(steps=10, checkpoint_path=path, **base))
    resumed = train_many(net, specs, digits, TrainConfig(steps=20, checkpoint_path=path, **base))
    for a, b in zip(straight, resumed, strict=True):
        assert a.curves == b.curves
        for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
            assert torch.equal(p, q)
    assert torch.equal(straight[1].loss.r2, resumed[1].loss.r2)
    other = TrainConfig(steps=20, checkpoint_path=path, **{**base, "batch_size": 10})
    with pytest.raises(LosslabError, match="other models or settings"):
        train_many(net, specs, digits, other)
    # Another learning rate or loss argument under the same path must not silently resume.
    other_lr = TrainConfig(steps=20, checkpoint_path=path, **{**base, "lr": 0.02})
    with pytest.raises(LosslabError, match="other models or settings.*lr"):
        train_many(net, specs, digits, other_lr)
    other_eta = [("log", 0), ("two_scale", 1, {"loss_kwargs": {"eta": 0.1}})]
    with pytest.raises(LosslabError, match="model 1"):
        train_many(net, other_eta, digits, TrainConfig(steps=20, checkpoint_path=path, **base))


def test_lr_decay_and_per_model_learning_rates(digits):
    config = TrainConfig(
        lr=0.1,
        lr_decay="inverse_time",
        decay_rate=1.0,
        optimizer="sgd",
        device="cpu",
        batch_size=100,
        steps=12,
        eval_every=4,
    )
    results = train_many(
        lambda s: mlp(64, [], 10, seed=s), [("log", 0), ("log", 0, {"lr": 0.01})], digits, config
    )
    # 4 steps per epoch: steps 4, 8, 12 are evaluated after epochs 0, 1, 2 ran.
    assert results[0].curves["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert results[1].curves["lr"] == pytest.approx([0.01, 0.005, 0.01 / 3])
    assert results[0].curves["train_loss"] != results[1].curves["train_loss"]


def test_trainable_scales_are_trained_and_attached(digits):
    config = TrainConfig(
        lr=0.05, device="cpu", batch_size=50, steps=30, eval_every=30, weight_decay=0.5
    )
    [r] = train_many(
        lambda s: mlp(64, [32], 10, bias=False, seed=s),
        [("two_scale", 0, {"loss_kwargs": {"eta": 0.01}})],
        digits,
        config,
    )
    from losslab.models import parameter_scale

    r0 = float(parameter_scale(mlp(64, [32], 10, bias=False, seed=0)).detach())
    assert float(r.loss.r2.detach()) > 10 * r0  # dL/dR2 < 0 on well-classified samples (eq. 15)
    assert r.loss._model is r.model


def test_user_errors_are_losslab_errors(digits):
    def net(s):
        return mlp(64, [], 10, seed=s)

    with pytest.raises(LosslabError, match="reduction='none'"):
        train_many(net, [ModelSpec("log", 0, {"reduction": "none"})], digits)
    with pytest.raises(LosslabError, match="dev set"):
        train_many(
            net,
            ["log"],
            {"x_train": digits["x_train"], "y_train": digits["y_train"]},
            TrainConfig(patience=3),
        )
    with pytest.raises(LosslabError, match="unknown loss"):
        train_many(net, ["log_loss"], digits)
    with pytest.raises(LosslabError, match="same architecture|share one"):
        train_many(lambda s: mlp(64, [s + 1], 10), [("log", 0), ("log", 1)], digits)
    with pytest.raises(LosslabError):
        train_many(net, [], digits)
    with pytest.raises(LosslabError):
        train_many(net, [("log", 0, 3)], digits)


def test_result_to_dict_is_json_clean(digits):
    import json

    config = TrainConfig(device="cpu", batch_size=50, steps=4, eval_every=2)
    [r] = train_many(
        lambda s: mlp(64, [], 10, seed=s),
        ["log"],
        {"x_train": digits["x_train"], "y_train": digits["y_train"]},
        config,
    )
    text = json.dumps(r.to_dict(), allow_nan=False)
    assert json.loads(text)["final"]["dev_accuracy"] is None


@pytest.mark.parametrize("engine", ["stack", "loop"])
def test_dropout_equals_torch_dropout_on_the_seed_stream(engine):
    """Both engines drop what PyTorch's own nn.Dropout drops with the global generator
    re-seeded from the spec seed's "dropout" stream. K models share their initial weights
    (the model function ignores the seed) and take one full-batch SGD step (lr 1, so the
    update is minus the gradient; no shuffling, so mask row i meets sample i); each update
    must equal the gradient of the plain module under its seed's masks. Shared masks, a
    missing 1/(1-p) or config.seed in place of the spec's seed would fail it."""
    k, p = 4, 0.5
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(32, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (32,), generator=gen)
    config = TrainConfig(
        optimizer="sgd",
        lr=1.0,
        batch_size=32,
        steps=1,
        eval_every=1,
        dtype="float64",
        device="cpu",
        engine=engine,
        seed=99,
        shuffle=False,
    )

    def net(_seed):
        return mlp(8, [16], 3, dropout=p, seed=0)

    specs = [("log", s) for s in range(3, 3 + k)]
    results = train_many(net, specs, {"x_train": x, "y_train": y}, config)
    start = net(0).double()
    updates = [r.model[1].weight.detach() - start[1].weight for r in results]
    for (_, seed), update in zip(specs, updates, strict=True):
        model = net(0).double().train()
        with seeded_global_rng(draw_seed(torch_generator(seed, "dropout"))):
            F.cross_entropy(model(x), y).backward()
        # One float64 step, same masks: only the summation order of the matmuls differs
        # (bmm vs mm over 32 samples), a few float64 eps relative.
        torch.testing.assert_close(update, -model[1].weight.grad, rtol=1e-12, atol=1e-14)
    assert not torch.equal(updates[0], updates[1])


def test_early_stopping_restores_the_loss_scales_with_the_weights(digits):
    """R1, R2 are trained with the weights: the returned (model, loss) pair must be the best
    state, so its dev loss is the reported one (not R1, R2 of the last step)."""
    config = TrainConfig(
        lr=0.05,
        optimizer="sgd",
        device="cpu",
        dtype="float64",
        batch_size=50,
        steps=200,
        eval_every=5,
        patience=2,
        monitor="dev_loss",
    )
    [r] = train_many(
        lambda s: mlp(64, [16], 10, bias=False, seed=s),
        [("two_scale", 0, {"loss_kwargs": {"eta": 0.1}})],
        digits,
        config,
    )
    assert r.stopped_early and r.best_step < r.steps_run
    with torch.no_grad():
        x, y = torch.as_tensor(digits["x_dev"]), torch.as_tensor(digits["y_dev"])
        dev_loss = float(r.loss(r.model(x), y))
    # The same weights on the same 100 dev samples, summed in other chunks: gamma_100 =
    # 100 * 2**-53 ~ 1e-14 relative; 1e-12 leaves a factor 100 and still fails on the last
    # step's R1, R2 (a difference of ~lr * dL/dR ~ 1e-4).
    assert dev_loss == pytest.approx(r.final["dev_loss"], rel=1e-12)


def test_checkpoint_of_another_architecture_is_a_losslab_error(digits, tmp_path):
    path = str(tmp_path / "run.pt")
    config = TrainConfig(device="cpu", batch_size=50, steps=2, eval_every=2, checkpoint_path=path)
    train_many(lambda s: mlp(64, [8], 10, seed=s), ["log"], digits, config)
    with pytest.raises(LosslabError, match="other models or settings.*size mismatch"):
        train_many(lambda s: mlp(64, [16], 10, seed=s), ["log"], digits, config)
    loop = TrainConfig.from_dict({**config.to_dict(), "engine": "loop"})
    with pytest.raises(LosslabError, match="other models or settings"):
        train_many(lambda s: mlp(64, [8], 10, seed=s), ["log"], digits, loop)


def test_missing_cuda_device_index_is_a_losslab_error(monkeypatch):
    from losslab.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(LosslabError, match="1 CUDA device"):
        resolve_device("cuda:3")
