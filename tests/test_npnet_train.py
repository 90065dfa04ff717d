"""npnet.fit, the ready-made networks and the initialisers.

Training runs use scikit-learn's bundled digits (8x8 images, 10 classes), where an
MLP with 100 hidden units reaches about 97% test accuracy (scikit-learn's digits
example); a short npnet run must come close.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

from chance import above_chance
from losslab import npnet
from losslab.errors import LosslabError


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread per pytest worker: OpenBLAS threads spin-wait and crawl when two
    workers share two cores (the torch counterpart is in conftest.py)."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order] / 16.0, y[order]
    return SimpleNamespace(
        x_train=x[:1200],
        y_train=y[:1200],
        x_dev=x[1200:1500],
        y_dev=y[1200:1500],
        x_test=x[1500:],
        y_test=y[1500:],
        num_classes=10,
    )


def test_fit_reaches_published_digits_accuracy(digits):
    result = npnet.fit(
        digits.x_train,
        digits.y_train,
        digits.x_dev,
        digits.y_dev,
        digits.x_test,
        digits.y_test,
        init="he",
        optimizer="adam",
        lr=3e-3,
        batch_size=100,
        steps=400,
    )
    assert result.steps == 400
    # ~97% expected: on 297 test / 300 dev samples the binomial standard error of an accuracy
    # of 0.97 is sqrt(.97 * .03 / 300) = 1%, so 0.94 is 3 standard errors below (a run that
    # truly reaches 97% fails with probability ~1e-3; measured 0.987 and 0.97).
    assert result.test_accuracy > 0.94
    assert result.history["dev_accuracy"][-1] > 0.94
    # At 97% the loss is ~0.1 against ~0.75 over the first 100 steps (measured 0.05 / 0.75).
    assert result.history["train_loss"][-1] < 0.5 * result.history["train_loss"][0]
    assert result.history["step"] == list(range(100, 401, 100))


def test_fit_default_is_the_daza_protocol(digits):
    result = npnet.fit(digits, steps=20, eval_every=10)
    net = result.model
    assert [lay.params["W"].shape for lay in net.layers if isinstance(lay, npnet.Linear)] == [
        (64, 100),
        (100, 10),
    ]
    assert [type(lay).__name__ for lay in net.layers] == ["Linear", "Activation", "Linear"]
    assert net.layers[1].name == "relu"
    # N(0, 1e-4^2) weights: the sample sd of 6400 draws is within 1 / sqrt(2 * 6400) = 0.9% of
    # 1e-4 (one standard error), 10% is 11 of them. 20 SGD steps at lr 1e-3 move a weight by
    # <= 20 * 1e-3 * |x| |W2 (p - y)| ~ 20 * 1e-3 * 1e-4 = 2e-6: 2% of the sd at most.
    assert 0.9e-4 < net.params["0.W"].std() < 1.1e-4
    assert net.params["0.W"].dtype == np.float32
    # Tiny weights: the logits are ~0, so the loss is log(10) at first. The weights contribute
    # <= 100 units x 1e-3 x 1e-4 ~ 1e-5 to a logit; the output biases move by <= 10 steps x
    # 1e-3 x |1/10 - class frequency| (<= 0.05 for digits' balanced batches), which changes
    # the mean loss by ~10 x 1e-3 x sum_c (freq_c - 1/10)**2 <= 3e-4 (measured 1e-6). 3x that.
    assert result.history["train_loss"][0] == pytest.approx(math.log(10), abs=1e-3)
    assert result.history["lr"] == [1e-3, 1e-3]
    # So the net is still a guesser: its logits are its output biases to within the weights'
    # <= ~1e-5 (above), while 20 steps spread the biases by ~1e-4 (measured gap between the
    # top two 4e-5), so it names the class of the largest bias for every image and scores
    # that class's test frequency, exactly.
    favourite = int(np.argmax(net.params["2.b"]))
    assert result.test_accuracy == np.mean(digits.y_test == favourite)
    assert result.test_accuracy <= above_chance(digits.y_test)


def test_fit_with_dropout_batchnorm_weight_decay_and_lr_decay(digits):
    data = {"x_train": digits.x_train, "y_train": digits.y_train}
    result = npnet.fit(
        data,
        hidden=(64, 32),
        init="he",
        dropout=0.2,
        batchnorm=True,
        optimizer="momentum",
        lr=0.1,
        weight_decay=1e-3,
        lr_decay="exponential",
        batch_size=200,
        steps=60,
        eval_every=12,
    )
    # 1200 examples at batch 200: 6 steps per epoch, 0.95^epoch after each epoch.
    expected = [0.1 * 0.95 ** ((s - 1) // 6) for s in result.history["step"]]
    # The schedule evaluates this same float64 formula: a power and a product, <= 2 roundings.
    assert result.history["lr"] == pytest.approx(expected, rel=1e-15)
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
    assert "dev_loss" not in result.history and result.test_accuracy is None


def test_fit_early_stopping_restores_the_best_weights(digits):
    result = npnet.fit(
        digits,
        init="he",
        optimizer="adam",
        lr=0.05,
        batch_size=50,
        steps=600,
        eval_every=20,
        patience=3,
    )
    dev_loss = result.history["dev_loss"]
    best = int(np.argmin(dev_loss))
    assert result.best_step == result.history["step"][best]
    loss, _ = npnet.evaluate(
        result.model, npnet.get_loss("log"), digits.x_dev.astype(np.float32), digits.y_dev
    )
    # The same evaluate() of the same float32 weights and data: equal (measured 0). rel 1e-5
    # (~170 eps32) only leaves room for another float32 accumulation order of the mean, while a
    # wrong restored state is caught: consecutive dev losses here differ by >= 10%.
    assert loss == pytest.approx(dev_loss[best], rel=1e-5)
    assert result.steps < 600 and len(dev_loss) - 1 - best == 3


def test_fit_trains_a_convnet():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 8, 8))
    y = np.arange(16) % 2
    x[y == 1, 0] += 1.0
    model = npnet.janocha_convnet(3, 2, image_size=8, rng=0, dtype=np.float32)
    result = npnet.fit(
        x, y, model=model, optimizer="adam", lr=1e-3, batch_size=8, steps=30, eval_every=10
    )
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
    assert model.params["0.W"].dtype == np.float32


def test_vgg_small_shapes():
    net = npnet.vgg_small(3, 10, image_size=16, channels=(4, 8), rng=0, dtype=np.float32)
    out = net.forward(np.zeros((2, 3, 16, 16), dtype=np.float32))
    assert out.shape == (2, 10) and out.dtype == np.float32
    assert net.backward(np.ones_like(out)).shape == (2, 3, 16, 16)
    with pytest.raises(LosslabError, match="divisible"):
        npnet.vgg_small(image_size=20)


def test_fit_errors(digits):
    x, y = digits.x_train, digits.y_train
    with pytest.raises(LosslabError, match="must match"):
        npnet.fit(x, y[:-1])
    with pytest.raises(LosslabError, match="integer labels"):
        npnet.fit(x, y.astype(float))
    with pytest.raises(LosslabError, match="development set"):
        npnet.fit(x, y, patience=2)
    with pytest.raises(LosslabError, match="x_dev and y_dev"):
        npnet.fit(x, y, x_dev=x)
    with pytest.raises(LosslabError, match="x_train and y_train"):
        npnet.fit({"x_train": x})
    with pytest.raises(LosslabError, match="Valid npnet loss names"):
        npnet.fit(x, y, loss="crossentropy")


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_fit_reports_divergence(digits):
    with pytest.raises(LosslabError, match="lower the learning rate"):
        npnet.fit(digits.x_train * 1e3, digits.y_train, init="he", loss="l2", lr=10.0, steps=5)


@pytest.mark.parametrize(
    "name,std",
    [
        ("he", math.sqrt(2 / 400)),
        ("xavier", math.sqrt(2 / 600)),
        ("lecun", math.sqrt(1 / 400)),
        ("daza", 1e-4),
    ],
)
def test_initialisers(name, std):
    w = npnet.init_weight(name, (400, 200), 400, 200, np.random.default_rng(0))
    # 80k normal draws: the sample sd has relative standard error 1 / sqrt(2 * 80000) = 0.25%,
    # so 1% is 4 standard errors, and the mean's bound 4 of its standard errors (a random seed
    # fails either with probability ~6e-5; the seed is fixed).
    assert w.std() == pytest.approx(std, rel=0.01)
    assert abs(w.mean()) < 4 * std / math.sqrt(w.size)
    w32 = npnet.init_weight(name, (400, 200), 400, 200, np.random.default_rng(0), np.float32)
    np.testing.assert_array_equal(w32, w.astype(np.float32))


def test_train_and_eval_modes():
    net = npnet.MLP([4, 8, 3], dropout=0.5, batchnorm=True, rng=0)
    x = np.random.default_rng(1).standard_normal((16, 4))
    train_a, train_b = net.forward(x), net.forward(x)
    # Two dropout masks (p = 0.5) change outputs by O(1), not by allclose's 1e-5.
    assert not np.allclose(train_a, train_b)
    net.eval()
    assert all(not layer.training for layer in net.layers)
    np.testing.assert_array_equal(net.forward(x), net.forward(x))
    net.train()
    assert all(layer.training for layer in net.layers)
    with pytest.raises(LosslabError, match="MLP sizes"):
        npnet.MLP([4])
    with pytest.raises(LosslabError, match="Valid initialiser names"):
        npnet.MLP([4, 3], init="glorot_normal")
