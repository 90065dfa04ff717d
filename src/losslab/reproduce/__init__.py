"""Reproduction as code: the seed documents' claims as data, judged by one rule.

Data flow: ``studies/claims.toml`` (:mod:`~losslab.reproduce.claims`) + the committed
results under ``results/`` (:mod:`losslab.study.compact`) -> per-claim effects and
intervals (:mod:`~losslab.reproduce.measure`) -> verdicts (:mod:`~losslab.reproduce.verdict`)
-> REPRODUCTION.md (:mod:`~losslab.reproduce.document`, ``losslab reproduce``).
"""

from losslab.reproduce.claims import Claim, ClaimsFile, Comparison, load_claims
from losslab.reproduce.verdict import RULE, VERDICTS, combine, effect_interval, verdict

__all__ = ["RULE", "VERDICTS", "Claim", "ClaimsFile", "Comparison", "combine",
           "effect_interval", "load_claims", "verdict"]
