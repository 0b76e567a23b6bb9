"""Old `.keras` files keep loading and scoring the same as the model code grows.

`tests/data/ARCH_COMMIT.keras` is a tiny model saved by the code at COMMIT;
`tests/data/legacy_scores_COMMIT.npz` holds, per ARCH, the images it was scored on
(`ARCH_images`, with `ARCH_labels` for a conditional model) and the log-likelihoods it gave then
(`ARCH_log_prob`, nats per image).
Files are found by glob, so fixtures added later are tested without editing this file.
"""

import pathlib

import keras
import numpy as np
import pytest

import pixel_keras as pk
from tests.test_fast_sampling import _assert_same_up_to_boundaries

DATA = pathlib.Path(__file__).resolve().parent / "data"
MODEL_FILES = sorted(DATA.glob("*.keras"))


def test_fixtures_are_present():
    assert MODEL_FILES, f"no .keras fixtures in {DATA}"


@pytest.mark.parametrize("path", MODEL_FILES, ids=[path.stem for path in MODEL_FILES])
def test_saved_model_loads_and_scores_as_when_it_was_saved(path):
    arch, _, commit = path.stem.rpartition("_")
    scores_path = DATA / f"legacy_scores_{commit}.npz"
    assert scores_path.exists(), f"{path.name} has no stored scores ({scores_path.name})"
    with np.load(scores_path) as scores:
        assert f"{arch}_images" in scores, f"{scores_path.name} has no {arch}_images"
        images, expected = scores[f"{arch}_images"], scores[f"{arch}_log_prob"]
        labels = scores[f"{arch}_labels"] if f"{arch}_labels" in scores else None
    model = pk.load_model(path)
    np.testing.assert_allclose(np.asarray(pk.log_prob(model, images, labels=labels)), expected, rtol=1e-5)


def test_a_conditional_pixelcnn_saved_with_its_add_layer_still_samples_fast():
    """Saved before PixelCNN's conditioning moved into its 3 x 3 convolution (`conditioning=`): the
    stored graph keeps the `Add` after it, which the incremental walk steps as a pointwise layer."""
    model = pk.load_model(DATA / "conditional_pixelcnn_18dd8a3.keras")
    assert "block0_conv_conditioned" in [layer.name for layer in model.layers]
    new = pk.build_model("pixelcnn", (4, 4, 1), 4, num_layers=2, hidden=4, num_classes=3)
    assert "block0_conv_conditioned" not in [layer.name for layer in new.layers]
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1], np.int32)
    fast = pk.sample(model, 8, seed=3, labels=labels)
    assert pk.sampling._sampler(model, "fast").method == "fast"
    plain = pk.sample(model, 8, seed=3, labels=labels, method="plain")
    _assert_same_up_to_boundaries(fast, plain, model, 3, 4, labels)
