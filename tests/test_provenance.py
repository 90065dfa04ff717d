"""One JSON conversion and one environment record for everything losslab stores."""

import json
import math
from pathlib import Path

import numpy as np
import torch

import losslab
from losslab.provenance import environment, jsonable, versions


def test_jsonable_turns_every_value_into_json_types():
    value = {
        1: (np.float32(0.5), np.int64(3), [torch.tensor([1.0, 2.0])]),
        "path": Path("/tmp/x"),
        "array": np.arange(3).reshape(1, 3),
        "object": object,
        "inf": math.inf,
    }
    got = jsonable(value)
    assert got == {"1": [0.5, 3, [[1.0, 2.0]]], "path": "/tmp/x", "array": [[0, 1, 2]],
                   "object": repr(object), "inf": math.inf}
    # strict JSON for a stored result: non-finite floats become null, at any depth
    strict = jsonable({"a": [math.nan, torch.tensor(-math.inf)]}, finite=True)
    assert json.loads(json.dumps(strict, allow_nan=False)) == {"a": [None, None]}


def test_the_environment_record_extends_the_versions():
    record = environment("cpu", "local", 2)
    assert record.items() >= versions().items()
    assert record["losslab"] == losslab.__version__ and record["torch"] == torch.__version__
    assert (record["device"], record["executor"], record["jobs"]) == ("cpu", "local", 2)
