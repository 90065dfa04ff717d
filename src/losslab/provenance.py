"""What a stored result records about itself: JSON-clean values and the environment.

One JSON conversion (:func:`jsonable`) serves the study plan, the trainer's result and the
data sets' metadata; one environment record (:func:`environment`, built on
:func:`versions`) serves the study store and the trainer's result. A leaf module: it
imports nothing of losslab but the version, and torch only when asked for versions
(``losslab.data`` stays free of torch).
"""

from __future__ import annotations

import math
import os
import platform
from typing import Any

import numpy as np

from losslab import __version__


def jsonable(value: Any, *, finite: bool = False) -> Any:
    """``value`` made of JSON types: dicts (keys as ``str``), lists, str, int, float, bool, None.

    Tuples become lists, tensors and arrays nested lists, NumPy scalars Python numbers,
    paths strings; anything else its ``repr``.

    Args:
        value: a Python, NumPy or torch value, nested in dicts, lists and tuples.
        finite: True turns NaN and +/-inf into None (strict JSON, as a stored result needs);
            False keeps them (an option such as ``alpha = inf`` means what it says).
    """
    if isinstance(value, float):
        return None if finite and not math.isfinite(value) else value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, np.ndarray | np.generic) or _is_tensor(value):
        return jsonable(value.tolist(), finite=finite)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, finite=finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, finite=finite) for v in value]
    return repr(value)


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "tolist")


def versions() -> dict[str, str]:
    """The versions a result depends on: losslab, torch, numpy, Python."""
    import torch

    return {
        "losslab": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def environment(device: str, executor: str, jobs: int) -> dict[str, Any]:
    """:func:`versions` plus the platform, CPUs, threads and device of this process.

    Args:
        device: the torch device the run uses (``"cpu"``, ``"cuda:0"``).
        executor: the study executor's name (``"local"``, ``"ray"``).
        jobs: how many cells run at once.
    """
    import torch

    return {
        **versions(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "executor": executor,
        "jobs": jobs,
    }
