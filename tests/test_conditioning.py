"""Class-conditional models and the `Conditioning` layer (labels or a spatial map)."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from scipy.stats import chisquare

import pixel_keras as pk
from pixel_keras.cli import RunError
from pixel_keras.data import DataError, load_dataset, load_digit_labels, load_digits, with_labels
from pixel_keras.layers import Conditioning, DiagonalBiLSTM, RowLSTM
from tests.dependencies import assert_causal, dependency_map
from tests.tiny_cases import all_images, conditional_archs, randomise_weights
from tests.tiers import slow, slow_except




def test_label_conditioning_is_a_learned_vector_per_class():
    layer = Conditioning(5, num_classes=3)
    bias = keras.ops.convert_to_numpy(layer(np.array([2, 0, 2], np.int32)))
    vectors = layer.class_vectors.numpy()
    assert bias.shape == (3, 1, 1, 5)
    np.testing.assert_allclose(bias[:, 0, 0], vectors[[2, 0, 2]], rtol=1e-6)


def test_spatial_conditioning_is_an_unmasked_1x1_convolution():
    layer = Conditioning(4)
    spatial = np.random.default_rng(0).normal(size=(2, 3, 5, 2)).astype("float32")
    bias = keras.ops.convert_to_numpy(layer(spatial))
    np.testing.assert_allclose(bias, np.einsum("bhwc,cu->bhwu", spatial, layer.kernel.numpy()), rtol=1e-5, atol=1e-6)
    clone = Conditioning.from_config(layer.get_config())
    assert (clone.units, clone.num_classes) == (4, None)


@pytest.mark.parametrize("kwargs,message", [
    (dict(units=0), "units=0"),
    (dict(units=4, num_classes=1), "num_classes=1"),
    (dict(units=4, num_classes=2.0), "num_classes=2.0"),
])
def test_conditioning_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conditioning(**kwargs)


def _input_to_state_convs(layer):
    convs = layer.input_to_state
    return convs if isinstance(convs, list) else [convs]


@pytest.mark.parametrize("make_layer", [lambda: RowLSTM(2, kernel_size=1), lambda: DiagonalBiLSTM(2)],
                         ids=["row_lstm", "diagonal_bilstm"])
def test_spatial_conditioning_enters_the_input_to_state_map(make_layer):
    """A layer whose 1 x 1 input-to-state convolutions are zero, conditioned on its own input
    through a spatial `Conditioning` with their kernel, equals the plain layer: the bias is added
    exactly where the input-to-state map is (mirrored with the right-to-left direction)."""
    inputs = np.random.default_rng(0).normal(size=(2, 3, 4, 2)).astype("float32")
    plain, conditioned = make_layer(), make_layer()
    plain.build(inputs.shape)
    conditioned.build(inputs.shape)
    kernel = np.random.default_rng(1).normal(size=(1, 1, 2, 8)).astype("float32")
    for conv in _input_to_state_convs(plain):  # one kernel for both directions, no bias
        conv.set_weights([kernel, np.zeros(8, np.float32)])
    conditioned.set_weights(plain.get_weights())
    for conv in _input_to_state_convs(conditioned):
        conv.set_weights([np.zeros_like(kernel), np.zeros(8, np.float32)])
    condition = Conditioning(8)
    condition.build(inputs.shape)
    condition.set_weights([kernel[0, 0]])
    expected = keras.ops.convert_to_numpy(plain(inputs))
    got = keras.ops.convert_to_numpy(conditioned(inputs, conditioning=condition(inputs)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected).max() > 1e-2


@pytest.mark.parametrize("arch", conditional_archs())
def test_conditional_probabilities_sum_to_one_for_every_label(arch):
    image_shape, num_levels, num_classes = (2, 2, 1), 4, 3
    model = pk.build_model(arch, image_shape, num_levels, num_layers=1, hidden=4, num_classes=num_classes)
    randomise_weights(model)
    images = all_images(image_shape, num_levels)
    per_label = [pk.log_prob(model, images, labels=np.full(len(images), k), batch_size=4096)
                 for k in range(num_classes)]
    for log_probs in per_label:
        assert abs(logsumexp(log_probs.astype(np.float64))) < 1e-4
    assert np.abs(per_label[0] - per_label[1]).max() > 1e-2, "the label should change the distribution"


@pytest.mark.parametrize("arch,image_shape", slow_except([("gated_pixelcnn", (4, 4, 3)), ("diagonal_bilstm", (4, 4, 1))],
                                                         ("gated_pixelcnn", (4, 4, 3))))
def test_conditional_models_stay_causal(arch, image_shape):
    model = pk.build_model(arch, image_shape, 4, num_layers=2, hidden=12, num_classes=3)
    randomise_weights(model, scale=0.3)
    inner = keras.Model([model.get_layer("scale_pixels").output, model.inputs[1]], model.output)
    depends = dependency_map(lambda x: inner([x, tf.fill(tf.shape(x)[:1], 2)]), image_shape, image_shape[2])
    assert_causal(depends, strict=True)


def test_conditional_model_round_trips_through_keras_file(tmp_path):
    model = pk.build_model("gated_pixelcnn", (3, 3, 3), 4, num_layers=1, hidden=6, num_classes=4)
    randomise_weights(model)
    images = np.random.default_rng(0).integers(0, 4, (5, 3, 3, 3))
    labels = np.array([0, 1, 2, 3, 1])
    model.save(tmp_path / "c.keras")
    loaded = pk.load_model(tmp_path / "c.keras")
    np.testing.assert_array_equal(pk.log_prob(loaded, images, labels=labels), pk.log_prob(model, images, labels=labels))
    np.testing.assert_allclose(pk.bits_per_dim(loaded, images, labels=labels),
                               -pk.log_prob(model, images, labels=labels) / (27 * np.log(2)), rtol=1e-6)


@slow
def test_conditional_model_trains_with_fit_on_images_and_labels():
    model = pk.build_model("pixelcnn", (3, 3, 1), 4, num_layers=1, hidden=4, num_classes=2)
    model.compile(optimizer="adam", loss=pk.NegativeLogLikelihood())
    images = np.random.default_rng(0).integers(0, 4, (8, 3, 3, 1)).astype(np.int32)
    labels = np.arange(8, dtype=np.int32) % 2
    history = model.fit([images, labels], images, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("conditional,labels,message", [
    (True, None, r"class-conditional: pass labels="),
    (False, np.zeros(2, np.int32), r"unconditional: it takes no labels. Received labels=array\(\[0, 0\]"),
    (True, np.zeros(3, np.int32), r"labels of shape \(2,\), one per image. Received shape \(3,\)"),
    (True, np.zeros((2, 1), np.int32), r"Received shape \(2, 1\)"),
    (True, np.array([0, 3]), r"labels in \[0, 2\]. Received values in \[0, 3\]"),
    (True, np.array([-1, 0]), r"Received values in \[-1, 0\]"),
    (True, np.zeros(2, np.float32), "dtype float32"),
])
def test_bad_labels_raise_value_error_naming_the_problem(conditional, labels, message):
    model = pk.build_model("pixelcnn", (3, 3, 1), 4, num_layers=1, hidden=2, num_classes=3 if conditional else None)
    images = np.zeros((2, 3, 3, 1), np.int32)
    for fn in (pk.log_prob, pk.bits_per_dim):
        with pytest.raises(ValueError, match=message):
            fn(model, images, labels=labels)


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes=1"):
        pk.build_model("pixelcnn", (3, 3, 1), 4, num_classes=1)


@slow
def test_conditional_gated_pixelcnn_classifies_digits_well_above_chance():
    """Conditioning works: after 300 steps on the 8 x 8 digits, most test images are more likely
    under their own label than under the other nine. Measured (seeds 0, 1, 2): 0.89, 0.91, 0.90
    after 300 steps, 0.96 after 1200; chance is 0.10."""
    (train, test), num_levels = load_digits()
    train_labels, test_labels = load_digit_labels()
    model = pk.build_model("gated_pixelcnn", train.shape[1:], num_levels, num_layers=2, hidden=16, num_classes=10)
    model.compile(optimizer=keras.optimizers.RMSprop(3e-3), loss=pk.NegativeLogLikelihood(), jit_compile=True)
    images = train.astype(np.int32)
    dataset = (tf.data.Dataset.from_tensor_slices(((images, train_labels), images))
               .shuffle(len(images), seed=0).repeat().batch(32))
    model.fit(dataset, steps_per_epoch=300, epochs=1, verbose=0)
    log_probs = np.stack([pk.log_prob(model, test, labels=np.full(len(test), k)) for k in range(10)], axis=1)
    accuracy = np.mean(log_probs.argmax(axis=1) == test_labels)
    assert accuracy > 0.7, f"classifier accuracy {accuracy:.3f}"


@slow
def test_conditional_saved_model_takes_and_checks_labels(tmp_path):
    from export.saved_model import export_saved_model

    model = pk.build_model("pixelcnn", (3, 3, 1), 4, num_layers=1, hidden=4, num_classes=3)
    randomise_weights(model)
    export_saved_model(model, tmp_path / "1")
    loaded = tf.saved_model.load(str(tmp_path / "1"))
    images = np.random.default_rng(0).integers(0, 4, (2, 3, 3, 1)).astype(np.int32)
    labels = np.array([0, 2], np.int32)
    served = loaded.signatures["log_likelihood"](images=tf.constant(images), labels=tf.constant(labels))
    np.testing.assert_allclose(served["log_prob"].numpy(), pk.log_prob(model, images, labels=labels), rtol=1e-6)
    drawn = loaded.signatures["sample"](num_images=tf.constant(2), seed=tf.constant(0, tf.int64),
                                        labels=tf.constant(labels))["images"]
    assert drawn.shape == (2, 3, 3, 1)
    for bad, message in (([0, 3], r"labels must be in \[0, 2\]"), ([0], r"labels must have shape \[batch\]")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            loaded.signatures["log_likelihood"](images=tf.constant(images), labels=tf.constant(bad, tf.int32))


@slow
def test_training_app_trains_evaluates_and_samples_a_conditional_model(tmp_path, capsys):
    """`training.run --conditional` on digits, `training.evaluate` (conditional bits/dim and
    classifier accuracy), `training.sample --label`; and a one-line error for a dataset without labels."""
    from training import evaluate, run, sample

    run_dir = tmp_path / "run"
    run.main(["--arch", "pixelcnn", "--dataset", "digits", "--conditional", "--steps", "20", "--steps-per-epoch",
              "20", "--layers", "1", "--hidden", "4", "--gallery-size", "2", "--validation-images", "32",
              "--run-dir", str(run_dir)])
    evaluate.main(["--run-dir", str(run_dir)])
    out = capsys.readouterr().out
    assert "test images given their labels" in out and "classifier accuracy" in out and "(chance 0.1000)" in out
    from PIL import Image

    samples = np.asarray(Image.open(run_dir / "gallery" / "samples.png"))
    assert samples.shape[1] >= 2 * 112 and samples.shape[0] >= 10 * 112  # 10 rows of 2, each >= 112 px wide
    sample.main(["--checkpoint", str(run_dir), "--num", "2", "--label", "7", "--out", str(tmp_path / "s.png")])
    assert (tmp_path / "s.png").exists()
    with pytest.raises(RunError, match="class-conditional: give --label N with N in 0 .. 9"):
        sample.main(["--checkpoint", str(run_dir), "--num", "2", "--out", str(tmp_path / "t.png")])
    with pytest.raises(DataError, match="has no class labels"):
        with_labels(dataclasses.replace(load_dataset("digits"), labels=None))


def _chi_square_p(model, samples, label, num_levels):
    """Chi-square p-value of the sampled images' counts against p(image | label) of every image."""
    image_shape = samples.shape[1:]
    everything = all_images(image_shape, num_levels)
    expected = np.exp(pk.log_prob(model, everything, labels=np.full(len(everything), label)).astype(np.float64))
    index = {tuple(image.ravel()): i for i, image in enumerate(everything)}
    observed = np.bincount([index[tuple(s.ravel())] for s in samples], minlength=len(everything))
    return chisquare(observed, expected * len(samples) / expected.sum()).pvalue


