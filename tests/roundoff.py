"""Round-off bounds for comparing two training runs that differ only in summation order.

One step rounds each sum of K terms to within gamma_K = K u of its magnitude (u the unit
round-off of the dtype). Training amplifies such an error by a factor that belongs to the
run, not to the code under test (RMSprop divides by sqrt(v) + eps, a two-scale loss
multiplies the logits by R ~ 1e2), so the factor is measured: the reference run is repeated
from initial weights scaled by (1 + gamma_K), one step's worth of round-off. Round-off
enters at each of the T steps and an error entering at step t grows no more than one
entering at step 0, so T times the distance of that shaken run (plus T gamma_K |x| where
training does not amplify at all) bounds a difference that is round-off only.
"""

from __future__ import annotations

import numpy as np
import torch


def shaken(model: torch.nn.Module, gamma: float, double: bool = True) -> torch.nn.Module:
    """``model`` (in float64 unless ``double=False``) with every weight scaled by 1 + gamma."""
    if double:
        model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + gamma)
    return model


def bound(steps: int, reference, moved, gamma: float) -> float:
    """T (max |reference - moved| + gamma max(1, |reference|)); NaN entries (a split the
    run does not have) are ignored, and an all-NaN reference needs no tolerance."""
    reference, moved = np.asarray(reference, float), np.asarray(moved, float)
    if not np.isfinite(reference).any():
        return 0.0
    drift = np.nanmax(np.abs(reference - moved))
    return steps * (drift + gamma * max(1.0, float(np.nanmax(np.abs(reference)))))
