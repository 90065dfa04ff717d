"""The docs pages' examples run as printed: the python blocks of the guide pages a reader
runs without a stored study, one namespace per page. Only the long training runs are
shortened, as in tests/test_readme_api.py. (Statistics, studies and the report read a
stored study; their commands are exercised by the study and report tests.)"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

from losslab import plugins
from losslab.losses import LOSSES

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ("getting-started", "losses", "activations", "models", "training", "npnet")
SHORTER = {"steps=60_000": "steps=30", "steps=2000": "steps=60", "steps=400": "steps=40"}


def _blocks(page: str) -> list[str]:
    text = (DOCS / f"{page}.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.fixture
def clean_registry(tmp_path, monkeypatch):
    """Examples that register a plugin loss leave the registry as it was."""
    monkeypatch.chdir(tmp_path)  # anything an example writes stays in the test's folder
    before = dict(LOSSES)
    modules = set(sys.modules)
    yield
    LOSSES.clear()
    LOSSES.update(before)
    for name in set(sys.modules) - modules:
        if name.startswith("my_"):
            sys.modules.pop(name, None)
            plugins._loaded.discard(name)


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page, clean_registry):
    blocks = _blocks(page)
    assert blocks, f"docs/{page}.md has no python example"
    namespace: dict = {}
    torch.manual_seed(0)
    for block in blocks:
        for long, short in SHORTER.items():
            block = block.replace(long, short)
        exec(compile(block, f"docs/{page}.md", "exec"), namespace)  # noqa: S102
