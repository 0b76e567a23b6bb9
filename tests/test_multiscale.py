"""Multi-Scale PixelRNN: one model of p(small) p(rest | small), exact and sampled in two phases."""


import keras
import numpy as np
import pytest
from scipy.stats import chisquare

import pixel_keras as pk
from pixel_keras.data import load_digits
from pixel_keras.multiscale import log_prob_stages, small_positions, stages
from tests.dependencies import allowed_map, dependency_map
from tests.tiny_cases import all_images, conditional_archs, randomise_weights
from tests.tiers import slow, slow_except




def _model(arch, image_shape, num_levels, factor=2, **options):
    hidden = 12 if arch == "gated_pixelcnn" else 6
    model = pk.build_multiscale_model(arch, image_shape, num_levels, factor, num_layers=1, hidden=hidden,
                                      map_features=8, **options)
    randomise_weights(model)
    return model


@pytest.mark.parametrize("arch", slow_except(conditional_archs(), "pixelcnn"))
def test_conditional_stage_is_causal_in_the_large_image_and_sees_the_small_one_everywhere(arch):
    """The conditional stage with the small image as a separate input: no output reads a later
    value of the large image, and every output reads the small image."""
    image_shape = (4, 4, 3)
    model = _model(arch, image_shape, 4)
    for weight in model.weights:  # zero biases: no ReLU stays off for every input and hides a path
        if "bias" in weight.path:
            weight.assign(np.zeros(weight.shape, "float32"))
    _, conditional, _ = stages(model)
    large_model = conditional.get_layer(arch)  # build_model's model, inputs [images, conditioning_map]
    to_logits = keras.Model([large_model.get_layer("scale_pixels").output, large_model.inputs[1]], large_model.output)
    small_to_map = keras.Model(conditional.get_layer("scale_small").output,
                               conditional.get_layer("map_upsample").output)
    rng = np.random.default_rng(0)
    condition_map = small_to_map(rng.uniform(-1, 1, (4, 2, 2, 3)).astype("float32"))

    depends = dependency_map(lambda x: to_logits([x, condition_map]), image_shape, 3)
    leaks = depends & ~allowed_map(4, 4, 3, strict=True)
    assert not leaks.any(), np.argwhere(leaks)[:5].tolist()

    # Many random (large, small) pairs, so that a ReLU that happens to be off cannot hide the path.
    large = keras.ops.convert_to_tensor(rng.uniform(-1, 1, (32,) + image_shape).astype("float32"))
    on_small = dependency_map(lambda small: to_logits([large, small_to_map(small)]), (2, 2, 3), 3, samples=32)
    assert on_small.any(axis=(3, 4, 5)).all(), "some output of the conditional stage ignores the small image"


@pytest.mark.parametrize("arch,image_shape,num_levels", slow_except([
    ("pixelcnn", (2, 2, 1), 3), ("row_lstm", (2, 2, 1), 3), ("diagonal_bilstm", (4, 4, 1), 2),
    ("gated_pixelcnn", (4, 4, 1), 2), ("spatial_lstm", (2, 2, 3), 2),
], ("row_lstm", (2, 2, 1), 3)))
def test_probabilities_of_all_large_images_sum_to_one(arch, image_shape, num_levels):
    model = _model(arch, image_shape, num_levels)
    everything = all_images(image_shape, num_levels)
    total = np.exp(pk.log_prob(model, everything, batch_size=4096).astype(np.float64)).sum()
    assert total == pytest.approx(1.0, abs=1e-4)


@slow
def test_stages_add_up_and_bits_per_dim_is_over_the_large_image():
    model = _model("pixelcnn", (4, 4, 1), 2)
    images = np.random.default_rng(0).integers(0, 2, (3, 4, 4, 1)).astype(np.int32)
    small, rest = log_prob_stages(model, images)
    small_model, _, _ = stages(model)
    np.testing.assert_allclose(small, pk.log_prob(small_model, images[:, ::2, ::2]), rtol=1e-6)
    np.testing.assert_allclose(small + rest, pk.log_prob(model, images), rtol=1e-5)
    np.testing.assert_allclose(pk.bits_per_dim(model, images), -(small + rest) / (16 * np.log(2)), rtol=1e-5)


@slow
def test_small_sample_is_the_small_models_and_the_large_sample_keeps_it():
    """Near temperature 0 every draw is the mode of its conditional, so the small positions of a
    multi-scale sample are exactly the small model's sample, and the large sample contains them."""
    model = _model("row_lstm", (4, 4, 1), 3)
    for weight in model.weights:  # a strong conditioning map, so that one raster pass would differ
        if "map" in weight.path:
            weight.assign(3.0 * weight)
    small_model, _, _ = stages(model)
    samples = pk.sample(model, 32, seed=1, temperature=1e-4)
    np.testing.assert_array_equal(samples[:, ::2, ::2], pk.sample(small_model, 32, temperature=1e-4))
    # Every value is the mode of its conditional given the whole small image and the earlier
    # values: one raster pass would draw (0, 1) before the small image's (0, 2) is known.
    np.testing.assert_array_equal(samples, keras.ops.convert_to_numpy(model(samples)).argmax(-1))
    # Completion: the known small image is kept and the other pixels are drawn given it.
    known = small_positions((4, 4), 2)
    filled = pk.complete(model, samples, known, seed=5)
    np.testing.assert_array_equal(filled[:, ::2, ::2], samples[:, ::2, ::2])


