"""The README's API examples run as printed: the python blocks of the activations, models,
model stack, seeding, training and npnet sections, in one namespace as a reader would run
them. Only the long training runs are shortened (60,000 and 2,000 steps to a few dozen):
the calls, names and arguments are those of the README."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"
SECTIONS = (
    "## Activations and initialisers",
    "## Models",
    "### M models as one: the model stack",
    "## Seeding",
    "## Training",
    "## `losslab.npnet`",
)
SHORTER = {"steps=60_000": "steps=30", "steps=2000": "steps=60", "steps=400": "steps=40"}


def _blocks() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    out = {}
    for match in re.finditer(r"```python\n(.*?)```", text, flags=re.DOTALL):
        heading = re.findall(r"\n(##+ [^\n]+)", text[: match.start()])[-1]
        section = next((s for s in SECTIONS if heading.startswith(s)), None)
        if section is not None:
            out[section] = out.get(section, "") + match.group(1)
    return out


def test_readme_api_examples_run(tmp_path, monkeypatch):
    blocks = _blocks()
    assert set(blocks) == set(SECTIONS), f"README sections without an example: {blocks.keys()}"
    monkeypatch.chdir(tmp_path)  # anything an example writes stays in the test's folder
    namespace: dict = {}
    torch.manual_seed(0)
    for section in SECTIONS:
        code = blocks[section]
        for long, short in SHORTER.items():
            code = code.replace(long, short)
        exec(compile(code, f"{README} ({section})", "exec"), namespace)  # noqa: S102
    # The training example's grid: 3 losses x 5 seeds, each trained for the steps asked.
    results = namespace["results"]
    assert len(results) == 15
    assert {r.spec.loss for r in results} == {"log", "hinge", "two_scale"}
    assert all(r.steps_run == 30 for r in results if not r.diverged)
    # npnet's digits MLP learns in 40 steps: far above the 10 % of guessing (the README's
    # 400 steps reach 0.987; 40 reached 0.896 here, and round-off on another machine moves
    # that by a few samples at most, far from the 0.5 bound).
    assert namespace["result"].test_accuracy > 0.5
