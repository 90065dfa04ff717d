"""Content hashing: the identity of a cell, a stack or a tuning condition is its JSON.

A cell is stored under the hash of its resolved configuration, so the same configuration
finds its stored result again on resume, in another output folder, or in a later study.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Key-sorted, compact JSON: the same configuration always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def content_hash(value: Any) -> str:
    """A 16-hex-digit SHA-256 prefix of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:16]
