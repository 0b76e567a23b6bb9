"""The training loss cannot report a finite number for targets the model cannot score."""

import keras
import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras.losses import nll_bits_per_dim
from tests.tiers import slow

SHAPE = (3, 3, 1)


def _model(num_levels, jit_compile=False):
    keras.utils.set_random_seed(0)
    model = pk.build_model("pixelcnn", SHAPE, num_levels, num_layers=1, hidden=4)
    model.compile(optimizer="rmsprop", loss=pk.NegativeLogLikelihood(), jit_compile=jit_compile)
    return model


@pytest.mark.parametrize("num_levels, value, jit_compile", [
    (17, 255, False),   # softmax head, values >= L (8-bit images given to a 17-level model)
    (17, -1, True),     # negative values, under XLA
    (2, 255, False),    # binary head given 0/255 data
    (2, 255, True),
])
@slow
def test_fit_on_out_of_range_targets_reports_nan_and_terminate_on_nan_stops(num_levels, value, jit_compile):
    model = _model(num_levels, jit_compile)
    images = np.zeros((8,) + SHAPE, np.int32)
    images[1::2] = value
    history = model.fit(images, images, batch_size=8, epochs=3, verbose=0,
                        callbacks=[keras.callbacks.TerminateOnNaN()])
    assert model.stop_training
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])
    assert all(np.isfinite(weight).all() for weight in model.get_weights())  # the NaN is not in the gradient


@pytest.mark.parametrize("num_levels", [2, 5])
def test_loss_on_valid_targets_is_log_prob_in_bits_per_dim(num_levels):
    model = _model(num_levels)
    images = np.random.default_rng(0).integers(0, num_levels, (4,) + SHAPE).astype(np.int32)
    expected = -pk.log_prob(model, images) / (np.prod(SHAPE) * np.log(2.0))
    logits = model(images)
    np.testing.assert_allclose(nll_bits_per_dim(images.astype(np.float32), logits), expected, rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(images, images, verbose=0), expected.mean(), rtol=1e-5)


def test_only_images_with_a_bad_target_are_nan():
    model = _model(5)
    images = np.ones((5,) + SHAPE, np.float32)
    images[1, 0, 0, 0] = 5        # == num_levels
    images[2, 2, 1, 0] = 2.5      # not an integer
    images[3, 1, 1, 0] = np.nan
    images[4, 0, 2, 0] = 4        # the largest valid level
    loss = np.asarray(nll_bits_per_dim(images, model(np.nan_to_num(images).astype(np.int32))))
    assert np.isnan(loss[1:4]).all() and np.isfinite(loss[[0, 4]]).all()
