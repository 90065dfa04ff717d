"""``losslab report DIR`` on a real study written by the study runner."""

from __future__ import annotations

import html

import pytest
from typer.testing import CliRunner

from losslab import cli
from losslab.study import load
from report_results import run_real_study

pytestmark = pytest.mark.slow


def test_report_command_writes_the_page_and_prints_its_path(tmp_path):
    out = run_real_study(tmp_path)
    result = CliRunner().invoke(cli.app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    index = out / "report" / "index.html"
    assert result.stdout.strip() == str(index)
    page = index.read_text(encoding="utf-8")
    results = load(out)
    cells = results.cells()
    assert (cells["status"] == "done").all()
    text = html.unescape(page)
    for condition in cells["condition"].unique():
        assert condition in text
    assert results.study_text() in text
    assert "What is missing" not in page
    for src in (p.split('"')[0] for p in page.split('<img src="')[1:]):
        assert (out / "report" / src).stat().st_size > 1000
    # loss shapes of the study's own losses, alpha with its option
    assert "alpha(alpha=4)" in page


def test_report_of_a_folder_without_a_study_is_a_one_line_error(tmp_path, console):
    code, _, err = console("report", tmp_path)
    assert code == 2
    err = err.strip()
    assert err.startswith("error: ") and "holds no study results" in err
    assert len(err.splitlines()) == 1


def test_show_loss_plot_draws_any_registered_loss(tmp_path, monkeypatch):
    from losslab.losses import LOSSES, LogLoss

    class Mine(LogLoss):
        """A user's loss: registered, drawn by autograd like the built-in ones."""

    monkeypatch.setitem(LOSSES, "my_loss", Mine)
    for name, target in (("squared_hinge", tmp_path / "sq.png"), ("my_loss", tmp_path / "m.svg")):
        result = CliRunner().invoke(cli.app, ["show", "loss", name, "--plot", str(target)])
        assert result.exit_code == 0, result.output
        assert f"wrote {target}" in result.stdout
    assert (tmp_path / "sq.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = (tmp_path / "m.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and "my_loss" in svg  # the legend names the user's loss


@pytest.mark.parametrize(("args", "message"), [
    (["show", "activation", "relu", "--plot", "{dir}/a.png"], "draws losses only"),
    (["show", "loss", "log", "--plot", "{dir}/a.docx"], "unknown image type"),
    (["show", "loss", "log", "--plot", "{dir}/missing/a.png"], "does not exist"),
])
def test_show_plot_mistakes_are_one_line_errors(tmp_path, console, args, message):
    code, _, err = console(*[a.replace("{dir}", str(tmp_path)) for a in args])
    assert code == 2
    err = err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
