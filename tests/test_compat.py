"""Old `.keras` files keep loading and scoring the same as the model code grows.

`tests/data/ARCH_COMMIT.keras` is a tiny model saved by the code at COMMIT;
`tests/data/legacy_scores_COMMIT.npz` holds, per ARCH, the images it was scored on
(`ARCH_images`) and the log-likelihoods it gave then (`ARCH_log_prob`, nats per image).
Files are found by glob, so fixtures added later are tested without editing this file.
"""

import pathlib

import keras
import numpy as np
import pytest

import pixel_keras as pk

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
    model = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(pk.log_prob(model, images)), expected, rtol=1e-5)
