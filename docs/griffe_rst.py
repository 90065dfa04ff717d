"""A griffe extension: the reStructuredText of losslab's docstrings as Markdown.

The docstrings follow PyTorch's template (``.. math::`` blocks, ``:math:`` and
``:class:`` roles, ``::`` literal blocks) so that ``help()`` and ``losslab show`` read
well; mkdocstrings renders Markdown. Before griffe parses a docstring this turns

- ``.. math:: X`` (and an indented block after it) into a ``$$ X $$`` block,
- ``:math:`X``` into ``$X$`` (both rendered as MathML by docs/hooks.py),
- ``:class:`~a.b.C``` and the other cross-reference roles into the code span ``C``,
- a paragraph ending in ``::`` and the indented block after it into a fenced code block,
- ``>>>`` lines (and their ``...`` continuations) into a fenced code block,
- an ``Args:`` entry naming several parameters (``reduction, weight, validate: ...``,
  as PyTorch's docstrings write them) into one entry per parameter.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:mod|class|func|meth|data|attr|exc|obj|const):`(~?)([^`]+)`")
_MATH = re.compile(r":math:`([^`]+)`")
_SECTION = re.compile(r"\s*(Args|Arguments|Parameters|Keyword Args|Other Parameters):\s*$")
_SEVERAL = re.compile(r"(\s*)(\*{0,2}\w+(?:, \*{0,2}\w+)+)(\s*\([^)]*\))?:(\s.*|)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, base: int) -> tuple[list[str], int]:
    """The lines from ``start`` indented deeper than ``base`` (blank lines inside kept)."""
    out: list[str] = []
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
        out.append(lines[i])
        i += 1
    while out and not out[-1].strip():
        out.pop()
        i -= 1
    width = min((_indent(x) for x in out if x.strip()), default=0)
    return [x[width:] for x in out], i


def _role(match: re.Match[str]) -> str:
    short, target = match.groups()
    target = target.strip()
    if "<" in target and target.endswith(">"):  # :class:`title <target>`
        return f"`{target.split('<')[0].strip()}`"
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def rst_to_markdown(text: str) -> str:
    """Markdown for the reStructuredText constructs listed in the module docstring."""
    lines = text.splitlines()
    out: list[str] = []
    args_indent: int | None = None  # the indent of the Args: header while inside it
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        pad = " " * _indent(line)
        if stripped and args_indent is not None and _indent(line) <= args_indent:
            args_indent = None
        if _SECTION.fullmatch(line):
            args_indent = _indent(line)
        elif args_indent is not None and (several := _SEVERAL.fullmatch(line)):
            indent, names, kind, rest = several.groups()
            out += [f"{indent}{name}{kind or ''}:{rest}" for name in names.split(", ")]
            i += 1
            continue
        if stripped.startswith(">>>"):
            start = i
            while i < len(lines) and lines[i].strip().startswith((">>>", "...")):
                i += 1
            body = [x.strip() for x in lines[start:i]]
            out += ["", f"{pad}```pycon", *(pad + b for b in body), f"{pad}```", ""]
            continue
        if stripped.startswith(".. math::"):
            first = stripped[len(".. math::"):].strip()
            body, i = _block(lines, i + 1, _indent(line))
            body = ([first] if first else []) + body
            out += ["", f"{pad}$$", *(pad + b for b in body), f"{pad}$$", ""]
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            body, end = _block(lines, i + 1, _indent(line))
            if body:
                head = stripped[:-2].rstrip()
                if head:
                    out.append(pad + (head if stripped.endswith(" ::") else head + ":"))
                out += ["", f"{pad}```python", *(pad + b for b in body), f"{pad}```", ""]
                i = end
                continue
        out.append(line)
        i += 1
    joined = "\n".join(out)
    joined = _MATH.sub(lambda m: f"${m.group(1).strip()}$", joined)
    return _ROLE.sub(_role, joined)


class RstToMarkdown(griffe.Extension):
    """Rewrites each docstring as it is collected, before griffe parses its sections."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
