"""Per-pixel likelihoods and the out-of-distribution scores (pixel_keras.ood)."""

import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras import gallery, ood
from tests.tiers import slow
from tests.tiny_cases import randomise_weights

SHAPE = (4, 4, 3)


def _model(arch="pixelcnn", levels=4, seed=3, **kwargs):
    model = pk.build_model(arch, kwargs.pop("shape", SHAPE), levels, num_layers=1, hidden=4, **kwargs)
    randomise_weights(model, seed=seed)
    return model


def _images(count, levels=4, shape=SHAPE, seed=0):
    return np.random.default_rng(seed).integers(0, levels, (count,) + shape).astype(np.int32)


CASES = [pytest.param(arch, {}, id=arch, marks=[] if arch == "pixelcnn" else slow)
         for arch in pk.arch_names()] + [  # every registered arch; the quick tier keeps pixelcnn
    pytest.param("pixelcnn", {"head": "logistic_mixture", "num_mixtures": 2}, id="pixelcnn-mixture", marks=slow),
    pytest.param("row_lstm", {"levels": 2}, id="row_lstm-binary", marks=slow),
    pytest.param("gated_pixelcnn", {"num_classes": 3}, id="gated_pixelcnn-conditional", marks=slow),
]


@pytest.mark.parametrize("arch, options", CASES)
def test_per_pixel_terms_add_up_to_the_image_log_prob(arch, options):
    options = dict(options)
    levels = options.pop("levels", 4)
    model = _model(arch, levels, **options)
    images = _images(5, levels)
    labels = np.arange(5, dtype=np.int32) % 3 if "num_classes" in options else None
    per_pixel = pk.log_prob(model, images, labels=labels, per_pixel=True, batch_size=2)
    assert per_pixel.shape == images.shape and per_pixel.dtype == np.float32
    assert np.all(per_pixel <= 0)
    np.testing.assert_allclose(per_pixel.sum(axis=(1, 2, 3)), pk.log_prob(model, images, labels=labels),
                               rtol=1e-5, atol=1e-4)


@slow
def test_per_pixel_terms_of_a_multiscale_model_add_up():
    model = pk.build_multiscale_model("pixelcnn", SHAPE, 4, factor=2, num_layers=1, hidden=4)
    randomise_weights(model)
    images = _images(3)
    per_pixel = pk.log_prob(model, images, per_pixel=True)
    np.testing.assert_allclose(per_pixel.sum(axis=(1, 2, 3)), pk.log_prob(model, images), rtol=1e-5, atol=1e-4)


def test_per_pixel_terms_are_the_conditionals_of_each_sub_pixel():
    """Changing the last sub-pixel changes only its own term: each term is log p(x_i | x_<i)."""
    model = _model()
    images = _images(1)
    changed = images.copy()
    changed[0, -1, -1, -1] = (changed[0, -1, -1, -1] + 1) % 4
    before, after = (pk.log_prob(model, batch, per_pixel=True) for batch in (images, changed))
    different = before != after
    assert different[0, -1, -1, -1] and different.sum() == 1


def test_per_pixel_must_be_a_bool():
    with pytest.raises(ValueError, match="per_pixel"):
        pk.log_prob(_model(), _images(1), per_pixel="yes")


def test_surprise_grid_pairs_each_image_with_its_heat_map():
    model = _model()
    images = _images(4)
    grid = gallery.surprise_grid(images, 4, pk.log_prob(model, images, per_pixel=True), columns=2)
    assert grid.dtype == np.uint8 and grid.shape == (2 * 5 + 1, 2 * 9 + 1, 3)
    with pytest.raises(ValueError, match="shape"):
        gallery.surprise_grid(images, 4, np.zeros((4, 4, 4, 1)))


def test_likelihood_ratio_matches_a_numpy_recomputation():
    model, background = _model(seed=3), _model(seed=4)
    images = _images(6)
    nll = -pk.log_prob(model, images).astype(np.float64)
    nll_background = -pk.log_prob(background, images).astype(np.float64)
    np.testing.assert_allclose(ood.likelihood_scores(model, images), nll)
    np.testing.assert_allclose(ood.likelihood_ratio_scores(model, background, images), nll - nll_background)
    assert not np.allclose(nll, nll_background)  # the two models differ, so the ratio is not trivially 0


