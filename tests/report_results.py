"""A tiny real study for the report tests, in the StudyResults interface, without a store.

It trains checkerboard MLPs with ``train_many`` (3 losses incl. a two-scale one x 2 label
noise rates x 2 seeds, 40 steps) and turns the TrainResults into the tidy ``cells`` /
``curves`` / ``measurements`` DataFrames of the study contract. The measurements are
computed from the trained models with :mod:`losslab.metrics` (decision boundary on a grid,
input-noise robustness, acc_at, top-k, the two-scale loss's final scales).
"""

from __future__ import annotations

import hashlib
import itertools
import json

import numpy as np
import pandas as pd
import torch

from losslab import metrics
from losslab.data import load_dataset
from losslab.models import mlp
from losslab.train import ModelSpec, TrainConfig, train_many

LOSSES = (("log", {}), ("hinge", {}), ("two_scale", {"eta": 0.5}))
NOISE = (0.0, 0.2)
SEEDS = (0, 1)
STEPS = 40
STUDY = """name = "tiny"
description = "report test: checkerboard, three losses, two label-noise rates"
seeds = 2
datasets = ["checkerboard"]
models = [{name = "mlp", hidden = [16]}]
losses = ["log", "hinge", {name = "two_scale", eta = 0.5}]
[train]
steps = 40
eval_every = 10
[noise]
label_noise_rate = [0.0, 0.2]
"""


def _label(name: str, kwargs: dict) -> str:
    return name + ("(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")" if kwargs
                   else "")


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


class TinyResults:
    """``cells()``, ``curves()``, ``measurements()``, ``axes()``, ``study_text()``,
    ``environment()`` of a real tiny run; ``loss_names`` overrides the display labels."""

    def __init__(self, cells, curves, measurements, axes=("loss", "label_noise_rate", "seed"),
                 study=None):
        self._cells, self._curves, self._meas, self._axes = cells, curves, measurements, axes
        self._study = STUDY if study is None else study

    def cells(self):
        return self._cells.copy()

    def curves(self):
        return self._curves.copy()

    def measurements(self):
        return self._meas.copy()

    def axes(self):
        return list(self._axes)

    def tuned(self):
        return ()

    def tuning(self):
        return pd.DataFrame(columns=["condition", "loss", "trial", "lr", "weight_decay",
                                     "metric", "score", "seeds", "diverged", "chosen"])

    def study_text(self):
        return self._study

    def environment(self):
        return {"torch": torch.__version__, "device": "cpu", "threads": 1}


def _measure(cell_id: str, result, data, step: int) -> list[dict]:
    """Final measurements of one trained model, computed with losslab.metrics, in the rows
    of losslab.metrics.measurements (names ``boundary``, ``train_noisy_accuracy``, ...)."""
    rows = []
    model, loss = result.model, result.loss
    r = 21
    xs = np.linspace(-1.1, 1.1, r, dtype=np.float32)
    gx, gy = np.meshgrid(xs, xs)
    grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1))
    # evaluation logits: through predict_logits where the loss has one (two-scale: R1)
    predict = getattr(loss, "predict_logits", lambda z: z)
    with torch.no_grad():
        pred = predict(model(grid)).argmax(1).numpy()
        test_logits = predict(model(torch.as_tensor(data.x_test)))
    rows += [(step, "boundary_extent", k, -1.1 if k.endswith("min") else 1.1)
             for k in ("x_min", "x_max", "y_min", "y_max")]
    rows += [(step, "boundary", f"{i},{j}", float(pred[i * r + j]))
             for i in range(r) for j in range(r)]
    eps = [0.0, 0.05, 0.2]
    acc = metrics.noise_robustness_curve(
        model, torch.as_tensor(data.x_train), torch.as_tensor(data.y_train), eps, rng=0)
    rows += [(step, "train_noisy_accuracy", f"{e:g}", float(a))
             for e, a in zip(eps, acc, strict=True)]
    y = torch.as_tensor(data.y_test)
    rows += [(step, "test_acc_at", f"{at:g}", float(metrics.acc_at(test_logits, y, at=at)))
             for at in (0.0, 0.05, 0.2)]
    rows += [(step, "test_top_k", str(k), float(metrics.top_k_accuracy(test_logits, y, k=k)))
             for k in (1, 2, 4)]
    hist = metrics.max_probability_histogram(test_logits, 10)
    rows += [(step, "test_max_p", f"{lo:.6g}", float(c))
             for lo, c in zip(hist.edges[:-1], hist.counts, strict=True)]
    if hasattr(loss, "r1"):
        rows += [(step, "loss_scale", "R1", float(loss.r1.detach())),
                 (step, "loss_scale", "R2", float(loss.r2.detach()))]
    return [dict(cell_id=cell_id, step=s, name=n, index=i, value=v) for s, n, i, v in rows]


