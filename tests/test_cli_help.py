"""Every command's --help: rendered, with an example, and no bracketed word swallowed."""

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import losslab
from losslab import cli

runner = CliRunner()


def _commands() -> list[tuple[list[str], Any]]:
    """(argv prefix, command) of the app and of every command and sub-command under it."""
    found = []

    def walk(path: list[str], command: Any) -> None:
        found.append((path, command))
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk([*path, name], sub)

    walk([], typer.main.get_command(cli.app))
    return found


COMMANDS = _commands()


def _help_strings(command: Any) -> list[str]:
    texts = [command.help or ""]
    texts += [getattr(p, "help", None) or "" for p in command.params]
    return texts


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_command_is_found():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "run", "status", "export", "report", "list", "show", "train"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "losslab"
                                                             for p, _ in COMMANDS])
def test_help_shows_every_bracketed_word_and_an_example(path, command):
    result = runner.invoke(cli.app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    bracketed = [b for text in _help_strings(command) for b in re.findall(r"\[[^\]]*\]", text)]
    for word in bracketed:
        assert _flat(word) in shown, f"{word} missing from `losslab {' '.join(path)} --help`"
    # an example is a command line after "Example:" naming this very command
    name = " ".join(path) or r"\w+"
    example = rf"Examples?:\s.*\blosslab {name}\b"
    assert re.search(example, result.output, re.DOTALL), result.output


def test_run_help_keeps_the_scales_table_name():
    # rich markup used to print "a  of the file" here
    result = runner.invoke(cli.app, ["run", "--help"])
    assert "[scales.NAME]" in result.output


def test_version():
    result = runner.invoke(cli.app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"losslab {losslab.__version__}"


def test_show_loss_plot_without_a_file_name_writes_name_png_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["show", "loss", "GCE", "--plot"])
    assert result.exit_code == 0, result.output
    target = tmp_path / "gce.png"
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {target}" in result.output


def test_help_imports_no_heavy_library():
    """`losslab --help` and every verb's parsing import neither torch, pandas nor scipy:
    each costs seconds at start-up, so the verbs import them inside their functions and
    losslab.study and losslab.reproduce import their members on first use."""
    import subprocess
    import sys

    code = ("import sys\nfrom losslab import cli\n"
            "heavy = {'torch', 'pandas', 'scipy'} & set(sys.modules)\n"
            "assert not heavy, sorted(heavy)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_lazy_package_names_are_the_modules_objects():
    import losslab.reproduce as reproduce
    import losslab.study as study
    from losslab.reproduce import claims
    from losslab.study import plan, results, runner, spec

    assert study.load_study is spec.load_study and study.StudyFileError is spec.StudyFileError
    assert study.run_study is runner.run_study and study.load is results.load
    assert study.Cell is plan.Cell and reproduce.load_claims is claims.load_claims
    assert sorted(study.__all__) == sorted(study._LAZY)
    assert sorted(reproduce.__all__) == sorted(reproduce._LAZY)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        study.nothing  # noqa: B018