def test_denoised_log_probs_recover_the_clean_conditional():
    """A background trained at rate mu learns p = (1 - mu) q + mu / L: the floor comes out exactly
    where q is above it, and the result is clipped to [mu / L, 1] elsewhere."""
    rate, levels = 0.2, 4
    clean = np.array([0.9, 0.07, 0.03, 0.0])
    learned = (1 - rate) * clean + rate / levels
    denoised = ood.denoised_log_probs(np.log(learned), rate, levels)
    np.testing.assert_allclose(denoised[:2], np.log(clean[:2]), rtol=1e-12)
    np.testing.assert_allclose(denoised[2:], np.log(rate / levels))  # q at or below the floor
    np.testing.assert_allclose(ood.denoised_log_probs(np.log([0.95]), rate, levels), [0.0])  # p above 1 - mu + mu / L
    np.testing.assert_array_equal(ood.denoised_log_probs(np.log(learned), 0.0, levels), np.log(learned))
    with pytest.raises(ValueError, match="perturbation rate"):
        ood.denoised_log_probs(np.log(learned), 1.0, levels)


def test_likelihood_ratio_against_a_perturbed_background_matches_a_numpy_recomputation():
    model, background = _model(seed=3), _model(seed=4)
    images = _images(6)
    nll = -pk.log_prob(model, images).astype(np.float64)
    p = np.exp(pk.log_prob(background, images, per_pixel=True).astype(np.float64))
    clean = np.clip((p - 0.3 / 4) / 0.7, 0.3 / 4, 1.0)
    expected = nll + np.log(clean).sum(axis=(1, 2, 3))
    scores = ood.likelihood_ratio_scores(model, background, images, background_perturb_rate=0.3)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    plain = ood.likelihood_ratio_scores(model, background, images)
    assert np.all(scores > plain)  # the floor taken out: the background more likely, the score higher
    with pytest.raises(ValueError, match="perturbation rate"):
        ood.likelihood_ratio_scores(model, background, images, background_perturb_rate=-0.1)


def test_complexity_subtracts_the_png_bits():
    from PIL import Image
    import io

    model = _model(shape=(4, 4, 1))
    images = _images(3, shape=(4, 4, 1))
    expected_bits = []
    for image in images:
        encoded = io.BytesIO()
        Image.fromarray(np.round(image[..., 0] * 255 / 3).astype(np.uint8)).save(encoded, format="PNG", optimize=True)
        expected_bits.append(8 * len(encoded.getvalue()))
    expected = -pk.log_prob(model, images).astype(np.float64) / np.log(2) - np.asarray(expected_bits)
    np.testing.assert_allclose(ood.complexity_scores(model, images), expected)
    assert np.all(ood.compressed_bits(images, 4, "webp") > 0)
    with pytest.raises(ValueError, match="compressor"):
        ood.complexity_scores(model, images, compressor="zip")


def test_jpeg_xl_bits_are_a_lossless_coding_and_absent_plugins_are_named(monkeypatch):
    import io

    from PIL import Image

    if not ood.compressor_available("jxl"):
        pytest.skip("pillow-jxl-plugin is not installed (pip install -e .[ood])")
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1))
    bits = ood.compressed_bits(images, 256, "jxl")
    assert np.all(bits > 0) and len(set(bits)) > 1
    encoded = io.BytesIO()
    Image.fromarray(images[0, ..., 0].astype(np.uint8)).save(encoded, format="JXL", lossless=True)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encoded.getvalue()))), images[0, ..., 0])
    assert bits[0] == 8 * len(encoded.getvalue())
    monkeypatch.setattr(ood, "compressor_available", lambda compressor: False)
    with pytest.raises(ValueError, match="needs the pillow_jxl module"):
        ood.compressed_bits(images, 256, "jxl")


def test_typicality_scores_groups_against_the_reference():
    model = _model()
    images = _images(7)
    nll = -pk.log_prob(model, images).astype(np.float64)
    reference = ood.mean_nll(model, _images(20, seed=1))
    np.testing.assert_allclose(ood.typicality_scores(model, images, reference), np.abs(nll - reference))
    grouped = ood.typicality_scores(model, images, reference, group_size=3)  # the 7th image is left out
    np.testing.assert_allclose(grouped, np.abs(nll[:6].reshape(2, 3).mean(axis=1) - reference))
    for bad in (0, 8, 2.0):
        with pytest.raises(ValueError, match="group_size"):
            ood.typicality_scores(model, images, reference, group_size=bad)


def test_auroc_auprc_and_fpr_on_hand_made_scores():
    assert ood.auroc([0, 1, 2], [3, 4, 5]) == 1.0          # OOD scored higher: perfect
    assert ood.auroc([3, 4, 5], [0, 1, 2]) == 0.0          # the trap: OOD looks more typical
    assert ood.auroc([0, 2], [1, 3]) == 0.75               # 3 of the 4 (in, out) pairs ordered
    assert ood.auprc([0, 1, 2], [3, 4, 5]) == 1.0
    in_scores = np.arange(100.0)
    out_scores = np.arange(100.0) + 50                      # the OOD 95% cut is at 54.5: 45 of 100 in above it
    assert ood.fpr_at_95_tpr(in_scores, out_scores) == pytest.approx(0.45)
    with pytest.raises(ValueError, match="out-of-distribution"):
        ood.auroc([1, 2], [])
    with pytest.raises(ValueError, match="NaN"):
        ood.auroc([1, np.nan], [2])


