"""Name -> constructor registries (keras ``losses.get`` / timm ``create_act`` style).

A registry is a plain ``dict`` keyed by lowercase snake_case names. :func:`lookup`
is the one place that turns an unknown name into a :class:`LosslabError` listing
the valid names, so every registry (losses, activations, models, datasets)
answers a typo the same way.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from losslab.errors import LosslabError

T = TypeVar("T")


def resolve(registry: Mapping[str, T], name: str, kind: str) -> tuple[str, T]:
    """The canonical key of ``name`` and its entry; an unknown name raises an error listing
    the valid ones.

    Args:
        registry: the name -> entry mapping.
        name: the requested name (matched case-insensitively, ``-`` read as ``_``).
        kind: what the registry holds ("loss", "activation", ...), for the message.

    Returns:
        ``(key, registry[key])``, e.g. ``resolve(LOSSES, "Squared-Hinge", "loss")`` ->
        ``("squared_hinge", SquaredHingeLoss)``.
    """
    if not isinstance(name, str):
        raise LosslabError(f"a {kind} name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key in registry:
        return key, registry[key]
    valid = sorted(registry)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise LosslabError(f"unknown {kind} {name!r}.{hint} Valid {kind} names: {', '.join(valid)}")


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """``registry[name]`` as :func:`resolve` finds it (the entry only)."""
    return resolve(registry, name, kind)[1]


def build(registry: Mapping[str, Callable[..., T]], name: str, kind: str, **kwargs: Any) -> T:
    """Look ``name`` up and call it with ``kwargs``; a wrong keyword becomes a LosslabError."""
    factory = lookup(registry, name, kind)
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as err:
        try:
            accepted = ", ".join(
                p for p in inspect.signature(factory).parameters if p not in ("self", "args")
            )
        except (TypeError, ValueError):
            accepted = "?"
        raise LosslabError(
            f"bad arguments for {kind} {name!r}: {err}. It accepts: {accepted or 'no arguments'}"
        ) from None
    return factory(**kwargs)
