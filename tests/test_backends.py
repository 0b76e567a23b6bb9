"""The library on every Keras backend: the backend-sensitive tests (causality, normalisation,
chi-square sampling, fast == plain, codec round trips and batch independence) and a TensorFlow-free
run of every arch, each in a subprocess with KERAS_BACKEND=jax (in CI: `.[dev]` installs JAX) or
torch (where torch is installed; not in CI), a .keras file saved under TensorFlow scored under JAX,
and a TensorFlow blob refused under JAX.

The backend is fixed when Keras is imported, so each backend needs its own process.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import pixel_keras as pk
from tests.tiers import slow

ROOT = pathlib.Path(__file__).resolve().parent.parent
OTHER_BACKENDS = ["jax", "torch"]
# The backend-sensitive subset (every backend-specific code path: scan, seeds, compiled loops,
# autodiff), sized for CI: under JAX about 150 s of CPU on this 2-core machine (BUILD_NOTES.md).
BACKEND_SENSITIVE = [
    "tests/test_causality.py::test_recurrent_layers_are_causal",
    "tests/test_causality.py::test_models_are_causal",
    "tests/test_models.py::test_probabilities_of_all_images_sum_to_one",
    "tests/test_models.py::test_a_leaky_model_is_not_normalised",
    "tests/test_sampling.py::test_samples_follow_the_model",
    "tests/test_sampling.py::test_chi_square_rejects_sampling_from_shifted_conditionals",
    "tests/test_sampling.py::test_seeds_fix_samples",
    "tests/test_fast_sampling.py::test_fast_samples_equal_plain_samples",
    "tests/test_backends.py::test_seeds_fix_uniforms_and_tensor_seeds_agree",
    "tests/test_codec.py::test_round_trip_every_kind",
    "tests/test_codec.py::test_probabilities_do_not_depend_on_the_batch",
    "tests/test_codec.py::test_multiscale_round_trip_and_size",
    "tests/test_training_budget.py",
]


def _run(backend, args, timeout=1800):
    """`python args...` from the repository root with KERAS_BACKEND=backend; the CompletedProcess."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _require(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install -e '.[{backend}]')")


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@slow
def test_library_runs_every_arch_without_tensorflow(backend):
    _require(backend)
    result = _run(backend, ["-m", "tests.backend_run"])
    assert result.returncode == 0 and result.stdout.splitlines()[-1:] == ["ok"], result.stdout + result.stderr[-3000:]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@slow
def test_backend_sensitive_tests_pass(backend):
    _require(backend)
    result = _run(backend, ["-m", "pytest", "-q", "-p", "no:cacheprovider", *BACKEND_SENSITIVE])
    summary = result.stdout.strip().splitlines()[-1:] or [""]
    assert result.returncode == 0 and " passed" in summary[0] and "failed" not in summary[0], \
        result.stdout[-6000:] + result.stderr[-2000:]


SCORE_UNDER_ANOTHER_BACKEND = """
import sys
import numpy as np
import keras
import pixel_keras as pk
images = np.load(sys.argv[1])
print(keras.backend.backend())
for path in sys.argv[2:]:
    np.save(path + ".log_p.npy", pk.log_prob(keras.models.load_model(path), images))
"""


@pytest.mark.tensorflow
@slow
def test_keras_file_saved_under_tensorflow_scores_the_same_under_jax(tmp_path):
    _require("jax")
    image_shape, num_levels = (4, 4, 3), 5
    images = np.random.default_rng(0).integers(0, num_levels, (3,) + image_shape).astype(np.int32)
    np.save(tmp_path / "images.npy", images)
    models = {arch: pk.build_model(arch, image_shape, num_levels, num_layers=2, hidden=6) for arch in pk.arch_names()}
    models["multiscale"] = pk.build_multiscale_model("diagonal_bilstm", image_shape, num_levels, num_layers=1,
                                                     hidden=4)
    expected, paths = {}, []
    for name, model in models.items():
        for weight in model.trainable_weights:  # random weights everywhere: zero biases would hide a mismatch
            weight.assign(np.random.default_rng(len(paths)).normal(0, 0.3, weight.shape).astype("float32"))
        paths.append(str(tmp_path / f"{name}.keras"))
        model.save(paths[-1])
        expected[paths[-1]] = pk.log_prob(model, images)
    result = _run("jax", ["-c", SCORE_UNDER_ANOTHER_BACKEND, str(tmp_path / "images.npy"), *paths])
    assert result.returncode == 0 and result.stdout.split() == ["jax"], result.stderr[-3000:]
    for path in paths:
        np.testing.assert_allclose(np.load(path + ".log_p.npy"), expected[path], rtol=1e-5, err_msg=path)


def test_seeds_fix_uniforms_and_tensor_seeds_agree():
    from pixel_keras.backend import seed_argument, uniform

    first = keras.ops.convert_to_numpy(uniform((2, 3), 5))
    assert first.shape == (2, 3) and first.dtype == np.float32 and 0 <= first.min() and first.max() < 1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(uniform((2, 3), seed_argument(5))), first)
    assert (keras.ops.convert_to_numpy(uniform((2, 3), 6)) != first).all()
    large = 2**40 + 5  # seeds of 64 bits (a chunk's derived seed) are not cut to 32
    assert (keras.ops.convert_to_numpy(uniform((2, 3), seed_argument(large))) != first).all()


CODEC_UNDER_ANOTHER_BACKEND = """
import pickle, sys
import pixel_keras as pk
from pixel_keras import codec
model = pk.load_model(sys.argv[1])
images, blobs = pickle.load(open(sys.argv[2], "rb"))
try:
    codec.decompress(model, blobs)
    print("decoded")
except codec.CodecError as error:
    print(error)
assert (codec.decompress(model, codec.compress(model, images)) == images).all()
"""


@pytest.mark.tensorflow
@slow
def test_a_blob_names_its_backend_and_the_codec_runs_under_jax(tmp_path):
    """Blobs are backend-bound (another backend's step rounds differently): a TensorFlow blob is
    refused under JAX by name, not decoded into a wrong image, and JAX codes its own round trip."""
    import pickle

    from pixel_keras import codec

    _require("jax")
    model = pk.build_model("gated_pixelcnn", (2, 3, 3), 8, num_layers=1, hidden=4)
    images = np.random.default_rng(0).integers(0, 8, (2, 2, 3, 3)).astype(np.int32)
    model.save(tmp_path / "model.keras")
    (tmp_path / "blobs.pkl").write_bytes(pickle.dumps((images, codec.compress(model, images))))
    result = _run("jax", ["-c", CODEC_UNDER_ANOTHER_BACKEND, str(tmp_path / "model.keras"), str(tmp_path / "blobs.pkl")])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "compressed with another model or Keras backend" in result.stdout and "under 'jax'" in result.stdout, \
        result.stdout
