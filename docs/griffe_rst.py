"""A griffe extension: the reStructuredText of losslab's docstrings as Markdown.

The docstrings follow PyTorch's template (``.. math::`` blocks, ``:math:`` and
``:class:`` roles, ``::`` literal blocks) so that ``help()`` and ``losslab show`` read
well; mkdocstrings renders Markdown. Before griffe parses a docstring this turns

- ``.. math:: X`` (and an indented block after it) into a ``$$ X $$`` block,
- ``:math:`X``` into ``$X$`` (both rendered as MathML by docs/hooks.py),
- ``:class:`~a.b.C``` and the other cross-reference roles into the code span ``C``,
- a paragraph ending in ``::`` and the indented block after it into a fenced code block,
- a ``>>>`` session (prompts and printed output, up to a blank line) into a fenced block,
- an ``Args:`` entry naming several parameters (``reduction, weight, validate: ...``,
  as PyTorch's docstrings write them) into one entry per parameter.
"""

from __future__ import annotations

import importlib
import inspect
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
            # the session runs to the next blank line: prompts and the output they print
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) >= len(pad):
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


_VARIADIC = (griffe.ParameterKind.var_positional, griffe.ParameterKind.var_keyword)


def _init_of(cls: type, parent: griffe.Class) -> griffe.Function:
    """``cls.__init__`` as a griffe function, from its runtime signature."""
    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: griffe.ParameterKind.positional_only,
        inspect.Parameter.POSITIONAL_OR_KEYWORD: griffe.ParameterKind.positional_or_keyword,
        inspect.Parameter.VAR_POSITIONAL: griffe.ParameterKind.var_positional,
        inspect.Parameter.KEYWORD_ONLY: griffe.ParameterKind.keyword_only,
        inspect.Parameter.VAR_KEYWORD: griffe.ParameterKind.var_keyword,
    }
    parameters = [
        griffe.Parameter(p.name, kind=kinds[p.kind],
                         default=None if p.default is p.empty else repr(p.default))
        for p in inspect.signature(cls.__init__).parameters.values()
    ]
    return griffe.Function("__init__", parameters=griffe.Parameters(*parameters),
                           parent=parent)


class RuntimeClasses(griffe.Extension):
    """Classes made by a call (``L1Loss = define_loss(...)``) documented as classes.

    Static analysis sees such a name as an attribute holding a call. For each module in
    ``modules`` this inspects the imported module and puts its classes in place of those
    attributes, with their docstrings converted as above; a class whose ``__init__`` is
    written ``(*args, **kwargs)`` gets the signature it declares at run time.
    """

    def __init__(self, modules: list[str]) -> None:
        self.modules = modules

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for path in self.modules:
            if path.split(".")[0] != pkg.name:
                continue
            static = pkg.get_member(path.split(".", 1)[1])
            runtime = griffe.inspect(path.rsplit(".", 1)[1], parent=static.parent,
                                     docstring_parser=griffe.Parser.google,
                                     docstring_options={"warn_missing_types": False})
            for name, member in static.members.items():
                # a class whose __init__ takes (*args, **kwargs) and sets __signature__
                init = None if member.is_alias or not member.is_class else member.members.get(
                    "__init__")
                if init is not None and not init.is_alias and all(
                    p.kind in _VARIADIC or p.name == "self" for p in init.parameters
                ):
                    member.set_member("__init__", _init_of(
                        getattr(importlib.import_module(path), name), member))
            for name, member in runtime.members.items():
                old = static.members.get(name)
                if member.is_alias or not member.is_class or old is None or not old.is_attribute:
                    continue
                # the factory's methods and attributes are the same in every class made by
                # it: the docstring and the signature are what tells one class from another
                for attr in list(member.members):
                    del member.members[attr]
                if member.docstring is not None:
                    member.docstring.value = rst_to_markdown(member.docstring.value)
                cls = getattr(importlib.import_module(path), name)
                member.set_member("__init__", _init_of(cls, member))
                static.set_member(name, member)
