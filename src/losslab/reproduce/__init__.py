"""Reproduction as code: the seed documents' claims as data, judged by one rule.

Data flow: ``src/losslab/studies/claims.toml`` (:mod:`~losslab.reproduce.claims`) + the committed
results under ``results/`` (:mod:`losslab.study.compact`) -> per-claim effects and
intervals (:mod:`~losslab.reproduce.measure`) -> verdicts (:mod:`~losslab.reproduce.verdict`)
-> REPRODUCTION.md (:mod:`~losslab.reproduce.document`, ``losslab reproduce``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from losslab.lazy import members_on_first_use

if TYPE_CHECKING:
    from losslab.reproduce.claims import Claim, ClaimsFile, Comparison, load_claims
    from losslab.reproduce.verdict import RULE, VERDICTS, combine, effect_interval, verdict

# Imported on first use (PEP 562): the CLI imports this package for its `cli` module at
# every start, and the verdict's scipy and torch would cost seconds even for `--help`.
_LAZY = {
    "Claim": "claims", "ClaimsFile": "claims", "Comparison": "claims",
    "load_claims": "claims", "RULE": "verdict", "VERDICTS": "verdict", "combine": "verdict",
    "effect_interval": "verdict", "verdict": "verdict",
}

__getattr__ = members_on_first_use(__name__, _LAZY)

__all__ = ["RULE", "VERDICTS", "Claim", "ClaimsFile", "Comparison", "combine",
           "effect_interval", "load_claims", "verdict"]
