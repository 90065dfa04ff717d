"""One seeding scheme: the streams a seed controls, their independence, and that the loss
touches none of them."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from losslab.activations import init_
from losslab.data import load_dataset
from losslab.data.noise import input_noise, label_noise
from losslab.errors import LosslabError
from losslab.models import mlp
from losslab.seeding import (
    STREAMS,
    as_rng,
    numpy_rng,
    seeded_global_rng,
    stream_seed,
    torch_generator,
)
from losslab.train import TrainConfig, train_many
from losslab.train.backends import LoopBackend, StackBackend
from losslab.train.data import BatchOrder


def test_stream_is_a_seed_sequence_keyed_by_the_sha256_of_its_name():
    key = int.from_bytes(hashlib.sha256(b"label_noise").digest()[:8], "little")
    reference = np.random.default_rng(np.random.SeedSequence(7, spawn_key=(key,)))
    np.testing.assert_array_equal(numpy_rng(7, "label_noise").random(5), reference.random(5))


def test_streams_repeat_and_are_independent():
    first = {name: numpy_rng(3, name).random(4) for name in STREAMS}
    for name, draws in first.items():
        np.testing.assert_array_equal(draws, numpy_rng(3, name).random(4))
        assert not np.array_equal(draws, numpy_rng(4, name).random(4))
    values = [tuple(d) for d in first.values()]
    assert len(set(values)) == len(STREAMS)
    seeds = {stream_seed(3, name) for name in STREAMS}
    assert len(seeds) == len(STREAMS) and all(0 <= s < 2**63 for s in seeds)


def test_bad_seeds_and_streams_are_refused():
    with pytest.raises(LosslabError, match="unknown random stream 'weight'.*weights"):
        numpy_rng(0, "weight")
    with pytest.raises(LosslabError, match="seed must be an integer >= 0"):
        numpy_rng(-1, "weights")
    with pytest.raises(LosslabError, match="seed must be an integer"):
        torch_generator(True, "weights")
    with pytest.raises(LosslabError, match="integer seed >= 0"):
        as_rng(-2)
    with pytest.raises(LosslabError, match="rng must be"):
        as_rng("0")


def test_seeding_does_not_import_torch():
    code = "import sys, losslab.seeding; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_seeded_global_rng_restores_the_callers_state():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    with seeded_global_rng(5):
        inside = torch.rand(3)
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(inside, torch.rand(3, generator=torch.Generator().manual_seed(5)))


def test_what_a_seed_controls():
    """Each stream drives exactly one random choice, drawn as documented."""
    seed = 6
    # weights: the model factories draw from the "weights" stream.
    weight = torch.empty(4, 3)
    init_(weight, "he", generator=torch_generator(seed, "weights"))
    torch.testing.assert_close(mlp(3, [4], 2, seed=seed)[1].weight, weight, rtol=0, atol=0)
    # batch_order: epoch 0 is one permutation drawn from the "batch_order" stream.
    order = BatchOrder([seed], 10, 5, True, torch.device("cpu"))
    perm = torch.randperm(10, generator=torch_generator(seed, "batch_order"))
    assert torch.equal(order.indices(1)[0], perm[5:])
    # data_split, label_noise, input_noise: the pipeline's steps, each on its own stream.
    plain = load_dataset("checkerboard", seed=seed, dev_fraction=0.25)
    noisy = load_dataset(
        "checkerboard", seed=seed, dev_fraction=0.25, label_noise_rate=0.3, input_noise_eps=0.1
    )
    np.testing.assert_array_equal(plain.x_dev, noisy.x_dev)  # split untouched by the noise
    labels, _ = label_noise(plain.y_train, 0.3, "symmetric", numpy_rng(seed, "label_noise"), 4)
    np.testing.assert_array_equal(noisy.y_train, labels)
    inputs = input_noise(plain.x_train, 0.1, numpy_rng(seed, "input_noise"))
    np.testing.assert_array_equal(noisy.x_train, inputs)
    other = load_dataset("checkerboard", seed=seed + 1, dev_fraction=0.25)
    assert not np.array_equal(plain.x_train, other.x_train)  # data_source: the points


@pytest.mark.parametrize("path", ["mlp", "vmap"])
def test_stack_and_loop_draw_the_same_dropout_masks(path):
    """A model's masks depend on its seed only: the stack (both paths) and the loop drop the
    same units, models of one seed share them, and other seeds differ. PReLU sends the
    stack down the vmap path, whose batch-norm statistics are updated per seed group."""
    seeds = [2, 5, 2]
    options = {"dropout": 0.5}
    if path == "vmap":
        options.update(activation="prelu", batchnorm=True)

    def net():
        return mlp(6, [50, 40], 3, seed=0, **options).double()

    x = torch.randn(7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    device = torch.device("cpu")
    stack = StackBackend([net() for _ in seeds], device, torch.float64, seeds)
    loop = LoopBackend([net() for _ in seeds], device, torch.float64, seeds)
    assert stack.stack.path == path
    for _ in range(2):  # the second forward draws the streams' next seeds
        a, b = stack.forward(x, shared=True), loop.forward(x, shared=True)
        # Same masks and weights: bmm vs mm summation order only (float64, sums of <= 50
        # terms: gamma_50 = 5.6e-15 of the terms' magnitude, <= ~10 here, through two layers
        # and batch-norm's 1/sd over 7 samples): ~1e-13 absolute. 1e-12 (~10x).
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        assert torch.equal(a[0], a[2]) and not torch.equal(a[0], a[1])
    for mine, theirs in zip(stack.models(), loop.models(), strict=True):
        # batch-norm running statistics: a momentum update of batch means / variances over 7
        # samples per forward, two forwards: a few eps64 of values <= ~10, well inside the
        # 1e-12 above. Weights are untouched copies (exactly equal).
        torch.testing.assert_close(mine.state_dict(), theirs.state_dict(), rtol=1e-12, atol=1e-12)


def test_changing_the_loss_changes_no_stream():
    """Models of one seed and different losses start from the same weights, read the same
    batches and drop the same units at every step (recorded by hooks on the loop engine's
    own modules; the stack's masks equal the loop's, test above); the data streams never
    see the loss at all."""
    records: list[dict] = []

    def net(seed):
        model = mlp(64, [16], 10, dropout=0.5, seed=seed)
        record = {"weights": [p.detach().clone() for p in model.parameters()], "x": [], "m": []}
        model[1].register_forward_pre_hook(lambda _m, args: record["x"].append(args[0].clone()))

        def rng_state(module, _args):
            # The global generator's state as dropout draws: equal states, equal masks.
            if module.training:
                record["m"].append(torch.get_rng_state())

        model[3].register_forward_pre_hook(rng_state)
        records.append(record)
        return model

    gen = torch.Generator().manual_seed(0)
    data = {
        "x_train": torch.randn(40, 64, generator=gen),
        "y_train": torch.randint(10, (40,), generator=gen),
    }
    config = TrainConfig(batch_size=10, steps=6, eval_every=6, device="cpu", engine="loop")
    specs = [("log", 1), ("hinge", 1), ("alpha", 1, {"loss_kwargs": {"alpha": 4.0}})]
    train_many(net, specs, data, config)
    first = records[0]
    for other in records[1:]:
        for p, q in zip(first["weights"], other["weights"], strict=True):
            assert torch.equal(p, q)
        for key in ("x", "m"):
            assert len(first[key]) == len(other[key])
            for u, v in zip(first[key], other[key], strict=True):
                assert torch.equal(u, v)
    assert len(first["m"]) == 6  # one mask per training step
