"""Every arch learns: a few hundred RMSProp steps on the 8 x 8 digits beat the uniform model."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import pixel_keras as pk
from pixel_keras.data import load_digits
from tests.tiers import slow

pytestmark = slow


@pytest.mark.parametrize("arch", pk.arch_names())
def test_arch_trains_on_digits_well_below_uniform(arch):
    (train, test), num_levels = load_digits()
    model = pk.build_model(arch, train.shape[1:], num_levels, num_layers=2, hidden=16)
    model.compile(optimizer=keras.optimizers.RMSprop(3e-3), loss=pk.NegativeLogLikelihood(), jit_compile=True)
    images = train.astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((images, images)).shuffle(len(images), seed=0).repeat().batch(32)
    history = model.fit(dataset, steps_per_epoch=100, epochs=3, verbose=0)
    test_bits = float(np.mean(pk.bits_per_dim(model, test)))
    uniform = math.log2(num_levels)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert test_bits < uniform - 1.5, f"{arch}: {test_bits:.3f} bits/dim vs uniform {uniform:.3f}"
