"""Study cells trained by the NumPy engine (``engine = "npnet"``): stored like torch cells,
equal to the torch cells of the same seed up to round-off, refused where npnet cannot go."""

import json
import textwrap

import numpy as np
import pytest

import roundoff
from losslab.errors import LosslabError
from losslab.study import load, load_study, run_study
from losslab.study.build import build_model
from losslab.study.executors import DataCache, make_task, train_task
from losslab.study.plan import expand
from losslab.train import CURVE_KEYS, ModelSpec, TrainConfig, train_many

STUDY = """
name = "npnet-pair"
seeds = 2
datasets = [{{name = "digits", standardize = true, dev_fraction = 0.1}}]
models = [{{name = "mlp", hidden = [16]}}]
losses = ["log"]
{engine}
[train]
batch_size = 50
eval_every = 20
{train}
"""
TRAIN = 'optimizer = "momentum"\nlr = 0.05\nweight_decay = 1e-3\nsteps = 40'


def study_text(engine="", train=TRAIN):
    return STUDY.format(engine=engine, train=train)


def write(tmp_path, text, name="study.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_npnet_cells_are_stored_like_torch_cells(tmp_path):
    runs = {}
    for engine in ("torch", "npnet"):
        path = write(tmp_path, study_text(f'engine = "{engine}"'), f"{engine}.toml")
        events = run_study(load_study(path), tmp_path / engine, device="cpu")
        assert events.done == events.total == 2 and events.failed == 0
        runs[engine] = load(tmp_path / engine)
    torch_cells, np_cells = runs["torch"].cells(), runs["npnet"].cells()
    # The npnet study says which engine ran its cells in one more column.
    assert list(np_cells.columns) == [*torch_cells.columns, "engine"]
    assert set(np_cells["engine"]) == {"npnet"} and set(np_cells["status"]) == {"done"}
    assert [json.loads(c)["engine"] for c in np_cells["config"]] == ["npnet", "npnet"]
    torch_curves, np_curves = runs["torch"].curves(), runs["npnet"].curves()
    assert list(np_curves.columns)[: len(torch_curves.columns)] == list(torch_curves.columns)
    for column in ("metric", "step"):
        assert sorted(set(np_curves[column])) == sorted(set(torch_curves[column]))


# Float64: each step rounds every sum of K <= 64 terms (64 inputs, batch 50) to within
# gamma_64 = 64 eps64 of its terms; tests/roundoff.py turns that into a bound over the run.
GAMMA = 64 * 2.0**-53
ENGINE_CASES = {
    "sgd": {"optimizer": "sgd", "lr": 0.1},
    "momentum+decay": {"optimizer": "momentum", "lr": 0.05, "weight_decay": 1e-2},
    "adam+lr decay": {"optimizer": "adam", "lr": 3e-3, "lr_decay": "exponential"},
    "rmsprop": {"optimizer": "rmsprop", "lr": 1e-3},
}


@pytest.mark.parametrize("case", sorted(ENGINE_CASES))
def test_npnet_cell_equals_the_torch_cell_up_to_round_off(tmp_path, case):
    settings = [f"{k} = {v!r}".replace("'", '"') for k, v in ENGINE_CASES[case].items()]
    train = "\n".join([*settings, 'dtype = "float64"', "steps = 200"])
    study = load_study(write(tmp_path, study_text(train=train)))
    cache = DataCache()
    plan = expand(study)
    group = plan.groups[0]
    task = make_task(group, [c.cell_id for c in group.cells], "cpu", [])
    torch_out = train_task(task, cache)
    np_out = train_task({**task, "engine": "npnet"}, cache)
    # The reference run again from weights scaled by 1 + GAMMA: how much this run amplifies
    # one step's round-off (tests/roundoff.py).
    data = cache.get(task["dataset"])
    options = {k: v for k, v in task["model"].items() if k != "name"}
    config = TrainConfig(**task["train"], device="cpu")

    def shaken(seed):
        net = build_model("mlp", data.input_shape, data.num_classes, seed=seed, **options)
        return roundoff.shaken(net, GAMMA)

    specs = [ModelSpec(loss="log", seed=c["seed"], lr=c["lr"], weight_decay=c["weight_decay"])
             for c in task["cells"]]
    moved = train_many(shaken, specs, data, config)
    for ref, ours, drift in zip(torch_out, np_out, moved, strict=True):
        assert ours["status"] == ref["status"] == "done"
        assert ours["steps_run"] == ref["steps_run"] == 200
        assert ours["curves"]["step"] == ref["curves"]["step"]
        assert ours["curves"]["lr"] == pytest.approx(ref["curves"]["lr"], rel=1e-15)
        for key in CURVE_KEYS[2:]:
            tol = roundoff.bound(200, ref["curves"][key], drift.curves[key], GAMMA)
            # A bound past 1e-6 would hide a real difference (a wrong weight-decay factor
            # moves a loss by ~lr * lambda ~ 1e-4 over this run): the run must say so.
            assert tol < 1e-6, f"{key}: round-off amplified to {tol:.1e}"
            np.testing.assert_allclose(ours["curves"][key], ref["curves"][key], rtol=0,
                                       atol=tol, err_msg=f"{case}: {key}")


def test_engine_per_model_gives_paired_conditions(tmp_path):
    text = study_text().replace(
        'models = [{name = "mlp", hidden = [16]}]',
        'models = [{name = "mlp", hidden = [16]}, {name = "mlp", hidden = [16], '
        'engine = "npnet"}]')
    plan = expand(load_study(write(tmp_path, text)))
    engines = [c.axes["engine"] for c in plan.cells]
    assert engines == ["torch", "torch", "npnet", "npnet"]
    assert "engine" in plan.varying and len(plan.groups) == 2
    assert plan.cells[2].condition.endswith("engine=npnet")
    assert plan.cells[0].config["model"] == plan.cells[2].config["model"]
    assert "engine" not in plan.cells[0].config and plan.cells[2].config["engine"] == "npnet"


def test_torch_cells_keep_their_keys(tmp_path):
    """A study without npnet hashes its cells as before the engine setting existed."""
    plain = expand(load_study(write(tmp_path, study_text(), "a.toml")))
    named = expand(load_study(write(tmp_path, study_text('engine = "torch"'),
                                    "b.toml")))
    assert [c.cell_id for c in plain.cells] == [c.cell_id for c in named.cells]
    assert "engine" not in plain.cells[0].axes


@pytest.mark.parametrize(
    "change,field,words",
    [
        (('engine = "npnet"', 'engine = "jax"'), "engine", "must be \"torch\""),
        (('{name = "mlp", hidden = [16]}',
          '{name = "mlp", hidden = [16], engine = "numpy"}'), "models[0].engine", "npnet"),
        (('{name = "mlp", hidden = [16]}', '{name = "mnist1d_cnn"}'), "models[0]",
         "only the model 'mlp'"),
        (('{name = "mlp", hidden = [16]}', '{name = "mlp", hidden = [16], bias = false}'),
         "models[0].bias", "no mlp option bias"),
        (('losses = ["log"]', 'losses = ["log", {name = "two_scale", eta = 0.1}]'),
         "losses[1]", "no loss 'two_scale'"),
        (('losses = ["log"]', 'losses = [{name = "log", reduction = "sum"}]'),
         "losses[0].reduction", "mean"),
        (('lr = 0.05', 'lr = 0.05\npatience = 3'), "train.patience", "early stopping"),
        (('[train]', '[measure]\ngrad_norms = true\n[train]'), "measure", "measurements"),
    ],
)
def test_what_npnet_cannot_train_is_refused(tmp_path, change, field, words):
    text = study_text('engine = "npnet"').replace(*change)
    with pytest.raises(LosslabError) as err:
        load_study(write(tmp_path, text))
    message = str(err.value)
    assert f": {field}: " in message and words in message
    if field != "engine" and "numpy" not in change[1]:
        assert "npnet trains the model 'mlp'" in message  # says what npnet supports
