"""One way to resolve names: ``registry.resolve`` returns the canonical key with the entry."""

import pytest

from losslab.data import DATASETS, FALLBACK_TRAIN_DEFAULTS, FILELESS, TRAIN_DEFAULTS
from losslab.errors import LosslabError
from losslab.losses import LOSSES
from losslab.models import MODELS, for_data
from losslab.registry import lookup, resolve


@pytest.mark.parametrize(
    "registry, typed, key",
    [
        (LOSSES, " Squared-Hinge ", "squared_hinge"),
        (MODELS, "MNIST1D-CNN", "mnist1d_cnn"),
        (DATASETS, "Fashion-MNIST", "fashion_mnist"),
    ],
)
def test_resolve_returns_the_canonical_key_and_the_entry(registry, typed, key):
    assert resolve(registry, typed, "thing") == (key, registry[key])
    assert lookup(registry, typed, "thing") is registry[key]


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(LosslabError, match="Did you mean 'hinge'.*Valid loss names: alpha"):
        resolve(LOSSES, "hinj", "loss")


def test_for_data_builds_the_canonical_model_under_any_spelling():
    assert type(for_data("MLP", (4,), 3, seed=0)) is type(for_data("mlp", (4,), 3, seed=0))


def test_train_defaults_are_data_beside_the_registry():
    assert set(TRAIN_DEFAULTS) <= set(DATASETS) and FILELESS <= set(DATASETS)
    for defaults in [*TRAIN_DEFAULTS.values(), FALLBACK_TRAIN_DEFAULTS]:
        assert defaults["model"] in MODELS
