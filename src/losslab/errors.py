"""The one exception type of losslab.

Every error a user can cause (a bad config, an unknown name, a malformed file,
labels out of range, NaN in data) raises :class:`LosslabError`. It subclasses
``ValueError`` so that code written against plain Python conventions still
catches it; the CLI prints its message without a traceback.
"""

from __future__ import annotations


class LosslabError(ValueError):
    """A user-facing error: the message says what was wrong and how to fix it."""