def test_threshold_accepts_the_share_asked():
    validation = np.arange(1000.0)
    cut = ood.threshold(validation, accept=0.95)
    accepted = np.mean(~ood.is_anomalous(validation, cut))
    assert 0.95 <= accepted <= 0.951  # at least the share asked, one input more at most
    with pytest.raises(ValueError, match="accept"):
        ood.threshold(validation, accept=1.5)


def test_mismatched_models_and_images_are_refused():
    model = _model()
    with pytest.raises(ValueError, match="background model"):
        ood.likelihood_ratio_scores(model, _model(levels=8), _images(2))
    with pytest.raises(ValueError, match="background model"):
        ood.likelihood_ratio_scores(model, _model(shape=(4, 4, 1)), _images(2))
    with pytest.raises(ValueError, match="shape"):
        ood.likelihood_scores(model, _images(2, shape=(5, 5, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        ood.likelihood_scores(model, np.zeros((0,) + SHAPE, np.int32))
    with pytest.raises(ValueError, match="pixel values"):
        ood.likelihood_scores(model, _images(2, levels=9))


def test_every_public_function_refuses_bad_input_naming_the_argument():
    """NaN, out-of-range and wrong-typed arguments each give one ValueError naming the argument
    (issue 40: NaN counted as normal, 300 wrapped to 44 through uint8, num_levels=1 dividing by
    zero); numpy scalars are taken where Python's are."""
    images = _images(2, shape=(4, 4, 1))
    refused = [
        (lambda: ood.is_anomalous([np.nan, 10.0], 5.0), "scores"),
        (lambda: ood.is_anomalous([1.0, 10.0], np.nan), "cut"),
        (lambda: ood.is_anomalous([1.0], "5"), "cut"),
        (lambda: ood.compressed_bits(np.full((1, 4, 4, 1), 300), 256), "images"),
        (lambda: ood.compressed_bits(np.full((1, 4, 4, 1), -1), 256), "images"),
        (lambda: ood.compressed_bits(images + 0.5, 4), "images"),
        (lambda: ood.compressed_bits(np.full((1, 4, 4, 1), np.nan), 4), "images"),
        (lambda: ood.compressed_bits(images, 1), "num_levels"),
        (lambda: ood.compressed_bits(images, 257), "num_levels"),
        (lambda: ood.compressed_bits(images, 4.0), "num_levels"),
        (lambda: ood.denoised_log_probs([np.nan, -1.0], 0.2, 4), "log_probs"),
        (lambda: ood.denoised_log_probs([0.5, -1.0], 0.2, 4), "log_probs"),
        (lambda: ood.denoised_log_probs([-1.0], 0.2, 0), "num_levels"),
        (lambda: ood.denoised_log_probs([-1.0], 0.2, -3), "num_levels"),
        (lambda: ood.denoised_log_probs([-1.0], 0.0, 0), "num_levels"),  # checked at rate 0 too
        (lambda: ood.typicality_scores(_model(), _images(2), "100"), "reference_nll"),
        (lambda: ood.threshold([1.0, 2.0], accept=np.nan), "accept"),
        (lambda: ood.threshold([1.0, np.nan]), "in_validation_scores"),
    ]
    for call, argument in refused:
        with pytest.raises(ValueError, match=argument):
            call()
    # numpy scalars, as Python's
    np.testing.assert_array_equal(ood.is_anomalous(np.array([1.0, 10.0]), np.float32(5.0)), [False, True])
    assert ood.threshold(np.arange(10.0), accept=np.float32(0.9)) == ood.threshold(np.arange(10.0), accept=0.9)
    np.testing.assert_array_equal(ood.compressed_bits(images, np.int64(4)), ood.compressed_bits(images, 4))
    np.testing.assert_array_equal(ood.denoised_log_probs([-1.0], np.float32(0.25), np.int32(4)),
                                  ood.denoised_log_probs([-1.0], 0.25, 4))
    model = _model()
    np.testing.assert_allclose(ood.typicality_scores(model, _images(4), np.float32(10.0), group_size=np.int64(2)),
                               ood.typicality_scores(model, _images(4), 10.0, group_size=2), rtol=1e-6)
