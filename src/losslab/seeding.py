"""One seeding scheme: named, independent random streams derived from one integer seed.

A run is reproducible from one seed, and every random choice in it draws from its own
stream of that seed, so switching one choice on or off never shifts another: adding label
noise leaves the dev split alone, adding dropout leaves the batch order alone. Stream
``name`` of seed ``s`` is the NumPy ``SeedSequence(entropy=s, spawn_key=(key(name),))``,
with ``key(name)`` the first 8 bytes of the SHA-256 of the name read as a little-endian
integer: a stable hash (unlike Python's ``hash``, it is the same in every process), so the
stream of a name never depends on which other streams exist or in which order they are
drawn. The same sequence hands out a ``numpy.random.Generator`` (:func:`numpy_rng`) or
seeds a ``torch.Generator`` (:func:`torch_generator`).

None of the streams depends on the loss, the learning rate or the other models trained
alongside: models of one seed start from the same weights, read the same batches and drop
the same units, the common random numbers that make comparisons between losses paired
(Janocha & Czarnecki 2017, section 3: every loss trained from the same initialisations).

torch is imported on first use only, so the NumPy-only parts of losslab (``npnet``,
``data``) can draw from the streams without loading it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from losslab.checks import check_int
from losslab.errors import LosslabError

if TYPE_CHECKING:
    import torch

#: The named streams of one seed and what each drives. A new kind of random choice gets
#: its own entry (``STREAMS["my_choice"] = "..."``) rather than sharing an existing stream.
STREAMS: dict[str, str] = {
    "weights": "initial weights of the model factories",
    "batch_order": "the permutation of the training set in every epoch",
    "dropout": "dropout masks (and every other random op inside a training forward)",
    "data_source": "data a source generates or the train/test split it draws",
    "data_split": "the stratified dev split held out of the training set",
    "label_noise": "which labels are flipped, and to what",
    "input_noise": "the Gaussian noise added to the inputs",
    "tuning": "the samplers of hyper-parameter searches",
}


def stream_key(stream: str) -> int:
    """The stable 64-bit key of stream ``stream`` (SHA-256 of its name, first 8 bytes)."""
    if stream not in STREAMS:
        raise LosslabError(
            f"unknown random stream {stream!r}; choose one of {', '.join(STREAMS)} "
            "(or add a new one to losslab.seeding.STREAMS)"
        )
    return int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "little")


def seed_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    """``SeedSequence(entropy=seed, spawn_key=(stream_key(stream),))``.

    Args:
        seed: the user's non-negative integer seed.
        stream: a key of :data:`STREAMS`.
    """
    seed = check_int("seed", seed, 0)
    return np.random.SeedSequence(seed, spawn_key=(stream_key(stream),))


def numpy_rng(seed: int, stream: str) -> np.random.Generator:
    """A fresh ``numpy.random.Generator`` (PCG64) on stream ``stream`` of ``seed``."""
    return np.random.default_rng(seed_sequence(seed, stream))


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit integer seed for stream ``stream`` of ``seed`` (for ``manual_seed``)."""
    return int(seed_sequence(seed, stream).generate_state(1, np.uint64)[0] >> 1)


def torch_generator(seed: int, stream: str, device: Any = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with :func:`stream_seed`."""
    import torch

    return torch.Generator(device=device).manual_seed(stream_seed(seed, stream))


def as_rng(rng: np.random.Generator | int, what: str = "rng") -> np.random.Generator:
    """Accept a NumPy Generator (returned as is) or an integer seed (``default_rng(seed)``).

    Args:
        rng: the generator or seed a library function was given.
        what: the argument's name in the error message.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer) or rng < 0:
        raise LosslabError(
            f"{what} must be a numpy.random.Generator or an integer seed >= 0, got {rng!r}; "
            "randomness is always passed in, e.g. np.random.default_rng(0)"
        )
    return np.random.default_rng(int(rng))


def draw_seed(generator: torch.Generator) -> int:
    """The next 62-bit seed drawn from ``generator`` (advances it by one draw)."""
    import torch

    return int(torch.randint(2**62, (1,), generator=generator, device=generator.device))


def uses_global_rng(module: torch.nn.Module) -> bool:
    """Whether a training forward of ``module`` draws from torch's global generator
    (it holds dropout or RReLU layers, which take no generator argument)."""
    from torch import nn

    return any(isinstance(m, nn.modules.dropout._DropoutNd | nn.RReLU) for m in module.modules())


@contextmanager
def seeded_global_rng(seed: int, device: Any = "cpu") -> Iterator[None]:
    """Run a block on torch's global generator of ``device`` re-seeded with ``seed``.

    Some random ops take no generator argument: ``nn.Dropout`` inside a module, random ops
    under ``torch.vmap``. Inside the block the global generator of ``device`` (the CPU's,
    or the current CUDA device's) starts from ``seed``; on exit the global state of the
    CPU and of that device is restored (``torch.random.fork_rng``), so the caller's random
    numbers are untouched and library code never depends on global state.

    Args:
        seed: non-negative integer, e.g. :func:`draw_seed` of a stream generator.
        device: the device whose random ops the block runs.
    """
    import torch

    device = torch.device(device)
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        else:
            torch.default_generator.manual_seed(seed)
        yield
