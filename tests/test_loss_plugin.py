"""A loss added in one place: the focal-loss plugin of docs/losses.md, with nothing else edited, is
listed by ``losslab list``/``show``, trained in a two-cell study and drawn by the report's
loss-shape figure; its class and functional form follow from the one definition."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import log_softmax
from typer.testing import CliRunner

from losslab import cli, plugins
from losslab.errors import LosslabError
from losslab.losses import LOSSES, functional_form, get_loss, register_loss
from losslab.report import loss_shapes
from losslab.report.build import plan
from losslab.study import load, load_study, run_study

LOSSES_PAGE = Path(__file__).resolve().parents[1] / "docs" / "losses.md"
MODULE = "my_losses"


def readme_plugin() -> str:
    """The python block of the "Adding a loss" section of docs/losses.md, the plugin
    module."""
    section = LOSSES_PAGE.read_text(encoding="utf-8").split("\n## Adding a loss", 1)[1]
    section = section.split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert block.startswith(f"# {MODULE}.py")
    return block


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """The plugin module of docs/losses.md on sys.path; the registry is restored afterwards."""
    (tmp_path / f"{MODULE}.py").write_text(readme_plugin())
    monkeypatch.syspath_prepend(str(tmp_path))
    before = dict(LOSSES)
    yield tmp_path
    LOSSES.clear()
    LOSSES.update(before)
    sys.modules.pop(MODULE, None)
    plugins._loaded.discard(MODULE)


def ref_focal(o, labels, gamma):
    """-(1 - p_c)^gamma log p_c, float64 SciPy (Lin et al. 2017, eq. 5)."""
    log_pc = log_softmax(o, axis=1)[np.arange(len(labels)), labels]
    return -((1 - np.exp(log_pc)) ** gamma) * log_pc


def test_the_readme_focal_plugin_is_trained_listed_and_drawn(plugin_dir):
    study = plugin_dir / "focal.toml"
    study.write_text(textwrap.dedent(f"""
        name = "focal"
        imports = ["{MODULE}"]
        seeds = 1
        datasets = [{{name = "checkerboard", n_train = 60, n_test = 40}}]
        models = [{{name = "mlp", hidden = [8]}}]
        losses = ["focal", {{name = "focal", gamma = 0.5}}]
        [train]
        batch_size = 20
        steps = 6
        eval_every = 3
    """))
    run_study(load_study(study), plugin_dir / "out", device="cpu")
    results = load(plugin_dir / "out")
    cells = results.cells()
    assert len(cells) == 2 and (cells.status == "done").all(), cells[["loss", "status"]]
    assert (cells.steps_run == 6).all() and np.isfinite(cells.train_loss).all()

    # the class and the function follow from the definition, and compute the formula
    logits, labels = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 2, 1, 0])
    module = get_loss("focal", gamma=0.5, reduction="none")
    function = functional_form(LOSSES["focal"])
    want = ref_focal(logits.numpy(), labels.numpy(), 0.5)
    # float64: a log-softmax, an exp and a power of numbers <= ~10, a few EPS64 each
    np.testing.assert_allclose(module(logits, labels).numpy(), want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(function(logits, labels, gamma=0.5, reduction="none"),
                               module(logits, labels), rtol=0, atol=0)
    with pytest.raises(LosslabError, match="gamma"):
        get_loss("focal", gamma=-1.0)

    # losslab list / show (the study's import made it known)
    runner = CliRunner()
    listed = runner.invoke(cli.app, ["list", "losses"])
    assert listed.exit_code == 0 and "focal" in listed.stdout.split()
    shown = runner.invoke(cli.app, ["show", "loss", "focal"])
    assert "Lin et al. 2017" in shown.stdout and "gamma = 2.0" in shown.stdout

    # the report's loss-shape figure: one curve per focal loss of the study
    sections, _ = plan(results)
    (job,) = [j for s in sections if s.key == "shapes" for j in s.jobs]
    (data,) = job.args
    assert set(data["loss"]) == set(cells["loss"]) and np.isfinite(data["value"]).all()
    figure = loss_shapes(data)
    labels_drawn = {t.get_text() for ax in figure.axes if ax.get_legend()
                    for t in ax.get_legend().get_texts()}
    assert labels_drawn == set(cells["loss"])


def test_register_loss_refuses_a_taken_name_and_a_bad_one():
    with pytest.raises(LosslabError, match="taken"):
        register_loss("log", LOSSES["l1"])
    with pytest.raises(LosslabError, match="snake_case"):
        register_loss("Focal-Loss", LOSSES["l1"])
    with pytest.raises(LosslabError, match="Loss subclass alone"):
        register_loss("mine", LOSSES["l1"], title="x")
