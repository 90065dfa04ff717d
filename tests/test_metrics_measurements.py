"""Measurements (losslab.metrics.measurements) on real models, against independent computations.

``ReferenceContext`` builds the engine's MeasureContext interface directly from ordinary
``nn.Module`` s and loss modules, one model at a time: it is a second, engine-free way of
producing what a measurement reads, so a measurement that picks the wrong model, split or
layer disagrees with the per-model references computed here.
"""

import math

import numpy as np
import pytest
import torch
from scipy import special

from losslab import metrics as M
from losslab.data import load_dataset
from losslab.errors import LosslabError
from losslab.losses import get_loss
from losslab.metrics.measurements import MEASUREMENTS, DecisionBoundary, get_measurement
from losslab.models import mlp

# float32 unit roundoff (the models' dtype).
U32 = 2.0**-24

def eval_logits(loss, z):
    """The logits evaluation uses: ``predict_logits`` (identity but two-scale: R1 z / R)."""
    return loss.predict_logits(z)


class ReferenceContext:
    """MeasureContext of M trained models, computed model by model."""

    def __init__(self, models, losses, data, step=0):
        self.models, self.losses, self.data, self.step = models, losses, data, step
        self.num_models, self.num_classes = len(models), data.num_classes

    def _array(self, prefix, split):
        value = getattr(self.data, f"{prefix}_{split}")
        return None if value is None else torch.from_numpy(value)

    def inputs(self, split):
        return self._array("x", split)

    def labels(self, split):
        return self._array("y", split)

    def coarse_labels(self, split):
        return self._array("coarse", split)

    @torch.no_grad()
    def predict(self, x):
        return torch.stack(
            [
                eval_logits(loss, model(x))
                for model, loss in zip(self.models, self.losses, strict=True)
            ]
        )

    def logits(self, split):
        x = self.inputs(split)
        return None if x is None else self.predict(x)

    def grad_norms(self):
        """Per layer (module path), the norm of the full-batch gradient of the mean loss."""
        x, y = self.inputs("train"), self.labels("train")
        per_model = []
        for model, loss in zip(self.models, self.losses, strict=True):
            names, params = zip(*model.named_parameters(), strict=True)
            grads = torch.autograd.grad(loss(model(x), y), params)
            squares = {}
            for name, g in zip(names, grads, strict=True):
                layer = name.rpartition(".")[0]
                squares[layer] = squares.get(layer, 0.0) + g.pow(2).sum()
            per_model.append({k: v.sqrt() for k, v in squares.items()})
        return {n: torch.stack([d[n] for d in per_model]) for n in per_model[0]}

    def loss_scales(self):
        return [
            {"R1": float(loss.r1.detach()), "R2": float(loss.r2.detach())}
            if hasattr(loss, "r1")
            else {}
            for loss in self.losses
        ]


@pytest.fixture(scope="module")
def toy():
    return load_dataset("checkerboard", dev_fraction=0.25, n_train=200, n_test=150)


@pytest.fixture(scope="module")
def context(toy):
    models = [mlp(2, [16, 16], 4, seed=s, bias=False) for s in range(3)]
    # R1 away from the model's own scale R, so evaluation logits R1 z / R differ from z
    losses = [get_loss("log"), get_loss("hinge"), get_loss("two_scale", eta=0.1, r1=0.5)]
    losses[2].attach(models[2])
    return ReferenceContext(models, losses, toy, step=7)


def per_model_logits(ctx, split):
    """(N, C) float64 logits of each model on a split, computed one model at a time."""
    x = ctx.inputs(split)
    with torch.no_grad():
        return [
            eval_logits(loss, m(x)).double().numpy()
            for m, loss in zip(ctx.models, ctx.losses, strict=True)
        ]


def rows_of(rows, name):
    return {index: value for n, index, value in rows if n == name}