@pytest.mark.parametrize("arch", ["pixelcnn", "gated_pixelcnn", "row_lstm"])
@slow
def test_conditional_samples_follow_the_conditional_of_their_label(arch):
    """Per label, the samples' frequencies match p(image | label); the labels' distributions differ
    enough that samples of label 0 are rejected under label 1 (the check has teeth)."""
    model = pk.build_model(arch, (2, 2, 1), 2, num_layers=1, hidden=4, num_classes=2)
    everything = all_images((2, 2, 1), 2)
    for seed in range(3, 30):  # random weights under which the labels' distributions differ (teeth)
        randomise_weights(model, scale=1.0, seed=seed)
        given = [np.exp(pk.log_prob(model, everything, labels=np.full(len(everything), k))) for k in range(2)]
        if 0.5 * np.abs(given[0] - given[1]).sum() > 0.2:  # total variation
            break
    else:
        pytest.fail("no seed gives labels whose distributions differ")
    samples = {k: pk.sample(model, 2000, seed=11 + k, labels=np.full(2000, k)) for k in range(2)}
    for k in range(2):
        assert _chi_square_p(model, samples[k], k, 2) > 1e-3
    assert _chi_square_p(model, samples[0], 1, 2) < 1e-6


@slow
def test_folder_and_tfds_sources_carry_labels(tmp_path):
    """One sub-folder per class gives labels in sorted folder-name order, aligned with the images
    in every split; a TFDS `label` feature gives its classes."""
    from PIL import Image

    for value, name in ((30, "ant"), (200, "bee")):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for index in range(5):
            Image.fromarray(np.full((4, 4), value, np.uint8)).save(tmp_path / "pics" / name / f"{index}.png")
    splits = with_labels(load_dataset(f"folder:{tmp_path / 'pics'}", image_size=4, channels=1))
    pairs = [(int(image.max()), int(label)) for split in (splits.train, splits.validation, splits.test)
             for image, label in split.as_numpy_iterator()]
    assert splits.num_classes == 2 and sorted(pairs) == [(30, 0)] * 5 + [(200, 1)] * 5
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        kmnist = with_labels(load_dataset("kmnist", data_dir=str(tmp_path / "tfds")))
        labels = [int(label) for _, label in kmnist.test.as_numpy_iterator()]
    assert kmnist.num_classes == 10 and len(labels) == 6 and all(0 <= label < 10 for label in labels)
