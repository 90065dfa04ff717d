"""The wheel is a working losslab: built from a copy of the sources, installed into an empty
folder and run from a directory outside the checkout (so neither the checkout's ``src`` nor
its editable install can stand in), it lists the ready-made studies and plans the demo; and
it holds the package data a user needs (the presets, the claims file, the report's
templates, the marker of a typed package). Built offline: no build isolation, no index."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "losslab"


def _pip(*args: str, cwd: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", *args, "--no-index",
                             "--disable-pip-version-check", "-q"],
                            cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The built wheel and the folder it is installed in."""
    base = tmp_path_factory.mktemp("packaging")
    # A copy, so the build's build/ and *.egg-info never land in the checkout (xdist
    # workers and other builds share it).
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), str(source),
         cwd=base)
    (built,) = (base / "dist").glob("losslab-*.whl")
    _pip("install", "--no-deps", "--target", str(base / "site"), str(built), cwd=base)
    return built, base / "site"


def test_the_wheel_holds_the_package_data(wheel):
    built, _ = wheel
    names = set(zipfile.ZipFile(built).namelist())
    presets = {f"losslab/studies/{p.name}" for p in (PACKAGE / "studies").glob("*.toml")}
    assert "losslab/studies/claims.toml" in presets and "losslab/studies/demo.toml" in presets
    assert presets <= names, sorted(presets - names)
    templates = {f"losslab/report/templates/{p.name}"
                 for p in (PACKAGE / "report" / "templates").iterdir() if p.is_file()}
    assert templates and templates <= names, sorted(templates - names)
    assert "losslab/py.typed" in names


def test_the_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    _, site = wheel
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LOSSLAB_STUDIES")}
    env.update(PYTHONPATH=str(site), LOSSLAB_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    commands = {
        "list": ["-m", "losslab.cli", "list", "studies"],
        "plan": ["-m", "losslab.cli", "run", "demo", "--dry-run"],
    }
    # Side by side: each pays the import of torch.
    running = {key: subprocess.Popen([sys.executable, *args], cwd=elsewhere, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for key, args in commands.items()}
    out = {}
    for key, process in running.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{commands[key]}: {stdout}{stderr}"
        out[key] = stdout
    listed = {line.split()[0]: line for line in out["list"].splitlines() if line.strip()}
    expected = {p.stem for p in (PACKAGE / "studies").glob("*.toml")} - {"claims"}
    assert set(listed) >= expected, sorted(expected - set(listed))
    # The presets are found next to the installed package: the installed copy answered,
    # not the checkout's sources.
    assert f"[{(site / 'losslab' / 'studies' / 'demo.toml').resolve()}]" in listed["demo"]
    assert out["plan"].startswith("study demo: ") and "estimated time" in out["plan"]
    assert not (elsewhere / "results").exists()  # a dry run writes nothing
