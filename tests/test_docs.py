"""The docs site's generators (docs/hooks.py, docs/griffe_rst.py), without a full build:
`make test` and `make docs` build the site itself, strictly.

The galleries' numbers are checked against closed forms; a plugin's loss appears in the
gallery once its module is imported; the docstring conversion and the link rewriting
do what the site relies on."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from losslab import catalogue, plugins
from losslab.losses import LOSSES

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load("hooks")
griffe_rst = _load("griffe_rst")

PNG = b"\x89PNG\r\n\x1a\n"
# float64 softmax and autograd against the closed forms: a few ulps of values of order 10
CLOSE = {"rtol": 1e-12, "atol": 1e-12}


def _log_p_correct(o: np.ndarray, moved: int, c: int = hooks.NUM_CLASSES) -> np.ndarray:
    """log softmax of class 0 when logit ``moved`` is o and the other c - 1 are 0."""
    if moved == 0:
        return o - np.logaddexp(o, np.log(c - 1))
    return -np.logaddexp(o, np.log(c - 1))


@pytest.mark.parametrize("moved", [0, 1])
def test_log_loss_curves_match_the_closed_form(moved):
    o = np.linspace(-6, 6, 25)
    values, derivative = hooks.loss_curves(LOSSES["log"], {}, moved, o)
    np.testing.assert_allclose(values, -_log_p_correct(o, moved), **CLOSE)
    # d(-log p_0)/d o_0 = p_0 - 1; d(-log p_0)/d o_j = p_j (j != 0)
    p_moved = np.exp(o - np.logaddexp(o, np.log(hooks.NUM_CLASSES - 1)))
    np.testing.assert_allclose(derivative, p_moved - 1 if moved == 0 else p_moved, **CLOSE)


def test_gce_curves_for_each_drawn_setting():
    o = np.linspace(-6, 6, 25)
    param, values = hooks.settings("gce", LOSSES["gce"], hooks.LOSS_SETTINGS)
    assert param == "q" and len(values) == 3
    for q in values:
        got, _ = hooks.loss_curves(LOSSES["gce"], {"q": q}, 0, o)
        p = np.exp(_log_p_correct(o, 0))
        np.testing.assert_allclose(got, (1 - p**q) / q, **CLOSE)


@pytest.mark.parametrize(("name", "kind", "bounded"), [
    ("log", "on probabilities", "unbounded"),        # -log p_c grows without bound
    ("expectation", "on probabilities", "bounded"),  # 2 - 2 p_c <= 2
    ("gce", "on probabilities", "bounded"),          # (1 - p_c^q) / q <= 1 / q
    ("hinge", "on raw outputs", "unbounded"),        # grows linearly in the logits
    ("l2", "on raw outputs", "unbounded"),
])
def test_families_are_told_apart(name, kind, bounded):
    assert hooks.loss_family(LOSSES[name], {}) == (kind, bounded)


def test_activation_curves_match_the_closed_form():
    x = np.linspace(-4, 4, 17)
    y, dy = hooks.activation_curves(catalogue.registry("activation")["elu"], {"alpha": 2.0}, x)
    np.testing.assert_allclose(y, np.where(x > 0, x, 2.0 * np.expm1(x)), **CLOSE)
    np.testing.assert_allclose(dy, np.where(x > 0, 1.0, 2.0 * np.exp(x)), **CLOSE)


def test_settings_fall_back_to_the_first_numeric_option():
    def factory(reduction="mean", width=3.0, flag=True):
        return None

    assert hooks.settings("mine", factory, {}) == ("width", [1.5, 3.0, 6.0])
    assert hooks.settings("l1", LOSSES["l1"], hooks.LOSS_SETTINGS) == (None, [])


PLUGIN = '''
import torch.nn.functional as F
from losslab.losses import register_loss


def doubled_log_kernel(x, target):
    return 2.0 * F.cross_entropy(x, target, reduction="none"), None


register_loss("doubled_log", doubled_log_kernel, title="Twice the log loss",
              seed="a test plugin", math=r"-2 \\log p_c", formula="−2 log p_c")
'''


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / "docs_test_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LOSSLAB_DOCS_PLUGINS", "docs_test_plugin")
    monkeypatch.setenv("LOSSLAB_DOCS_CACHE", str(tmp_path / "cache"))
    before = dict(LOSSES)
    yield
    LOSSES.clear()
    LOSSES.update(before)
    sys.modules.pop("docs_test_plugin", None)
    plugins._loaded.discard("docs_test_plugin")


def test_a_plugin_loss_appears_in_the_gallery_once_imported(plugin_module, tmp_path):
    assert "doubled_log" not in catalogue.registry("loss")
    hooks.import_plugins(hooks.plugin_modules(["losslab.losses"]))
    registry = catalogue.registry("loss")
    assert "doubled_log" in registry
    page, images = hooks.loss_gallery({"doubled_log": registry["doubled_log"]})
    assert "## doubled_log { #doubled_log }" in page and "a test plugin" in page
    assert "-2 \\log p_c" in page                       # its formula, as LaTeX
    assert images["losses/doubled_log.png"].startswith(PNG)
    assert len(list((tmp_path / "cache").glob("*.png"))) == 1
    again, _ = hooks.loss_gallery({"doubled_log": registry["doubled_log"]})
    assert again == page                                # drawn once, then read back


def test_plugin_modules_from_config_and_environment(monkeypatch):
    monkeypatch.setenv("LOSSLAB_DOCS_PLUGINS", "b, c,,a")
    assert hooks.plugin_modules(["a", "b"]) == ["a", "b", "c"]
    assert hooks.plugin_modules("x") == ["x", "b", "c", "a"]


def test_repository_links_become_text_pages_and_anchors_stay(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "studies.md").write_text("# s")
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "demo.toml").write_text("")
    (tmp_path / "x.png").write_text("")
    source = tmp_path / "R.md"
    source.write_text("[a](#runs) [b](studies/demo.toml) [c](studies.md#x) "
                      "[d](https://example.org) ![e](x.png) mlp[512x2](dropout=0.5)")
    page = hooks.repository_page(source, tmp_path / "docs")
    assert page == ("[a](#runs) b [c](studies.md#x) [d](https://example.org) `x.png` "
                    "mlp\\[512x2\\](dropout=0.5)")
    assert "not in this checkout" in hooks.repository_page(tmp_path / "none.md", tmp_path)


def test_math_becomes_mathml():
    page = ('<p>x <span class="arithmatex">\\(p_c &lt; 1\\)</span></p>'
            '<div class="arithmatex">\\[\\sum_j y_j\\]</div>')
    out = hooks.mathml(page)
    assert "arithmatex" not in out and out.count("<math") == 2
    assert re.search(r"<mo>(&lt;|&#x0003C;)</mo>", out) and 'display="block"' in out


def test_rst_docstrings_become_markdown():
    doc = textwrap.dedent('''\
        Summary with :math:`p_c` and :class:`~losslab.losses.Loss`, :func:`losslab.x.f`.

        .. math:: \\ell = -\\log p_c

        .. math::
            a = b
            + c

        Build one::

            loss = get_loss("log")

        Args:
            reduction, weight (str): as the base class.
            q: exponent.

        Example:
            >>> 1 + 1
            2
        ''')
    out = griffe_rst.rst_to_markdown(doc)
    assert "$p_c$" in out and "`Loss`" in out and "`losslab.x.f`" in out
    assert "$$\n\\ell = -\\log p_c\n$$" in out
    assert "$$\na = b\n+ c\n$$" in out
    assert 'Build one:\n\n```python\nloss = get_loss("log")\n```' in out
    assert "    reduction (str): as the base class.\n    weight (str): as the base class." in out
    assert "    ```pycon\n    >>> 1 + 1\n    2\n    ```" in out
    assert ":math:" not in out and ":class:" not in out and ".. math" not in out


def test_drawn_settings_are_valid_values_of_their_losses():
    for name, (param, values) in hooks.LOSS_SETTINGS.items():
        for value in values:
            LOSSES[name](**{param: value})   # refuses a bad value with LosslabError
    assert math.inf in hooks.LOSS_SETTINGS["alpha"][1]
