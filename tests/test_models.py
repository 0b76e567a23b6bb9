"""Models: exact normalisation, .keras round trips, input validation, XLA compilation."""

import warnings

import keras
import numpy as np
import pytest
from scipy.special import logsumexp

import pixel_keras as pk
from tests.tiny_cases import all_images
from tests.tiers import slow, slow_except


@pytest.mark.parametrize("image_shape,num_levels", slow_except([((2, 2, 1), 2), ((2, 2, 1), 4), ((1, 2, 3), 4)],
                                                               ((1, 2, 3), 4)))
@pytest.mark.parametrize("arch", pk.arch_names())
def test_probabilities_of_all_images_sum_to_one(arch, image_shape, num_levels):
    model = pk.build_model(arch, image_shape, num_levels, num_layers=2, hidden=6)
    log_probs = pk.log_prob(model, all_images(image_shape, num_levels), batch_size=4096)
    assert abs(logsumexp(log_probs.astype(np.float64))) < 1e-4


def test_a_leaky_model_is_not_normalised():
    """The normalisation check has teeth: letting a pixel see itself (mask B first) breaks it."""
    images = keras.Input((2, 2, 1), dtype="int32")
    x = keras.layers.Rescaling(2 / 3, offset=-1)(images)
    x = pk.layers.MaskedConv2D(8, 3, "B")(x)
    x = pk.layers.MaskedConv2D(4, 1, "B")(keras.layers.ReLU()(x))
    model = keras.Model(images, keras.layers.Reshape((2, 2, 1, 4))(x))
    for weight in model.trainable_weights:  # weights of one size on every backend (initialisers differ)
        weight.assign(np.random.default_rng(0).normal(0, 1, weight.shape).astype("float32"))
    log_probs = pk.log_prob(model, all_images((2, 2, 1), 4))
    assert abs(logsumexp(log_probs.astype(np.float64))) > 1e-2


@pytest.mark.parametrize("arch", slow_except(pk.arch_names(), "pixelcnn"))
def test_model_round_trips_through_keras_file(arch, tmp_path):
    model = pk.build_model(arch, (4, 4, 3), 8, num_layers=2, hidden=6, skip=True)
    images = np.random.default_rng(0).integers(0, 8, (3, 4, 4, 3))
    path = tmp_path / f"{arch}.keras"
    model.save(path)
    loaded = pk.load_model(path)
    np.testing.assert_array_equal(pk.log_prob(loaded, images), pk.log_prob(model, images))
    np.testing.assert_allclose(pk.bits_per_dim(loaded, images), -pk.log_prob(model, images) / (48 * np.log(2)),
                               rtol=1e-6)


@pytest.mark.tensorflow
@pytest.mark.parametrize("arch", slow_except(pk.arch_names(), "pixelcnn"))
def test_model_compiles_with_xla(arch):
    import tensorflow as tf

    model = pk.build_model(arch, (4, 4, 1), 4, num_layers=1, hidden=4)
    images = np.random.default_rng(0).integers(0, 4, (2, 4, 4, 1)).astype(np.int32)
    compiled = tf.function(lambda x: model(x), jit_compile=True)
    np.testing.assert_allclose(compiled(images).numpy(), model(images).numpy(), atol=1e-5)


@pytest.mark.parametrize("images,message", [
    (np.zeros((2, 4, 4, 1), np.float32), "dtype float32"),
    (np.full((2, 4, 4, 1), 4), r"values in \[0, 3\]. Received values in \[4, 4\]"),
    (np.full((2, 4, 4, 1), -1), r"values in \[-1, -1\]"),
    (np.zeros((2, 4, 4, 3), np.int32), r"shape \(2, 4, 4, 3\)"),
    (np.zeros((4, 4, 1), np.int32), "rank 4"),
])
def test_bad_images_raise_value_error_naming_the_problem(images, message):
    model = pk.build_model("pixelcnn", (4, 4, 1), 4, num_layers=1, hidden=2)
    for fn in (pk.log_prob, pk.bits_per_dim):
        with pytest.raises(ValueError, match=message):
            fn(model, images)


@pytest.mark.parametrize("kwargs,message", [
    (dict(arch="pixel_cnn"), "arch"),
    (dict(image_shape=(4, 4, 2)), "channels"),
    (dict(image_shape=(4, 4)), "image_shape"),
    (dict(num_levels=1), "num_levels"),
    (dict(hidden=0), "hidden"),
    (dict(arch="diagonal_bilstm", image_shape=(5, 4, 1)), "width >= height"),
])
def test_bad_model_arguments(kwargs, message):
    arguments = dict(arch="pixelcnn", image_shape=(4, 4, 1)) | kwargs
    with pytest.raises(ValueError, match=message):
        pk.build_model(**arguments)


@slow
def test_paper_default_sizes():
    """15-layer PixelCNN (first + 12 blocks + 2 head convolutions), 12-layer PixelRNNs, h = 128."""
    model = pk.build_model("pixelcnn", (8, 8, 1), 256)
    convs = [layer for layer in model.layers if isinstance(layer, pk.layers.MaskedConv2D)]
    assert len(convs) == 1 + 12 * 3 + 2 and convs[0].filters == 256 and convs[0].kernel_size == (7, 7)
    rnn = pk.build_model("row_lstm", (8, 8, 1), 256)
    assert sum(isinstance(layer, pk.layers.RowLSTM) for layer in rnn.layers) == 12
    assert rnn.get_layer("row_lstm0").units == 128


def test_dropout_acts_in_training_only_and_keeps_the_model_exact():
    """Dropout on the blocks' outputs: the identity when scoring and sampling (probabilities of all
    images still sum to 1, fast sampling has its rule), random while training; bad rates refused."""
    keras.utils.set_random_seed(0)
    model = pk.build_model("pixelcnn", (2, 2, 1), 3, num_layers=2, hidden=4, dropout=0.5)
    images = all_images((2, 2, 1), 3)
    log_p = pk.log_prob(model, images)
    np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(log_p, pk.log_prob(model, images))
    logits = keras.ops.convert_to_numpy(model(images, training=False))
    trained = keras.ops.convert_to_numpy(model(images, training=True))
    assert not np.allclose(logits, trained), "dropout should change the logits while training"
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to the plain loop
        pk.sample(model, 4, seed=0)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert len([layer for layer in restored.layers if isinstance(layer, keras.layers.Dropout)]) == 2
    for rate in (1.0, -0.1, "0.5", True):
        with pytest.raises(ValueError, match="dropout"):
            pk.build_model("pixelcnn", (2, 2, 1), 3, num_layers=1, hidden=4, dropout=rate)