def tiny_results(losses=LOSSES) -> TinyResults:
    """Train the tiny grid (a few seconds on one core) and return its results."""
    cells, curves, meas = [], [], []
    config = TrainConfig(lr=3e-3, batch_size=50, steps=STEPS, eval_every=10)
    for rate in NOISE:
        data = load_dataset("checkerboard", label_noise_rate=rate, seed=0)
        specs = [ModelSpec(name, seed, loss_kwargs=kw) for name, kw in losses for seed in SEEDS]
        results = train_many(lambda s: mlp(2, [16], 4, seed=s), specs, data, config)
        for spec, r in zip(specs, results, strict=True):
            label = _label(spec.loss, spec.loss_kwargs)
            config_json = {"dataset": {"name": "checkerboard", "label_noise_rate": rate},
                           "loss": {"name": spec.loss, **spec.loss_kwargs}, "seed": spec.seed}
            cell_id = _hash(config_json)
            condition = f"checkerboard / mlp[16] / relu / {label} / noise={rate}"
            cells.append({
                "cell_id": cell_id, "condition_id": _hash([label, rate]),
                "condition": condition, "status": "diverged" if r.diverged else "done",
                "error": None, "diverged_at": r.diverged_at, "dataset": "checkerboard",
                "model": "mlp[16]", "activation": "relu", "loss": label, "loss_name": spec.loss,
                "optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0,
                "label_noise_rate": rate, "label_noise_kind": "symmetric",
                "input_noise_eps": 0.0, "steps": STEPS, "seed": spec.seed,
                "config": json.dumps(config_json), "seconds": r.seconds,
                "steps_run": r.steps_run, "best_step": r.best_step,
                **{k: r.final.get(k, np.nan) for k in (
                    "train_accuracy", "dev_accuracy", "test_accuracy", "train_loss",
                    "dev_loss", "test_loss")},
            })
            for key, values in r.curves.items():
                if key == "step":
                    continue
                curves += [{"cell_id": cell_id, "step": s, "metric": key, "value": v}
                           for s, v in zip(r.curves["step"], values, strict=True)]
            meas += _measure(cell_id, r, data, r.steps_run)
    return TinyResults(pd.DataFrame(cells), pd.DataFrame(curves), pd.DataFrame(meas))


def with_status(results: TinyResults, changes: dict[int, dict]) -> TinyResults:
    """A copy whose cells at the given row positions get new values (status, error, ...);
    their curves and measurements are dropped unless the new status is done/diverged."""
    cells = results.cells()
    for i, values in changes.items():
        for k, v in values.items():
            cells.loc[cells.index[i], k] = v
    gone = set(cells.loc[~cells["status"].isin(("done", "diverged")), "cell_id"])
    for metric in ("train_accuracy", "dev_accuracy", "test_accuracy", "train_loss",
                   "dev_loss", "test_loss"):
        cells.loc[cells["cell_id"].isin(gone), metric] = np.nan
    curves = results.curves()
    meas = results.measurements()
    return TinyResults(cells, curves[~curves["cell_id"].isin(gone)],
                       meas[~meas["cell_id"].isin(gone)], results.axes())


REAL_STUDY = """
name = "real-tiny"
description = "report test: a real study run by losslab.study"
seeds = 2
datasets = [{name = "checkerboard", n_train = 200, n_test = 120}]
models = [{name = "mlp", hidden = [16]}]
losses = ["log", "hinge", {name = "alpha", alpha = 4}, {name = "two_scale", eta = 0.5}]
[train]
lr = 1e-2
batch_size = 20
steps = 30
eval_every = 10
[noise]
label_noise_rate = [0.0, 0.2]
[measure]
grad_norms = true
loss_scales = true
top_k = true
acc_at = true
histograms = {bins = 10}
noise_robustness = {eps = [0.0, 0.1, 0.5]}
decision_boundary = {resolution = 16}
"""


def run_real_study(root):
    """Run :data:`REAL_STUDY` with the study runner into ``root/out``; returns that folder."""
    from losslab.study import load_study, run_study

    path = root / "real.toml"
    path.write_text(REAL_STUDY)
    run_study(load_study(path), root / "out", device="cpu")
    return root / "out"


# --- a synthetic study with known numbers (no training) --------------------------------

SYNTHETIC_STUDY = """name = "synthetic"
description = "report test: two datasets, three label-noise rates, two noise kinds"
seeds = 5
datasets = ["checkerboard", "digits"]
models = [{name = "mlp", hidden = [8]}]
losses = ["log", "expectation", "hinge", {name = "two_scale", eta = 0.5}]
[noise]
label_noise_rate = [0.0, 0.2, 0.4]
label_noise_kind = ["symmetric", "pairflip"]
[[exclude]]
label_noise_kind = "pairflip"
label_noise_rate = 0.0
"""
# mean test accuracy of a loss at rate r: BASE[dataset] - DROP[loss] * r; the checkerboard
# is near 1 when clean, so plain t intervals over 5 seeds there pass 1
SYN_BASE = {"checkerboard": 0.985, "digits": 0.95}
SYN_DROP = {"log": 0.9, "expectation": 0.3, "hinge": 0.8, "two_scale(eta=0.5)": 0.7}
SYN_KWARGS = {"two_scale(eta=0.5)": {"eta": 0.5}}
SYN_SEEDS = (0, 1, 2, 3, 4)
SYN_STEPS = (0, 50, 100)


