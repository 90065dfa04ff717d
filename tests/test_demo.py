"""The interim demo: catalogue on stdout, losses.png and index.html in --out."""

from __future__ import annotations

import html

from losslab import demo
from losslab.losses import LOSSES


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
