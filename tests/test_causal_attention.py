"""PixelSNAIL's attention in query blocks (`causal_attention.QUERY_BLOCK`): the generic tests run on
images of fewer positions than one block, so the blocked path is checked here: the same output
as one block, and causal by exact Jacobians, with blocks of 2 queries."""

import keras
import numpy as np

import pixel_keras as pk
from pixel_keras.layers import causal_attention
from tests.dependencies import assert_causal, dependency_map


def _model(image_shape):
    keras.utils.set_random_seed(0)
    model = pk.build_model("pixelsnail", image_shape, 4, num_layers=1, hidden=6)
    for weight in model.weights:  # random biases, so a zero bias cannot hide a dependency
        if "bias" in weight.path:
            weight.assign(np.random.default_rng(1).normal(0, 0.1, weight.shape).astype("float32"))
    return model


def test_blocks_of_queries_give_the_one_block_output(monkeypatch):
    images = np.random.default_rng(0).integers(0, 4, (3, 3, 4, 3))
    model = _model((3, 4, 3))
    whole = np.asarray(model(images))
    monkeypatch.setattr(causal_attention, "QUERY_BLOCK", 5)  # 12 positions: blocks of 5, 5 and 2
    np.testing.assert_allclose(np.asarray(_model((3, 4, 3))(images)), whole, rtol=1e-5, atol=1e-5)


def test_blocks_of_queries_stay_causal(monkeypatch):
    monkeypatch.setattr(causal_attention, "QUERY_BLOCK", 2)
    model = _model((3, 3, 3))
    from_scaled = keras.Model(model.get_layer("scale_pixels").output, model.output)
    assert_causal(dependency_map(from_scaled, (3, 3, 3), 3), strict=True)
