"""User plugins: modules that register losses, activations, models or datasets.

A plugin is any module that adds entries to the registries when imported::

    # mypkg/losses.py
    from losslab.losses import LOSSES
    from losslab.losses.janocha import L2Loss

    class HalfL2(L2Loss):
        '''Half the l2 loss.'''
        def per_sample(self, logits, target):
            return 0.5 * super().per_sample(logits, target)

    LOSSES["half_l2"] = HalfL2

It is loaded by naming it in a study file (``imports = ["mypkg.losses"]``) or, for every
command, by declaring it in the package's metadata::

    [project.entry-points."losslab.plugins"]
    mypkg = "mypkg.losses"          # a module, or a callable "mypkg:register" called once

A model factory that :func:`losslab.models.for_data` does not know takes the keyword
arguments ``input_shape`` (one sample's shape) and ``num_classes``.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from losslab.errors import LosslabError

GROUP = "losslab.plugins"
_loaded: set[str] = set()


def load_plugins() -> list[str]:
    """Load every ``losslab.plugins`` entry point once; returns the names loaded so far."""
    for point in entry_points(group=GROUP):
        if point.value in _loaded:
            continue
        try:
            target = point.load()
            if callable(target):
                target()
        except Exception as err:  # noqa: BLE001 - any plugin failure becomes one line
            raise LosslabError(
                f"the losslab plugin {point.name!r} ({point.value}) failed to load: "
                f"{type(err).__name__}: {err}; fix or uninstall its package"
            ) from None
        _loaded.add(point.value)
    return sorted(_loaded)


def import_modules(modules: list[str]) -> None:
    """Import user modules by name (a study's ``imports``); failures name the module."""
    for module in modules:
        try:
            import_module(module)
        except ImportError as err:
            raise LosslabError(
                f"cannot import the plugin module {module!r} ({err}); install it or put it "
                "on PYTHONPATH"
            ) from None
