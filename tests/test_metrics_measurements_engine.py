"""Every measurement recorded by a real train_many run, against an independent computation
on the trained models (per-model forward passes, torch.autograd, the metric functions)."""

import numpy as np
import pytest
import torch
from scipy import special

from losslab import metrics as M
from losslab.data import load_dataset
from losslab.metrics.measurements import MEASUREMENTS, get_measurement
from losslab.models import mlp
from losslab.train import ModelSpec, TrainConfig, train_many

U32 = 2.0**-24  # float32 unit roundoff: the models train and predict in float32
STEPS = 6
SPECS = [
    ModelSpec("log", 0),
    ModelSpec("hinge", 1),
    ModelSpec("two_scale", 2, loss_kwargs={"eta": 0.1}),
]
# Coarse labels {0, 1} -> 0 and {2, 3} -> 1, as CIFAR-100's super-classes.
COARSE = np.array([0, 0, 1, 1])


def net(seed):
    return mlp(2, [16, 16], 4, seed=seed)


@pytest.fixture(scope="module")
def data():
    ds = load_dataset("checkerboard", dev_fraction=0.25, n_train=200, n_test=120)
    for split in ("train", "dev", "test"):
        setattr(ds, f"coarse_{split}", COARSE[getattr(ds, f"y_{split}")])
    return ds


def config(steps):
    # full batch (150 training samples): the step's gradient is that of the mean loss over
    # the whole training set, which autograd can recompute from the weights alone
    return TrainConfig(
        optimizer="sgd", lr=0.05, batch_size=150, steps=steps, eval_every=3, device="cpu"
    )


@pytest.fixture(scope="module")
def run(data):
    measure = [get_measurement(name) for name in MEASUREMENTS]
    return train_many(net, SPECS, data, config(STEPS), measure=measure)


def final_rows(result, name):
    return {i: v for step, n, i, v in result.measurements if step == STEPS and n == name}


def eval_logits(result, x):
    with torch.no_grad():
        return result.loss.predict_logits(result.model(torch.from_numpy(x))).double().numpy()


def logit_error(result, x):
    """(N,) bound on how far a float32 forward pass, in any summation order, puts a sample's
    logits from the exact ones: a dot product of K terms rounds to within K u32 of the sum
    of its absolute terms, ReLU passes errors on unamplified and |W| carries them to the
    next layer, so the error is <= (sum of the K + 1 of each layer) u32 times the forward
    pass of |x| through |W|, |b| (float64); predict_logits scales by R1 / R (+2 roundings)."""
    with torch.no_grad():
        h = torch.from_numpy(x).double().abs().flatten(1)
        k = 2
        for layer in result.model:
            if isinstance(layer, torch.nn.Linear):
                h = h @ layer.weight.double().abs().T + layer.bias.double().abs()
                k += layer.in_features + 1
        scale = float(result.loss.predict_logits(torch.ones(1, 4)).abs().max())
        return (k * U32 * scale * h.max(dim=1).values).numpy()


@pytest.mark.slow
def test_eval_measurements_at_every_evaluation_final_ones_once(run):
    for result in run:
        steps = {s for s, n, _, _ in result.measurements if n == "test_dX"}
        assert steps == {int(s) for s in result.curves["step"]} and {3, 6} <= steps
        assert {s for s, n, _, _ in result.measurements if n == "boundary"} == {STEPS}


