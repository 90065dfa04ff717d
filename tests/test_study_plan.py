"""Grid expansion, exclusion, content-hash cell keys and grouping into train_many stacks."""

import itertools
import json
import textwrap

import pytest

from losslab import __version__
from losslab.study.hashing import canonical_json, content_hash
from losslab.study.plan import expand
from losslab.study.spec import StudyFileError, load_study

GRID = """
name = "g"
seeds = 3
datasets = ["checkerboard", "spirals"]
models = [{name = "mlp", hidden = [8, 8]}, {name = "mlp", hidden = []}]
losses = ["log", "hinge", {name = "alpha", alpha = 4}]
activations = ["relu", "tanh"]
[train]
lr = [1e-3, 3e-3]
weight_decay = [0.0, 1e-4]
batch_size = [20, 40]
steps = 5
[noise]
label_noise_rate = [0.0, 0.2]
"""


def plan_of(tmp_path, text, name="s.toml", **kwargs):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return expand(load_study(path), **kwargs)


def test_grid_is_the_product_of_the_axes(tmp_path):
    plan = plan_of(tmp_path, GRID)
    # datasets x noise x models x activations x lr x wd x batch x losses x seeds
    assert len(plan.cells) == 2 * 2 * 2 * 2 * 2 * 2 * 2 * 3 * 3
    seen = {
        (c.axes["dataset"], c.axes["label_noise_rate"], c.axes["model"], c.axes["activation"],
         c.axes["lr"], c.axes["weight_decay"], c.axes["batch_size"], c.axes["loss"],
         c.axes["seed"])
        for c in plan.cells
    }
    expected = set(itertools.product(
        ["checkerboard", "spirals"], [0.0, 0.2], ["mlp[8x2]", "mlp[]"], ["relu", "tanh"],
        [1e-3, 3e-3], [0.0, 1e-4], [20, 40], ["log", "hinge", "alpha(alpha=4)"], [0, 1, 2]))
    assert seen == expected
    assert set(plan.varying) == {"dataset", "label_noise_rate", "model", "activation", "lr",
                                 "weight_decay", "batch_size", "loss", "seed"}


def test_grouping_puts_loss_seed_lr_and_weight_decay_in_one_stack(tmp_path):
    plan = plan_of(tmp_path, GRID, max_stack=1000)
    # Everything but loss, seed, lr and weight decay splits: dataset x noise x model x
    # activation x batch size = 32 groups of 3 losses x 3 seeds x 2 lr x 2 wd = 36 cells.
    assert len(plan.groups) == 32
    for group in plan.groups:
        assert len(group.cells) == 36
        shared = {(c.axes["dataset"], c.axes["label_noise_rate"], c.axes["model"],
                   c.axes["activation"], c.axes["batch_size"]) for c in group.cells}
        assert len(shared) == 1
        assert len({(c.axes["loss"], c.axes["seed"], c.axes["lr"], c.axes["weight_decay"])
                    for c in group.cells}) == 36
    assert sorted(c.cell_id for g in plan.groups for c in g.cells) == sorted(
        c.cell_id for c in plan.cells)


def test_large_groups_are_cut_into_near_equal_stacks(tmp_path):
    plan = plan_of(tmp_path, GRID, max_stack=10)
    # 36 cells per group, at most 10 per stack -> 4 stacks of 9.
    assert len(plan.groups) == 32 * 4
    assert {len(g.cells) for g in plan.groups} == {9}


def test_exclude_drops_matching_cells_only(tmp_path):
    text = GRID + '\n[[exclude]]\ndataset = "spirals"\nloss = "hinge"\n[[exclude]]\nlr = 3e-3\n' \
        'model = {name = "mlp", hidden = []}\n'
    plan = plan_of(tmp_path, text)
    full = plan_of(tmp_path, GRID, name="full.toml")
    def dropped(c):
        return (c.axes["dataset"] == "spirals" and c.axes["loss"] == "hinge") or (
            c.axes["lr"] == 3e-3 and c.axes["model"] == "mlp[]")
    expected = [c.cell_id for c in full.cells if not dropped(c)]
    assert [c.cell_id for c in plan.cells] == expected
    assert plan.excluded == len(full.cells) - len(expected)


