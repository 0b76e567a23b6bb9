"""One-line errors: an assert of ours that fires inside a tf.data pipeline is printed as its message."""

import numpy as np
import pytest
import tensorflow as tf

from pixel_keras.cli import run_cli
from pixel_keras.data import assert_levels


def test_an_in_pipeline_assert_is_one_line_with_its_value(capsys):
    def main(argv):
        images = np.full((3, 2, 2, 1), 200, np.uint8)
        for _ in assert_levels(tf.data.Dataset.from_tensor_slices(images), "fake", 17):
            pass

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ["error: Dataset fake has a pixel value outside the 17 levels declared for it (values 0 .. 16); "
                     "data is never requantised. Largest value of the image: 200"]


def test_other_tensorflow_errors_keep_their_traceback():
    def main(argv):
        tf.reshape(tf.zeros(3), (2, 2))

    with pytest.raises(tf.errors.InvalidArgumentError):
        run_cli(main)