@pytest.mark.slow
def test_grad_norms_against_autograd_on_the_same_weights(run, data):
    # the same run stopped one step earlier holds the weights the last step's gradient
    # was taken at (CPU training is bit-identical for the same seed)
    before = train_many(net, SPECS, data, config(STEPS - 1))
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    for result, earlier in zip(run, before, strict=True):
        model, loss = earlier.model, earlier.loss
        layers = {n.rpartition(".")[0] for n, _ in model.named_parameters()}
        grads = torch.autograd.grad(loss(model(x), y), list(model.parameters()))
        by_layer = {}
        for (name, _), g in zip(model.named_parameters(), grads, strict=True):
            key = name.rpartition(".")[0]
            by_layer[key] = by_layer.get(key, 0.0) + float(g.double().pow(2).sum())
        got = final_rows(result, "grad_norm")
        assert set(got) == layers | {"total"}
        # float32 gradients of the stacked and the single model differ by summation order:
        # each entry sums 150 per-sample products whose factors went through <= 37 rounded
        # forward / backward dot products, so it is within (150 + 37) u32 = 1.1e-5 of exact
        # relative to its sum of absolute terms; a layer norm sums such entries without
        # cancelling, and the square root halves the relative error; both sides, plus the
        # float32 sum of <= 256 squares ((256 / 2 + 1) u32): 2 * (1.1e-5 / 2) + 7.7e-6
        rel = 2 * (150 + 37) / 2 * U32 + (256 / 2 + 1) * U32
        for layer, square in by_layer.items():
            assert got[layer] == pytest.approx(square**0.5, rel=rel)
        assert got["total"] == pytest.approx(sum(by_layer.values()) ** 0.5, rel=rel)


@pytest.mark.slow
def test_loss_scales_are_the_trained_scales(run):
    assert final_rows(run[0], "loss_scale") == {}
    scales = final_rows(run[2], "loss_scale")
    assert scales == {"R1": float(run[2].loss.r1.detach()), "R2": float(run[2].loss.r2.detach())}


def count_close(a, b, tol):
    """How many entries differ by more than tol."""
    return int(np.sum(np.abs(np.asarray(a, float) - np.asarray(b, float)) > tol))


@pytest.mark.slow
def test_classification_measurements_against_the_metric_functions(run, data):
    for result in run:
        for split in ("train", "test"):
            x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
            z = eval_logits(result, x)
            n = len(y)
            dx = M.classification_confidence(z, y)
            # stacked vs single forward: each within logit_error of exact, so a dX (two
            # logits) moves by <= 4 of it; a quantile is 1-Lipschitz in the largest move
            err = 4 * logit_error(result, x)
            quantiles = final_rows(result, f"{split}_dX")
            for q, value in quantiles.items():
                expected = np.quantile(dx, float(q))
                assert value == pytest.approx(expected, rel=0, abs=2 * err.max())
            w_eta = final_rows(result, f"{split}_W_eta")
            # only samples whose dX lies within that move of eta may be counted differently
            for e, value in w_eta.items():
                near = int(np.sum(np.abs(dx - float(e)) <= err))
                assert abs(value - M.count_w_eta(z, y, float(e))) <= near
            # The counts below may differ by a sample whose logits tie within the rounding
            # of the two forward passes (err, ~1e-6): probability ~1e-6 per sample, so one
            # differing sample (1 / n) has probability ~1e-4 and two ~1e-8 over this test.
            top = final_rows(result, f"{split}_top_k")
            assert set(top) == {"1", "2", "3"}
            for k, value in top.items():
                assert abs(value - M.top_k_accuracy(z, y, int(k))) <= 1 / n
            close = final_rows(result, f"{split}_acc_at")
            p = special.softmax(z, axis=1)
            for at, value in close.items():
                expected = np.mean(p[np.arange(n), y] >= p.max(1) - float(at))
                assert abs(value - expected) <= 1 / n
            sup = final_rows(result, f"{split}_superclass_accuracy")[""]
            assert abs(sup - M.superclass_accuracy(z, y, COARSE)) <= 1 / n