def test_exclude_matches_loss_labels_and_names(tmp_path):
    text = GRID + '\n[[exclude]]\nloss = "alpha(alpha=4)"\n'
    assert {c.axes["loss"] for c in plan_of(tmp_path, text).cells} == {"log", "hinge"}
    everything = GRID + '\n[[exclude]]\nseed = 0\n[[exclude]]\nseed = 1\n[[exclude]]\nseed = 2\n'
    with pytest.raises(StudyFileError, match="drop every cell"):
        plan_of(tmp_path, everything, name="all.toml")


def test_cell_key_is_a_hash_of_the_resolved_config(tmp_path):
    plan = plan_of(tmp_path, GRID)
    cell = plan.cells[0]
    assert cell.cell_id == content_hash(cell.config)
    assert cell.config["losslab"] == __version__ and cell.config["seed"] == cell.axes["seed"]
    no_seed = {k: v for k, v in cell.config.items() if k != "seed"}
    assert cell.condition_id == content_hash(no_seed)
    # Defaults are filled in: the alpha loss's reduction, the mlp's init, Adam's betas.
    alpha = next(c for c in plan.cells if c.axes["loss"] == "alpha(alpha=4)")
    assert alpha.config["loss"] == {"name": "alpha", "alpha": 4, "reduction": "mean",
                                    "weight": None}
    assert alpha.config["model"]["init"] == "he" and alpha.config["model"]["dropout"] == 0.0
    assert alpha.config["train"]["betas"] == [0.9, 0.999]
    assert json.loads(canonical_json(cell.config)) == cell.config


def test_explicit_defaults_give_the_same_cells_and_a_changed_value_new_ones(tmp_path):
    base = plan_of(tmp_path, GRID)
    explicit = GRID.replace('"log", "hinge"', '"log", {name = "hinge", reduction = "mean"}')
    explicit = explicit.replace("steps = 5", "steps = 5\noptimizer = \"adam\"")
    same = plan_of(tmp_path, explicit, name="explicit.toml")
    assert [c.cell_id for c in same.cells] == [c.cell_id for c in base.cells]
    changed = plan_of(tmp_path, GRID.replace("steps = 5", "steps = 6"), name="changed.toml")
    assert not {c.cell_id for c in changed.cells} & {c.cell_id for c in base.cells}
    # Seeds are replicates: the condition ids of seeds 0, 1, 2 coincide.
    conditions = {}
    for c in base.cells:
        conditions.setdefault(c.condition_id, set()).add(c.axes["seed"])
    assert all(seeds == {0, 1, 2} for seeds in conditions.values())
    assert len(conditions) == len(base.cells) // 3


def test_condition_labels_name_the_varying_axes(tmp_path):
    cell = plan_of(tmp_path, GRID).cells[0]
    assert cell.condition == ("checkerboard / mlp[8x2] / relu / log / lr=0.001 / "
                              "weight_decay=0 / label_noise_rate=0 / batch_size=20")


def test_epochs_become_steps_from_the_training_set_size(tmp_path):
    text = GRID.replace("steps = 5", "epochs = 1.5").replace("batch_size = [20, 40]",
                                                             "batch_size = 40")
    plan = plan_of(tmp_path, text, n_train=lambda dataset: 100)
    # ceil(1.5 epochs * 100 samples / 40 per batch) = 4 steps.
    assert {c.axes["steps"] for c in plan.cells} == {4}
    with pytest.raises(StudyFileError, match="epochs"):
        plan_of(tmp_path, text, name="no_sizes.toml")


def test_duplicate_entries_are_refused(tmp_path):
    with pytest.raises(StudyFileError, match="same cell"):
        plan_of(tmp_path, GRID.replace('"log", "hinge"', '"log", "log"'))
