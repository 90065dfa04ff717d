"""The interim demo: catalogue on stdout, losses.png and index.html in --out."""

from __future__ import annotations

import html

import numpy as np
import pytest

from losslab import demo
from losslab.losses import LOSSES
from losslab.losses.two_scale import TWO_SCALE_LOSSES


def test_main_writes_figure_and_page(tmp_path, capsys):
    out = tmp_path / "nested" / "demo"
    assert demo.main(["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    png = (out / "losses.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    page = (out / "index.html").read_text(encoding="utf-8")
    assert '<img src="losses.png"' in page
    for name, cls in LOSSES.items():
        assert name in printed and cls.formula in printed
        assert f"<code>{name}</code>" in page
        assert html.escape(cls.formula) in page and html.escape(cls.seed) in page
    # the two-scale formula holds "<", which must reach the page escaped
    assert "δX &lt; η" in page and "δX < η" not in page


def test_out_that_is_a_file_is_a_user_error(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert demo.main(["--out", str(target)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_margin_curves_match_closed_forms():
    margins = np.array([-3.0, -0.5, 0.7, 2.0])
    curves = demo.margin_curves(margins)
    assert set(curves) == set(LOSSES) - set(TWO_SCALE_LOSSES)
    p_c = np.exp(margins) / (np.exp(margins) + 3)
    values, grads = curves["log"]
    np.testing.assert_allclose(values, -np.log(p_c), rtol=1e-12)
    np.testing.assert_allclose(grads, p_c - 1, rtol=1e-12)  # d(-log p_c)/dm = p_c - 1
    values, grads = curves["expectation"]
    np.testing.assert_allclose(values, 2 - 2 * p_c, rtol=1e-12)
    np.testing.assert_allclose(grads, -2 * p_c * (1 - p_c), rtol=1e-12)
    # l2 on logits (m, 0, 0, 0) with target (1, 0, 0, 0): (1 - m)^2
    values, grads = curves["l2"]
    np.testing.assert_allclose(values, (1 - margins) ** 2)
    np.testing.assert_allclose(grads, 2 * (margins - 1))


@pytest.mark.parametrize("name", sorted(set(LOSSES) - set(TWO_SCALE_LOSSES)))
def test_margin_derivative_matches_finite_differences(name):
    margins = np.array([-2.3, -0.4, 0.3, 1.7, 3.1])  # away from the hinges' kinks
    h = 1e-6
    _, grads = demo.margin_curves(margins)[name]
    up, _ = demo.margin_curves(margins + h)[name]
    down, _ = demo.margin_curves(margins - h)[name]
    np.testing.assert_allclose(grads, (up - down) / (2 * h), rtol=1e-5, atol=1e-7)