@slow
def test_samples_follow_exp_log_prob_on_2x2_from_1x1():
    model = _model("pixelcnn", (2, 2, 1), 3)
    everything = all_images((2, 2, 1), 3)
    expected = np.exp(pk.log_prob(model, everything).astype(np.float64))
    samples = pk.sample(model, 3000, seed=7)
    assert pk.sampling._sampler(model, "fast").method == "fast"  # the fast sampler, no plain fallback
    index = {tuple(image.ravel()): i for i, image in enumerate(everything)}
    observed = np.bincount([index[tuple(s.ravel())] for s in samples], minlength=len(everything))
    expected = expected * len(samples) / expected.sum()
    rare = expected < 5  # pooled, so that the chi-square approximation holds
    observed = np.append(observed[~rare], observed[rare].sum())
    assert chisquare(observed, np.append(expected[~rare], expected[rare].sum())).pvalue > 1e-3


def test_class_conditional_multiscale_model_sums_to_one_for_each_label():
    model = _model("gated_pixelcnn", (2, 2, 1), 3, num_classes=2)
    everything = all_images((2, 2, 1), 3)
    for label in range(2):
        log_p = pk.log_prob(model, everything, labels=np.full(len(everything), label))
        assert np.exp(log_p.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-4)


def test_round_trip_through_keras_file_keeps_log_likelihoods(tmp_path):
    model = _model("diagonal_bilstm", (4, 4, 3), 4)
    images = np.random.default_rng(2).integers(0, 4, (3, 4, 4, 3)).astype(np.int32)
    model.save(tmp_path / "multiscale.keras")
    loaded = pk.load_model(tmp_path / "multiscale.keras")
    np.testing.assert_allclose(pk.log_prob(loaded, images), pk.log_prob(model, images), rtol=1e-6)
    assert stages(loaded)[2] == 2


@slow
def test_training_on_digits_lowers_both_stages_losses():
    (train, _), num_levels = load_digits()
    images = train[:512].astype(np.int32)
    model = pk.build_multiscale_model("pixelcnn", (8, 8, 1), num_levels, num_layers=1, hidden=8, map_features=8)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=pk.NegativeLogLikelihood())
    before = [part.mean() for part in log_prob_stages(model, images)]
    model.fit(images, images, batch_size=64, epochs=3, verbose=0)
    after = [part.mean() for part in log_prob_stages(model, images)]
    assert after[0] > before[0] + 1.0 and after[1] > before[1] + 1.0, (before, after)


@pytest.mark.parametrize("kwargs,message", [
    ({"factor": 1}, "factor to be an integer >= 2"),
    ({"image_shape": (6, 6, 1), "factor": 4}, "multiples of factor=4"),
    ({"conditioning_map_features": 3}, "use map_features"),
    ({"map_features": 0}, "map_features to be a positive integer"),
])
def test_bad_arguments_raise_value_error_quoting_them(kwargs, message):
    arguments = {"arch": "pixelcnn", "image_shape": (4, 4, 1), "num_levels": 2, "num_layers": 1, "hidden": 2}
    with pytest.raises(ValueError, match=message):
        pk.build_multiscale_model(**{**arguments, **kwargs})


@slow
def test_training_app_trains_and_evaluates_a_multiscale_model_with_both_stages(tmp_path, capsys):
    from pixel_keras.cli import RunError
    from training import evaluate, run

    run_dir = tmp_path / "run"
    flags = ["--arch", "pixelcnn", "--dataset", "digits", "--steps", "10", "--steps-per-epoch", "10", "--layers",
             "1", "--hidden", "4", "--gallery-size", "2", "--validation-images", "32", "--run-dir", str(run_dir)]
    run.main(flags + ["--multiscale", "2"])
    evaluate.main(["--run-dir", str(run_dir)])
    out = capsys.readouterr().out
    total, small, rest = (float(line.split(marker)[1].split()[0]) for line, marker in (
        (out, "test images: "), (out, "subsampled) "), (out, "the rest given it ")))
    assert small > 0 and rest > 0 and small + rest == pytest.approx(total, abs=2e-4)
    from PIL import Image

    # The samples gallery: 2 columns, a row of small images (scaled up) above the row of samples.
    grid = np.asarray(Image.open(run_dir / "gallery" / "samples.png")).reshape(266, 266, -1)[::14, ::14, 0]
    assert grid.shape == (19, 19)  # 2 x (8 + 1 border) + 1, each pixel 14 x 14 (>= 112 px per image)
    for column in range(2):
        left = 1 + 9 * column
        small_row, large = grid[1:9, left:left + 8], grid[10:18, left:left + 8]
        np.testing.assert_array_equal(small_row, np.repeat(np.repeat(large[::2, ::2], 2, 0), 2, 1))
    with pytest.raises(RunError, match="--multiscale 3 needs a height and width that it divides"):
        run.main(flags[:-2] + ["--run-dir", str(tmp_path / "other"), "--multiscale", "3"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:  # argparse's one line, exit status 2
        run.main(flags + ["--multiscale", "1"])
    assert stopped.value.code == 2
    assert "argument --multiscale: must be an integer >= 2; received 1" in capsys.readouterr().err


@slow
def test_export_serves_the_multiscale_model_with_its_log_likelihoods_and_samples(tmp_path):
    import tensorflow as tf

    from export.saved_model import export_saved_model

    model = _model("pixelcnn", (4, 4, 1), 3)
    export_saved_model(model, str(tmp_path / "export"))
    served = tf.saved_model.load(str(tmp_path / "export"))
    images = np.random.default_rng(0).integers(0, 3, (5, 4, 4, 1)).astype(np.int32)
    log_p = served.signatures["log_likelihood"](images=tf.constant(images))["log_prob"].numpy()
    np.testing.assert_allclose(log_p, pk.log_prob(model, images), rtol=1e-5)
    samples = served.signatures["sample"](num_images=tf.constant(6), seed=tf.constant(3, tf.int64))["images"]
    np.testing.assert_array_equal(samples.numpy(), pk.sample(model, 6, seed=3))  # both stages, one loop