def synthetic_results(datasets=("checkerboard", "digits"), rates=(0.0, 0.2, 0.4),
                      kinds=("symmetric",), exclude=lambda ds, rate, kind: False,
                      measured=lambda ds, rate, kind: True, sd=0.01) -> TinyResults:
    """A study in the StudyResults interface whose accuracies are drawn around known
    means (SYN_BASE - SYN_DROP * rate, seed spread ``sd``), with curves and, for the
    conditions ``measured(dataset, rate, kind)``, every kind of measurement the report
    draws; ``exclude(dataset, rate, kind)`` drops cells as a study file's [[exclude]]
    does. Builds in well under a second."""
    rng = np.random.default_rng(0)
    cells, curves, meas = [], [], []
    for ds, rate, kind, (loss, drop) in itertools.product(datasets, rates, kinds,
                                                          SYN_DROP.items()):
        if exclude(ds, rate, kind):
            continue
        name = loss.split("(")[0]
        condition = {"dataset": ds, "loss": loss, "rate": rate, "kind": kind}
        for seed in SYN_SEEDS:
            config = {"dataset": {"name": ds, "label_noise_rate": rate,
                                  "label_noise_kind": kind},
                      "loss": {"name": name, **SYN_KWARGS.get(loss, {})}, "seed": seed}
            cell_id = _hash(config)
            test = min(1.0, SYN_BASE[ds] - drop * rate + sd * rng.standard_normal())
            train = min(1.0, 1.0 - rate + 0.5 * sd * rng.standard_normal())
            cells.append({
                "cell_id": cell_id, "condition_id": _hash(condition),
                "condition": f"{ds} / mlp[8] / relu / {loss} / noise={rate} {kind}",
                "status": "done", "error": None, "diverged_at": np.nan, "dataset": ds,
                "model": "mlp[8]", "activation": "relu", "loss": loss, "loss_name": name,
                "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0,
                "label_noise_rate": rate, "label_noise_kind": kind, "input_noise_eps": 0.0,
                "steps": SYN_STEPS[-1], "seed": seed, "config": json.dumps(config),
                "seconds": 1.0, "steps_run": SYN_STEPS[-1], "best_step": SYN_STEPS[-1],
                "train_accuracy": train, "dev_accuracy": np.nan, "test_accuracy": test,
                "train_loss": 1 - train, "dev_loss": np.nan, "test_loss": 1 - test,
            })
            for step in SYN_STEPS:
                share = (step + 10) / (SYN_STEPS[-1] + 10)
                curves += [{"cell_id": cell_id, "step": step, "metric": m, "value": v * share}
                           for m, v in (("train_accuracy", train), ("test_accuracy", test))]
                if not measured(ds, rate, kind):
                    continue
                meas += [{"cell_id": cell_id, "step": step, "name": "grad_norm",
                          "index": layer, "value": float(np.exp(rng.normal(-i, 0.1)))}
                         for i, layer in enumerate(("0", "2"))]
                if name == "two_scale":
                    meas += [{"cell_id": cell_id, "step": step, "name": "loss_scale",
                              "index": r, "value": v} for r, v in (("R1", 1.0), ("R2", 10.0))]
            last = SYN_STEPS[-1]
            rows = []
            if ds == "checkerboard":
                rows += [("boundary_extent", k, -1.1 if k.endswith("min") else 1.1)
                         for k in ("x_min", "x_max", "y_min", "y_max")]
                rows += [("boundary", f"{i},{j}", float((i + j + seed) % 4))
                         for i in range(4) for j in range(4)]
            if not measured(ds, rate, kind):
                meas += [{"cell_id": cell_id, "step": last, "name": n, "index": i, "value": v}
                         for n, i, v in rows]
                continue
            rows += [("train_noisy_accuracy", f"{e:g}", max(0.0, train - e)) for e in (0, 0.1, 0.5)]
            rows += [("test_top_k", str(k), min(1.0, test + 0.1 * (k - 1))) for k in (1, 2)]
            rows += [("test_acc_at", f"{a:g}", max(0.0, test - a)) for a in (0.0, 0.2)]
            rows += [("test_superclass_accuracy", "", min(1.0, test + 0.02))]
            rows += [("test_max_p", f"{e:g}", float(c)) for e, c in ((0.25, 10), (0.5, 30),
                                                                   (0.75, 60))]
            meas += [{"cell_id": cell_id, "step": last, "name": n, "index": i, "value": v}
                     for n, i, v in rows]
    frame = pd.DataFrame(cells)
    # as StudyResults.axes(): the axis columns that take more than one value
    axes = [c for c in ("dataset", "loss", "label_noise_rate", "label_noise_kind")
            if frame[c].nunique() > 1]
    return TinyResults(frame, pd.DataFrame(curves), pd.DataFrame(meas), axes=(*axes, "seed"),
                       study=SYNTHETIC_STUDY)