def test_registry_names_and_protocol():
    assert set(MEASUREMENTS) == {
        "grad_norms",
        "loss_scales",
        "confidence",
        "top_k",
        "acc_at",
        "superclass",
        "histograms",
        "noise_robustness",
        "decision_boundary",
    }
    for name in MEASUREMENTS:
        m = get_measurement(name)
        assert m.name == name and m.when in ("eval", "final") and isinstance(m.needs_grads, bool)
    assert get_measurement("grad_norms").needs_grads
    assert {n for n in MEASUREMENTS if get_measurement(n).when == "final"} == {
        "histograms",
        "noise_robustness",
        "decision_boundary",
    }


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("grad_norm", {}, "grad_norms"),
        ("top_k", {"k": 3}, "ks"),
        ("confidence", {"quantiles": [1.5]}, "quantile"),
        ("acc_at", {"ats": []}, "at least one"),
        ("acc_at", {"splits": ["validation"]}, "splits"),
        ("noise_robustness", {"eps": [-0.1]}, "eps"),
        ("decision_boundary", {"resolution": 1}, "resolution"),
    ],
)
def test_bad_names_and_options_are_user_errors(name, options, match):
    with pytest.raises(LosslabError, match=match):
        get_measurement(name, **options)


def test_grad_norms_against_autograd(context):
    rows = get_measurement("grad_norms")(context)
    assert len(rows) == 3
    x, y = context.inputs("train"), context.labels("train")
    for m, (model, loss) in enumerate(zip(context.models, context.losses, strict=True)):
        grads = torch.autograd.grad(loss(model(x), y), list(model.parameters()))
        got = rows_of(rows[m], "grad_norm")
        # per layer: weight and bias together, in float64 from the same float32 gradients
        layers = {}
        for (name, _), g in zip(model.named_parameters(), grads, strict=True):
            layer = name.rpartition(".")[0]
            layers[layer] = layers.get(layer, 0.0) + float(g.double().pow(2).sum())
        assert set(got) == {*layers, "total"} == {"1", "3", "5", "total"}
        # The same float32 gradients (the same autograd computation) on both sides; the
        # context sums their n squares in float32, here in float64. Squares round once, a
        # float32 sum of n positive terms in any order is within (n - 1) u32 relative, the
        # sqrt halves that and rounds once: (n / 2 + 1) u32; the total over layers (float64
        # of these norms) is no worse than its worst layer. n <= 256 (16 x 16); 2x margin.
        n = max(p.numel() for p in model.parameters())
        rel = 2 * (n / 2 + 1) * U32
        for layer, square in layers.items():
            assert got[layer] == pytest.approx(square**0.5, rel=rel)
        total = float(torch.cat([g.double().flatten() for g in grads]).norm())
        assert got["total"] == pytest.approx(total, rel=rel)


def test_loss_scales(context):
    rows = get_measurement("loss_scales")(context)
    assert rows[0] == [] and rows[1] == []
    scales = rows_of(rows[2], "loss_scale")
    r1, r2 = context.losses[2].r1.detach(), context.losses[2].r2.detach()
    assert scales == {"R1": float(r1), "R2": float(r2)}
    # R1 = 0.5 and the default R2 = 10 R1 = 5 are exact in float32
    assert scales["R2"] == 10 * scales["R1"]


