"""User plugins in studies and in `losslab list`, `losslab list studies`, `losslab show`."""

import inspect
import sys
import textwrap

import pandas as pd
import pytest
from typer.testing import CliRunner

from losslab import catalogue, cli, plugins
from losslab.activations import ACTIVATIONS
from losslab.data import DATASETS
from losslab.errors import LosslabError
from losslab.losses import LOSSES
from losslab.models import MODELS
from losslab.study import load, load_study, run_study

runner = CliRunner()

# A plugin registering one entry of each kind, each equal to a built-in one with other
# defaults, so a study through the plugin must reproduce the built-in study exactly.
PLUGIN = '''
"""A test plugin."""
import math

from losslab.activations import ACTIVATIONS, LeakyReLU
from losslab.data import DATASETS
from losslab.losses import LOSSES
from losslab.losses.robust import AlphaLoss
from losslab.models import MODELS, mlp


class AlphaThree(AlphaLoss):
    """alpha-loss with alpha = 3. Seed: a test."""

    def __init__(self, reduction="mean", weight=None, validate=True):
        super().__init__(alpha=3.0, reduction=reduction, weight=weight, validate=validate)


class Leaky02(LeakyReLU):
    """Leaky ReLU with slope 0.2."""

    def __init__(self):
        super().__init__(alpha=0.2)


def small_net(input_shape, num_classes, width=8, activation="relu", activation_kwargs=None,
              seed=None):
    """One hidden layer of `width` units."""
    return mlp(math.prod(input_shape), [width], num_classes, activation=activation,
               activation_kwargs=activation_kwargs, seed=seed)


def board(root, rng, *, n_train=60, n_test=40):
    """The checkerboard under another name."""
    return DATASETS["checkerboard"](root, rng, n_train=n_train, n_test=n_test)


LOSSES["alpha_three"] = AlphaThree
ACTIVATIONS["leaky02"] = Leaky02
MODELS["small_net"] = small_net
DATASETS["board"] = board
'''
STUDY = """
name = "{name}"
{imports}
seeds = 2
datasets = [{dataset}]
models = [{model}]
losses = [{loss}, "log"]
activations = [{activation}]
[train]
batch_size = 20
steps = 6
eval_every = 3
"""
MODULE = "losslab_test_plugin"


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """The plugin module on sys.path; every registry entry it adds is removed afterwards."""
    (tmp_path / f"{MODULE}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    registries = (LOSSES, ACTIVATIONS, MODELS, DATASETS)
    before = [set(r) for r in registries]
    yield tmp_path
    for registry, keys in zip(registries, before, strict=True):
        for key in set(registry) - keys:
            del registry[key]
    sys.modules.pop(MODULE, None)
    plugins._loaded.discard(MODULE)


def write_study(directory, name, **fields):
    path = directory / f"{name}.toml"
    path.write_text(textwrap.dedent(STUDY.format(name=name, **fields)))
    return path


def test_a_study_through_plugins_equals_the_built_in_study(plugin_path):
    mine = write_study(plugin_path, "mine", imports=f'imports = ["{MODULE}"]',
                       dataset='"board"', model='{name = "small_net", width = 8}',
                       loss='"alpha_three"', activation='"leaky02"')
    builtin = write_study(plugin_path, "builtin", imports="",
                          dataset='{name = "checkerboard", n_train = 60, n_test = 40}',
                          model='{name = "mlp", hidden = [8]}',
                          loss='{name = "alpha", alpha = 3}',
                          activation='{name = "leaky_relu", alpha = 0.2}')
    run_study(load_study(mine), plugin_path / "mine", device="cpu")
    run_study(load_study(builtin), plugin_path / "builtin", device="cpu")
    a, b = load(plugin_path / "mine").cells(), load(plugin_path / "builtin").cells()
    assert (a.status == "done").all() and len(a) == 4
    assert a.loss.tolist() == ["alpha_three", "alpha_three", "log", "log"]
    assert a.model.iloc[0] == "small_net(width=8)" and a.activation.iloc[0] == "leaky02"
    # Same weights, batches and arithmetic: the plugin cells are bit-identical.
    columns = ["seed", "steps_run", "train_accuracy", "test_accuracy", "train_loss",
               "test_loss"]
    pd.testing.assert_frame_equal(a[columns], b[columns], check_exact=True)


def test_entry_point_plugins_reach_list_and_studies(plugin_path, monkeypatch):
    info = plugin_path / "losslab_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: losslab-test-plugin\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(f"[losslab.plugins]\ntest = {MODULE}\n")
    listed = runner.invoke(cli.app, ["list", "losses"])
    assert listed.exit_code == 0 and "alpha_three" in listed.stdout.split()
    assert "small_net" in runner.invoke(cli.app, ["list", "models"]).stdout.split()
    shown = runner.invoke(cli.app, ["show", "model", "small_net"])
    assert "width = 8" in shown.stdout and "One hidden layer" in shown.stdout
    # No imports in the file: the entry point alone makes the names known.
    path = write_study(plugin_path, "ep", imports="", dataset='"board"',
                       model='"small_net"', loss='"alpha_three"', activation='"leaky02"')
    assert load_study(path).spec.losses[0].name == "alpha_three"


def test_a_broken_entry_point_is_one_clear_error(tmp_path, monkeypatch):
    info = tmp_path / "broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[losslab.plugins]\nbroken = no_such_module_x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(LosslabError, match="plugin 'broken'.*no_such_module_x"):
        plugins.load_plugins()


def test_list_studies_reads_name_and_description(tmp_path, monkeypatch):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "a.toml").write_text('name = "alpha-study"\ndescription = "first one"\n')
    (folder / "b.toml").write_text("name = [\n")
    monkeypatch.setenv("LOSSLAB_STUDIES", str(folder))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["list", "studies"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stdout.splitlines() if str(folder) in ln]
    assert lines[0].startswith("alpha-study") and "first one" in lines[0]
    assert lines[1].startswith("b ") and "unreadable" in lines[1]
    assert catalogue.resolve_study("alpha-study") == folder / "a.toml"
    assert catalogue.resolve_study("a") == folder / "a.toml"


@pytest.mark.parametrize("kind", catalogue.KINDS)
def test_show_describes_every_registered_entry(kind):
    hidden = catalogue._HIDDEN[kind]
    for name, entry in catalogue.registry(kind).items():
        text = catalogue.describe(kind, name)
        assert text.splitlines()[0].startswith(f"{kind} {name}  (")
        # Every parameter a user sets is listed with its default from the signature.
        for param, p in inspect.signature(entry).parameters.items():
            if param in hidden or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.default is not p.empty:
                assert f"  {param} = {p.default!r}" in text, (name, param)
        assert "Example" not in text
        seed = getattr(entry, "seed", "")
        if isinstance(seed, str) and seed:
            assert f"seed: {seed}" in text


def test_show_unknown_names_suggest_the_closest():
    with pytest.raises(LosslabError, match="Did you mean 'hinge'"):
        catalogue.describe("loss", "hnge")
    with pytest.raises(LosslabError, match="choose one of"):
        catalogue.describe("optimizer", "adam")
