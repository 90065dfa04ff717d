"""Study files: validation (one line naming file, field and fix), scales, defaults."""

import textwrap

import pytest

from losslab.errors import LosslabError
from losslab.study.spec import StudyFileError, deep_merge, load_study

BASE = """
name = "t"
seeds = 2
datasets = [{name = "checkerboard", n_train = 60, n_test = 40}]
models = [{name = "mlp", hidden = [8]}]
losses = ["log", "hinge"]
[train]
steps = 4
batch_size = 20
"""


def write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path, text, scale=None):
    path = write(tmp_path, text)
    with pytest.raises(StudyFileError) as info:
        load_study(path, scale)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(str(path)), message
    assert isinstance(info.value, LosslabError)
    return message


def test_valid_file_parses_axes_and_seeds(tmp_path):
    study = load_study(write(tmp_path, BASE))
    spec = study.spec
    assert spec.name == "t" and spec.seed_list == [0, 1]
    assert [i.name for i in spec.losses] == ["log", "hinge"]
    assert spec.datasets[0].options == {"n_train": 60, "n_test": 40}
    assert [i.name for i in spec.activations] == ["relu"]
    listed = load_study(write(tmp_path, BASE.replace("seeds = 2", "seeds = [3, 5]"), "b.toml"))
    assert listed.spec.seed_list == [3, 5]


@pytest.mark.parametrize(
    ("old", "new", "field", "fix"),
    [
        ('losses = ["log", "hinge"]', 'losses = ["log", "hnge"]', "losses[1]", "'hinge'"),
        ('models = [{name = "mlp", hidden = [8]}]', 'models = [{name = "mpl"}]', "models[0]",
         "'mlp'"),
        ('name = "t"', 'name = "t"\nactivations = ["rellu"]', "activations[0]", "'relu'"),
        ('datasets = [{name = "checkerboard", n_train = 60, n_test = 40}]',
         'datasets = ["chekerboard"]', "datasets[0]", "'checkerboard'"),
        ("seeds = 2", "sed = 2\nseeds = 2", "sed", "'seeds'"),
        ("steps = 4", "stepz = 4", "train.stepz", "'steps'"),
        ("steps = 4", "steps = 0", "train.steps", ">= 1"),
        ("steps = 4", "steps = 4\nlr = [1e-3, -1.0]", "train.lr[1]", "> 0"),
        ("steps = 4", "steps = 4\nepochs = 2", "train.epochs", "not both"),
        ("steps = 4", "steps = 4\nseed = 3", "train.seed", "seeds"),
        ('losses = ["log", "hinge"]', 'losses = [{name = "two_scale", eta = -1}]',
         "losses[0]", "eta"),
        ('losses = ["log", "hinge"]', 'losses = [{name = "alpha", alpah = 3}]',
         "losses[0].alpah", "'alpha'"),
        ('models = [{name = "mlp", hidden = [8]}]', 'models = [{name = "mlp", hiden = [8]}]',
         "models[0].hiden", "'hidden'"),
        ('models = [{name = "mlp", hidden = [8]}]',
         'models = [{name = "mlp", activation = "tanh"}]', "models[0].activation",
         "activations"),
        ("batch_size = 20", 'batch_size = 20\n[noise]\nlabel_noise_rate = 1.5',
         "noise.label_noise_rate", "[0, 1)"),
        ("batch_size = 20", 'batch_size = 20\n[noise]\nlabel_noise_kind = "flip"',
         "noise.label_noise_kind", "symmetric"),
        ("batch_size = 20", 'batch_size = 20\n[noise]\ninput_noise_eps = -1',
         "noise.input_noise_eps", ">= 0"),
        ("batch_size = 20", 'batch_size = 20\n[[exclude]]\nlos = "log"', "exclude[0].los",
         "'loss'"),
        ("seeds = 2", "seeds = 0", "seeds", "n >= 1"),
        ("seeds = 2", "seeds = [1, 1]", "seeds", "distinct"),
        ('name = "t"', 'name = "Bad Name"', "name", "a-z"),
        ('datasets = [{name = "checkerboard", n_train = 60, n_test = 40}]',
         'datasets = [{name = "checkerboard", seed = 3}]', "datasets[0].seed", "seeds"),
        ('datasets = [{name = "checkerboard", n_train = 60, n_test = 40}]',
         'datasets = [{name = "checkerboard", ntrain = 3}]', "datasets[0].ntrain", "'n_train'"),
    ],
)
def test_bad_values_name_the_field_and_the_fix(tmp_path, old, new, field, fix):
    assert old in BASE
    message = error_of(tmp_path, BASE.replace(old, new))
    assert f": {field}" in message, message
    assert fix in message, message


def test_missing_required_field(tmp_path):
    message = error_of(tmp_path, BASE.replace('losses = ["log", "hinge"]', ""))
    assert "losses" in message and "required" in message


def test_malformed_toml_and_missing_file(tmp_path):
    message = error_of(tmp_path, BASE + "\nlr = [1e-3,\n")
    assert "malformed TOML" in message
    with pytest.raises(StudyFileError, match="no such study file"):
        load_study(tmp_path / "absent.toml")


def test_unknown_plugin_module(tmp_path):
    message = error_of(tmp_path, 'imports = ["no_such_losslab_plugin"]\n' + BASE)
    assert "imports[0]" in message and "no_such_losslab_plugin" in message


def test_scales_deep_merge_and_unknown_scale(tmp_path):
    text = BASE + "\n[scales.quick]\nseeds = 1\ntrain = {steps = 2}\n"
    text += "[scales.full]\ntrain = {steps = 9}\n"
    path = write(tmp_path, text)
    quick = load_study(path, "quick").spec
    assert quick.seed_list == [0] and quick.train == {"steps": 2, "batch_size": 20}
    full = load_study(path, "full").spec
    assert full.seed_list == [0, 1] and full.train == {"steps": 9, "batch_size": 20}
    assert load_study(path).spec.train == {"steps": 4, "batch_size": 20}
    with pytest.raises(StudyFileError, match="quick, full"):
        load_study(path, "medium")


def test_a_bad_value_in_any_scale_is_found(tmp_path):
    # A typo in the full scale must surface on a quick run, not hours later.
    text = BASE + "\n[scales.quick]\ntrain = {steps = 2}\n[scales.full]\ntrain = {steps = -5}\n"
    message = error_of(tmp_path, text, scale="quick")
    assert "(scale full)" in message and "train.steps" in message


def test_deep_merge_replaces_lists_and_merges_tables():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    merged = deep_merge(base, {"a": {"y": [3]}, "c": 4})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 2, "c": 4}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2}


def test_measurements_are_checked_by_name_and_options(tmp_path):
    message = error_of(tmp_path, BASE + "\n[measure]\ngrad_norm = true\n")
    assert "measure.grad_norm" in message and "'grad_norms'" in message
    load_study(write(tmp_path, BASE + "\n[measure]\ngrad_norms = true\ntop_k = false\n", "m.toml"))