def test_confidence_quantiles_and_w_eta_against_the_metric_functions(context):
    quantiles, etas = (0.1, 0.5, 0.9), (0.0, 0.5)
    rows = get_measurement(
        "confidence", quantiles=quantiles, etas=etas, splits=["train", "dev", "test"]
    )(context)
    for split in ("train", "dev", "test"):
        y = context.data.__getattribute__(f"y_{split}")
        for m, z in enumerate(per_model_logits(context, split)):
            dx = M.classification_confidence(z, y)
            got = rows_of(rows[m], f"{split}_dX")
            for q in quantiles:
                # the same float32 forward pass of the same model on the same inputs (torch's
                # CPU kernels are deterministic for one shape and thread count), then the
                # same float64 dX and np.quantile: equal bit for bit
                assert got[f"{q:g}"] == np.quantile(dx, q)
            counts = rows_of(rows[m], f"{split}_W_eta")
            assert counts == {f"{e:g}": M.count_w_eta(z, y, eta=e) for e in etas}
    # two-scale: the logits are R1 z / R; the model's raw logits give different dX
    raw = context.models[2](context.inputs("test")).detach().double().numpy()
    assert not np.allclose(
        M.classification_confidence(raw, context.data.y_test),
        M.classification_confidence(per_model_logits(context, "test")[2], context.data.y_test),
    )


def test_top_k_acc_at_against_the_metric_functions(context):
    top = get_measurement("top_k")(context)
    close = get_measurement("acc_at", ats=[0.0, 0.05])(context)
    for split in ("train", "test"):
        y = getattr(context.data, f"y_{split}")
        for m, z in enumerate(per_model_logits(context, split)):
            ks = rows_of(top[m], f"{split}_top_k")
            assert set(ks) == {"1", "2", "3"}  # default 1, 2, 3, 5, 10 capped at C = 4
            for k, v in ks.items():
                assert v == M.top_k_accuracy(z, y, int(k))
            assert ks["1"] == M.accuracy(z, y)
            ats = rows_of(close[m], f"{split}_acc_at")
            # independent: softmax by scipy, the paper's definition
            p = special.softmax(z, axis=1)
            for at in (0.0, 0.05):
                # the same logits and the same float64 softmax: the same count, / N once
                expected = np.mean(p[np.arange(len(y)), y] >= p.max(1) - at)
                assert ats[f"{at:g}"] == expected
    assert "dev_top_k" not in {n for n, _, _ in top[0]}  # not asked for
    with pytest.raises(LosslabError, match="exceeds"):
        get_measurement("top_k", ks=[5])(context)


def test_superclass_accuracy_with_noisy_fine_labels(toy):
    data = load_dataset(
        "checkerboard", dev_fraction=0.25, n_train=200, n_test=150, label_noise_rate=0.2, seed=3
    )
    coarse = np.array([0, 0, 1, 1])  # classes {0, 1} and {2, 3}
    clean = load_dataset("checkerboard", dev_fraction=0.25, n_train=200, n_test=150, seed=3)
    for split in ("train", "dev", "test"):
        # the coarse labels follow the clean fine labels, as CIFAR-100's do under label noise
        setattr(data, f"coarse_{split}", coarse[getattr(clean, f"y_{split}")])
    assert (data.y_train != clean.y_train).sum() == 30  # 20 % of 150 flipped
    models = [mlp(2, [16], 4, seed=s) for s in range(2)]
    ctx = ReferenceContext(models, [get_loss("log")] * 2, data)
    rows = get_measurement("superclass")(ctx)
    for split in ("train", "test"):
        for m, z in enumerate(per_model_logits(ctx, split)):
            got = rows_of(rows[m], f"{split}_superclass_accuracy")[""]
            truth = getattr(clean, f"y_{split}")
            # the same argmax of the same logits: the same count, divided by N once
            assert got == M.superclass_accuracy(z, truth, coarse)
    # data without coarse labels: no rows (one [measure] table serves every dataset)
    plain = ReferenceContext(models, [get_loss("log")] * 2, toy)
    assert get_measurement("superclass")(plain) == [[], []]