@pytest.mark.slow
def test_final_measurements_against_the_trained_models(run, data):
    for result in run:
        z = eval_logits(result, data.x_test)
        hist = final_rows(result, "test_max_p")
        counts, _ = np.histogram(special.softmax(z, 1).max(1), bins=20, range=(0.0, 1.0))
        assert sum(hist.values()) == len(data.y_test)
        # a sample within rounding (~1e-6) of a bin edge moves to the next bin (two counts
        # change): probability ~1e-6 per sample, more than one such sample ~1e-8
        assert count_close(list(hist.values()), counts, 0) <= 2
        wrong = final_rows(result, "test_dp_wrong")
        # one sample at a rounding tie of its top logits, as above
        assert abs(sum(wrong.values()) - np.sum(z.argmax(1) != data.y_test)) <= 1

        noisy = final_rows(result, "train_noisy_accuracy")
        eps = [float(e) for e in noisy]

        def predict(v, result=result):
            return result.loss.predict_logits(result.model(v))

        curve = M.noise_robustness_curve(
            predict, torch.from_numpy(data.x_train), data.y_train, eps, rng=0
        )
        # the same noise; one noisy input at a rounding tie of its top logits, as above
        np.testing.assert_allclose(
            list(noisy.values()), curve, rtol=0, atol=1.0 / len(data.y_train)
        )

        extent = final_rows(result, "boundary_extent")
        grid = final_rows(result, "boundary")
        assert len(grid) == 64 * 64
        xs = np.linspace(extent["x_min"], extent["x_max"], 64)
        ys = np.linspace(extent["y_min"], extent["y_max"], 64)
        gx, gy = np.meshgrid(xs, ys)
        points = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
        expected = eval_logits(result, points).argmax(1)
        got = np.array([grid[f"{i},{j}"] for i in range(64) for j in range(64)])
        # grid points within float32 rounding (~1e-6 in logits) of a decision boundary
        # may flip: ~1e-6 each, so more than 4 of the 4096 has probability ~1e-14; the
        # grid itself is recomputed with the same linspace (x_max 1 ulp off at worst)
        assert np.sum(got != expected) <= 4


STUDY = """
name = "measured"
seeds = 2
datasets = [{name = "checkerboard", n_train = 120, n_test = 80}]
models = [{name = "mlp", hidden = [8]}]
losses = ["log", "two_scale"]
[train]
lr = 0.05
optimizer = "sgd"
batch_size = 40
steps = 4
eval_every = 2
[measure]
grad_norms = true
loss_scales = true
confidence = {quantiles = [0.5], etas = [0.0, 1.0]}
top_k = true
acc_at = {ats = [0.0, 0.02]}
histograms = {bins = 5}
noise_robustness = {eps = [0.0, 0.1]}
decision_boundary = {resolution = 8}
"""


@pytest.mark.slow
def test_a_study_stores_the_rows_the_engine_measures(tmp_path):
    from losslab.models import for_data
    from losslab.study import load, load_study, run_study

    path = tmp_path / "measured.toml"
    path.write_text(STUDY)
    run_study(load_study(path), tmp_path / "out", device="cpu")
    results = load(tmp_path / "out")
    cells, stored = results.cells(), results.measurements()
    assert set(stored["name"]) >= {
        "grad_norm",
        "loss_scale",
        "test_dX",
        "train_W_eta",
        "test_top_k",
        "train_acc_at",
        "test_max_p",
        "train_noisy_accuracy",
        "boundary",
    }
    # the same stack trained directly: the stored rows are the engine's, bit for bit
    data = load_dataset("checkerboard", n_train=120, n_test=80)
    specs = [ModelSpec(row.loss_name, row.seed, lr=0.05) for row in cells.itertuples()]
    measure = [
        get_measurement("grad_norms"),
        get_measurement("loss_scales"),
        get_measurement("confidence", quantiles=[0.5], etas=[0.0, 1.0]),
        get_measurement("top_k"),
        get_measurement("acc_at", ats=[0.0, 0.02]),
        get_measurement("histograms", bins=5),
        get_measurement("noise_robustness", eps=[0.0, 0.1]),
        get_measurement("decision_boundary", resolution=8),
    ]
    direct = train_many(
        lambda seed: for_data("mlp", (2,), 4, hidden=[8], seed=seed),
        specs,
        data,
        TrainConfig(optimizer="sgd", lr=0.05, batch_size=40, steps=4, eval_every=2, device="cpu"),
        measure=measure,
    )
    for row, result in zip(cells.itertuples(), direct, strict=True):
        mine = stored[stored["cell_id"] == row.cell_id]
        expected = sorted(result.measurements)
        got = sorted(zip(mine["step"], mine["name"], mine["index"], mine["value"], strict=True))
        assert got == expected
