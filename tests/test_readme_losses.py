"""The README's loss examples run as printed (the python blocks of its "Losses" section)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _loss_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Losses", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_readme_loss_examples_run():
    blocks = _loss_blocks()
    assert len(blocks) >= 3  # the module, two-scale and functional examples
    namespace: dict = {}
    torch.manual_seed(0)
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    # The functional example's first line equals the module it names.
    logits, labels = namespace["logits"], namespace["labels"]
    functional, get_loss = namespace["LF"], namespace["get_loss"]
    # The module and the functional form run the same kernel and reduction on the same
    # tensors: bit-identical, so no tolerance.
    torch.testing.assert_close(
        functional.cauchy_schwarz(logits, labels),
        get_loss("cauchy_schwarz")(logits, labels),
        rtol=0,
        atol=0,
    )
