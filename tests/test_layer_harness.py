"""Keras' own layer-test harness (`run_layer_test`) on every layer of ours.

Each case runs the harness's checks: build, symbolic and eager call with the expected output
shape and dtype, `get_config` / `from_config` round trip, one compiled training step, and the
mixed-precision check (the layer with dtype="mixed_float16": float32 variables, outputs in the
dtype its own `compute_output_spec` gives). Tiny shapes. Also the layers' backend seam: no
module-level TensorFlow import, and `pixel_keras.backend.scan`.
"""

import ast
import pathlib

import keras
import numpy as np
from absl.testing import parameterized
from keras.src import testing

import pixel_keras
from pixel_keras import backend
from pixel_keras.heads import DiscretizedLogisticMixture
from pixel_keras.layers import Conditioning, DiagonalBiLSTM, GatedBlock, RowLSTM, Skew, SpatialLSTM, Unskew
from pixel_keras.layers import MergeScales, Subsample
from tests.tiers import slow

GRAY = (2, 3, 3, 1)
HIDDEN = 6  # divisible by 3 colour groups

# Each registered arch's own layers (`Arch.layer_cases`: a new arch's layers run here without
# editing this file), then the layers every arch shares.
ARCH_CASES = [(f"{arch}_{case.pop('name')}", case) for arch in pixel_keras.arch_names()
              for case in pixel_keras.get_arch(arch).layer_tests()]
CASES = [
    # name, layer class, init kwargs, input shape, expected output shape, trainable weights
    ("skew", Skew, {}, (2, 3, 4, 2), (2, 3, 6, 2), 0),
    ("unskew", Unskew, {}, (2, 3, 6, 2), (2, 3, 4, 2), 0),
    ("conditioning_map", Conditioning, {"units": 5}, (2, 3, 3, 2), (2, 3, 3, 5), 1),
]


def run_arch_layer_case(test_case, case):
    """Keras' harness on one `Arch.layer_cases` entry (build, calls, config round trip, a training
    step and the mixed-precision check unless the case turns them off)."""
    options = dict(expected_num_non_trainable_weights=0, run_training_check=True, run_mixed_precision_check=True)
    test_case.run_layer_test(**{**options, **case})


class LayerHarnessTest(testing.TestCase):
    @parameterized.named_parameters(*CASES)
    def test_layer(self, layer_cls, init_kwargs, input_shape, output_shape, num_weights):
        self.run_layer_test(
            layer_cls, init_kwargs, input_shape=input_shape, expected_output_shape=output_shape,
            expected_num_trainable_weights=num_weights, expected_num_non_trainable_weights=0,
            run_training_check=True, run_mixed_precision_check=True,
        )

    @parameterized.named_parameters(*ARCH_CASES)
    def test_arch_layer(self, case):
        run_arch_layer_case(self, dict(case))

    @parameterized.named_parameters(("row_lstm", RowLSTM, 4, 3), ("diagonal_bilstm", DiagonalBiLSTM, 4, 6),
                                    ("spatial_lstm", SpatialLSTM, 5, 3))
    @slow  # under the parameterization, so that every generated case carries it
    def test_recurrent_layer_with_conditioning(self, layer_cls, gates, num_weights):
        """The optional `conditioning` bias (float32 here) is cast to the compute dtype with the inputs."""
        bias = np.linspace(-1.0, 1.0, gates * 4, dtype="float32").reshape(1, 1, 1, gates * 4)
        self.run_layer_test(
            layer_cls, {"units": 4}, input_shape=GRAY, call_kwargs={"conditioning": bias},
            expected_output_shape=(2, 3, 3, 4), expected_num_trainable_weights=num_weights,
            run_training_check=True, run_mixed_precision_check=True,
        )

    def test_gated_block_trains(self):
        """The harness's training check cannot feed list inputs and outputs through its generator
        (tf.data rejects a list signature; the gated_pixelcnn arch's case turns it off): one
        compiled training step is run here instead."""
        shapes = [(2, 3, 3, HIDDEN), (2, 3, 3, HIDDEN)]
        init_kwargs = {"units": HIDDEN, "color_channels": 3}
        inputs = [keras.Input(shape[1:]) for shape in shapes]
        model = keras.Model(inputs, keras.layers.Add()(GatedBlock(**init_kwargs)(inputs)))
        model.compile(optimizer="sgd", loss="mse", jit_compile="auto")
        data = [np.random.default_rng(0).normal(size=shape).astype("float32") for shape in shapes]
        before = [weight.numpy().copy() for weight in model.trainable_weights]
        model.fit(data, np.ones(shapes[0], "float32"), epochs=1, verbose=0)
        changed = [not np.array_equal(old, new.numpy()) for old, new in zip(before, model.trainable_weights)]
        self.assertTrue(all(changed), msg=f"weights not trained: {changed}")

    def test_label_conditioning(self):
        self.run_layer_test(
            Conditioning, {"units": 5, "num_classes": 3}, input_data=np.array([0, 2], "int32"),
            expected_output_shape=(2, 1, 1, 5), expected_num_trainable_weights=1,
            run_training_check=True, run_mixed_precision_check=True,
        )

    def test_discretized_logistic_mixture(self):
        """Weightless; its log-probabilities are float32 under every policy (the likelihood needs it)."""
        self.run_layer_test(
            DiscretizedLogisticMixture, {"num_levels": 4, "num_mixtures": 2}, input_shape=(2, 2, 2, 1, 6),
            expected_output_shape=(2, 2, 2, 1, 4), expected_output_dtype="float32",
            expected_num_trainable_weights=0, run_training_check=False, run_mixed_precision_check=True,
        )

    def test_subsample(self):
        self.run_layer_test(
            Subsample, {"factor": 2}, input_data=np.arange(2 * 4 * 4, dtype="int32").reshape(2, 4, 4, 1),
            expected_output_shape=(2, 2, 2, 1), expected_output_dtype="int32", expected_num_trainable_weights=0,
            run_training_check=False, run_mixed_precision_check=True,
        )

    def test_merge_scales(self):
        self.run_layer_test(
            MergeScales, {"factor": 2}, input_shape=[(2, 2, 2, 1, 3), (2, 4, 4, 1, 3)],
            input_dtype=["float32", "float32"], expected_output_shape=(2, 4, 4, 1, 3),
            expected_num_trainable_weights=0, run_training_check=False, run_mixed_precision_check=True,
        )


def test_layer_modules_import_no_tensorflow_at_module_level():
    """The layers (and the backend seam they use) run on any Keras backend: TensorFlow is imported,
    if at all, inside a function that runs only on the TensorFlow backend."""
    package = pathlib.Path(pixel_keras.__file__).parent
    for path in sorted(package.glob("layers/*.py")) + [package / "backend.py"]:
        tree = ast.parse(path.read_text())
        for statement in tree.body:
            names = ([alias.name for alias in statement.names] if isinstance(statement, ast.Import)
                     else [statement.module or ""] if isinstance(statement, ast.ImportFrom) else [])
            assert not any(name.split(".")[0] == "tensorflow" for name in names), (path.name, statement.lineno)


def test_backend_scan_stacks_nested_states():
    """`backend.scan` (tf.scan on TensorFlow, keras.ops.scan elsewhere): the state after each step."""
    xs = np.array([1.0, 2.0, 3.0], "float32")
    states = backend.scan(lambda state, x: (state[0] + x, state[1] * x), (np.float32(0.0), np.float32(1.0)), xs)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(states[0]), [1.0, 3.0, 6.0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(states[1]), [1.0, 2.0, 6.0])
