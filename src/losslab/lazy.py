"""Package members imported on first use (PEP 562), for packages the CLI imports at start.

``losslab --help`` and every verb import :mod:`losslab.study` and :mod:`losslab.reproduce`
for their ``cli`` modules; the pandas, scipy and torch behind their other members would
cost seconds before the command line is even parsed. Such a package names its members in a
table and sets ``__getattr__ = members_on_first_use(__name__, table)``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def members_on_first_use(package: str, members: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: ``package.NAME`` imports
    ``package.<members[NAME]>`` on first use and keeps NAME in the package's namespace, so
    later uses cost nothing.

    Args:
        package: the package's ``__name__``.
        members: public name -> the submodule (relative name) that defines it.
    """

    def __getattr__(name: str) -> Any:
        if name not in members:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{members[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
