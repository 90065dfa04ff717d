"""A training run's checkpoint: the state dicts of its parts in one file, written
atomically and read back only as tensors and plain data (``weights_only``).

Seed: lecture notes 2018 §7 (long runs resumed where they stopped).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
from typing import Any

import torch

from losslab.errors import LosslabError

CHECKPOINT_VERSION = 2


class Checkpoint:
    """A run's complete state: the state dicts of its parts, written atomically.

    Args:
        path: the file.
        parts: name -> an object with ``state_dict()`` / ``load_state_dict()``.
        settings: what a resumed run must share with the run that wrote the file (a
            mismatch is refused, never silently mixed).
    """

    def __init__(self, path: str, parts: dict[str, Any], settings: dict[str, str]):
        self.path, self.parts, self.settings = path, parts, settings

    def save(self) -> None:
        """Write every part's state to ``path`` (a crash never leaves half a file)."""
        state = {
            "version": CHECKPOINT_VERSION,
            "settings": self.settings,
            "parts": {name: part.state_dict() for name, part in self.parts.items()},
        }
        # Serialised in memory first: a full disk then raises OSError (ENOSPC) from the
        # plain write below, where torch.save would give an opaque RuntimeError.
        buffer = io.BytesIO()
        torch.save(state, buffer)
        tmp = f"{self.path}.tmp"
        try:
            with open(tmp, "wb") as file:
                file.write(buffer.getbuffer())
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        os.replace(tmp, self.path)

    def load(self) -> None:
        """Restore every part from ``path``; refuse a file written by another run."""
        path = self.path
        try:
            # On the CPU: generator states must stay CPU tensors; the parts copy the rest.
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # any unreadable or foreign file is a user error here
            # torch's message advises weights_only=False, i.e. running the file's code:
            # never repeat that; say what was refused instead.
            if isinstance(err, pickle.UnpicklingError) or "weights_only" in str(err):
                reason = "it holds objects other than tensors and plain data; nothing was run"
            else:
                reason = " ".join(str(err).split())[:200] or type(err).__name__
            raise LosslabError(
                f"cannot read checkpoint {path!r} ({reason}); delete it or use another "
                "checkpoint_path"
            ) from None
        if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
            raise LosslabError(
                f"{path!r} is not a training checkpoint of this losslab version; delete it or "
                "use another checkpoint_path"
            )
        theirs = state["settings"]
        changed = sorted(
            k for k in self.settings.keys() | theirs.keys() if self.settings.get(k) != theirs.get(k)
        )
        if changed:
            detail = "; ".join(f"{k}: {theirs.get(k)} -> {self.settings.get(k)}" for k in changed)
            raise LosslabError(
                f"checkpoint {path!r} was written for other models or settings ({detail}); resume "
                "with the same settings, or delete it / use another checkpoint_path for a new run"
            )
        try:
            for name, part in self.parts.items():
                part.load_state_dict(state["parts"][name])
        except (KeyError, RuntimeError, ValueError) as err:
            # Same settings, other architecture or loss: the tensors do not fit.
            reason = " ".join(str(err).split())[:240]
            raise LosslabError(
                f"checkpoint {path!r} was written for other models or settings (another "
                f"architecture, engine or loss: {reason}); delete it or use another "
                "checkpoint_path"
            ) from None