def test_histograms_against_numpy(context):
    rows = get_measurement("histograms", bins=10)(context)
    y = context.data.y_test
    for m, z in enumerate(per_model_logits(context, "test")):
        p = special.softmax(z, axis=1)
        wrong = z.argmax(1) != y
        for name, values, lo in (
            ("test_max_p", p.max(1), 0.0),
            ("test_p_correct", p[np.arange(len(y)), y], 0.0),
            ("test_dp_wrong", (p[np.arange(len(y)), y] - p.max(1))[wrong], -1.0),
        ):
            counts, edges = np.histogram(values, bins=10, range=(lo, lo + 1.0))
            got = rows_of(rows[m], name)
            assert list(got) == [f"{e:.6g}" for e in edges[:-1]]
            assert list(got.values()) == counts.tolist()
        assert sum(rows_of(rows[m], "test_max_p").values()) == len(y)
        assert sum(rows_of(rows[m], "test_dp_wrong").values()) == wrong.sum()


def test_noise_robustness_against_the_curve_function(context):
    eps = (0.0, 0.05, 0.5)
    rows = get_measurement("noise_robustness", eps=eps, repeats=2, seed=5, batch_size=64)(context)
    x, y = context.inputs("train"), context.data.y_train
    for m, (model, loss) in enumerate(zip(context.models, context.losses, strict=True)):

        def predict(v, model=model, loss=loss):
            return eval_logits(loss, model(v))

        curve = M.noise_robustness_curve(predict, x, y, eps, rng=5, n_repeats=2)
        got = rows_of(rows[m], "train_noisy_accuracy")
        # The same noise draws; only the batching of the forward pass (64 rows vs all N)
        # differs, which may reorder float32 sums: a noisy input flips only when its top two
        # logits lie within that rounding (~16 u32 |z| ~ 1e-6) of each other, probability
        # ~1e-6 per input. 1 / N admits two of the 2 N averaged predictions flipping; three
        # among the ~2700 inputs of this test have probability ~1e-10.
        tol = 1.0 / len(y)
        np.testing.assert_allclose([got[f"{e:g}"] for e in eps], curve, rtol=0, atol=tol)
        clean = M.accuracy(per_model_logits(context, "train")[m], y)
        assert got["0"] == pytest.approx(clean, rel=0, abs=tol)
    assert rows[0] != rows[1]


def test_decision_boundary_grid(context, toy):
    rows = get_measurement("decision_boundary", resolution=8, margin=0.1)(context)
    points = np.concatenate([toy.x_train, toy.x_test]).astype(np.float64)
    low, high = points.min(0), points.max(0)
    pad = 0.1 * (high - low)
    expected_extent = {
        "x_min": low[0] - pad[0],
        "x_max": high[0] + pad[0],
        "y_min": low[1] - pad[1],
        "y_max": high[1] + pad[1],
    }
    for m, (model, loss) in enumerate(zip(context.models, context.losses, strict=True)):
        extent = rows_of(rows[m], "boundary_extent")
        for k, v in expected_extent.items():
            # the same float64 min / max / difference / product / sum as the measurement
            assert extent[k] == v
        grid = rows_of(rows[m], "boundary")
        assert len(grid) == 64
        for i in (0, 3, 7):
            for j in (0, 5, 7):
                xj = extent["x_min"] + j * (extent["x_max"] - extent["x_min"]) / 7
                yi = extent["y_min"] + i * (extent["y_max"] - extent["y_min"]) / 7
                with torch.no_grad():
                    point = torch.tensor([[xj, yi]], dtype=torch.float32)
                    cls = int(eval_logits(loss, model(point)).argmax())
                assert grid[f"{i},{j}"] == cls
    digits = ReferenceContext(
        [mlp(64, [], 10, seed=0)], [get_loss("log")], load_dataset("digits", flatten=True)
    )
    assert DecisionBoundary()(digits) == [[]]  # not 2-D points: no grid


def test_absent_dev_split_is_skipped(context):
    no_dev = load_dataset("checkerboard", n_train=100, n_test=100)
    ctx = ReferenceContext(context.models, context.losses, no_dev)
    rows = get_measurement("acc_at", splits=["dev", "test"])(ctx)
    assert {n for n, _, _ in rows[0]} == {"test_acc_at"}
    assert math.isfinite(rows[0][0][2])
