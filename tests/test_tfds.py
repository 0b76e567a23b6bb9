"""TFDS datasets offline: `training.run` end to end on mocked data, the download path, levels."""

import numpy as np
import pytest
import tensorflow as tf

from pixel_keras.data import DataError, assert_levels, load_dataset
from training import run as training_run
from tests.tiers import slow

tfds = pytest.importorskip("tensorflow_datasets")
TINY_RUN = ["--arch", "pixelcnn", "--layers", "1", "--hidden", "4", "--batch-size", "4", "--steps", "2",
            "--steps-per-epoch", "2", "--validation-images", "8", "--gallery-size", "0", "--eval-batch-size", "8",
            "--max-minutes", "2"]


@pytest.mark.parametrize("dataset, max_value, shape, unit", [
    ("kmnist", None, "(28, 28, 1) x 256 levels", "bits/dim"),  # mnist itself: tests/test_mnist.py
    ("cifar10", None, "(32, 32, 3) x 256 levels", "bits/dim"),
    ("binarized_mnist", 2, "(28, 28, 1) x 2 levels", "nats per image"),  # mocked as 0/1, like the real data
])
@slow
def test_training_run_on_mocked_tfds_dataset(dataset, max_value, shape, unit, tmp_path, capsys):
    with tfds.testing.mock_data(num_examples=10, max_value=max_value):
        training_run.main([*TINY_RUN, "--dataset", dataset, "--data-dir", str(tmp_path / "tfds"),
                           "--run-dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert f"pixelcnn on {dataset} {shape}" in out
    assert "training finished: 2 steps" in out
    assert f"test NLL on 10 {dataset} test images: " in out and unit in out.split("test NLL")[1]


@pytest.mark.parametrize("dataset, levels, largest", [
    ("kmnist", "17", 200),  # a 17-level model fed 8-bit data
    ("binarized_mnist", None, 254),  # a binary model fed 0 .. 254 (mock data is 8-bit by default)
])
def test_training_run_refuses_data_outside_the_levels(dataset, levels, largest, tmp_path):
    with tfds.testing.mock_data(num_examples=10):
        with pytest.raises(DataError) as error:
            training_run.main([*TINY_RUN, "--dataset", dataset, "--run-dir", str(tmp_path / "run"),
                               *(["--levels", levels] if levels else [])])
    message = str(error.value)
    expected = int(levels or 2)
    assert f"Dataset {dataset!r} has pixel values up to " in message
    assert f"outside the {expected} levels declared for it" in message
    assert int(message.split("up to ")[1].split(",")[0]) >= largest
    assert not (tmp_path / "run" / "run.json").exists()


def test_levels_can_be_declared_for_a_tfds_dataset():
    with tfds.testing.mock_data(num_examples=4, max_value=17):
        assert load_dataset("kmnist", levels=17).num_levels == 17
        assert load_dataset("kmnist").num_levels == 256
        with pytest.raises(DataError, match=r"integer in \[2, 256\].*Received levels=300"):
            load_dataset("kmnist", levels=300)


def test_in_pipeline_check_stops_at_the_first_image_out_of_levels():
    images = np.zeros((3, 2, 2, 1), np.uint8)
    images[1, 0, 1, 0], images[2, 1, 0, 0] = 1, 2  # the last image is one level out
    iterator = iter(assert_levels(tf.data.Dataset.from_tensor_slices(images), "tiny", 2))
    next(iterator), next(iterator)  # in range
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Dataset tiny has a pixel value outside the 2 levels .*\] \[2\]"):
        next(iterator)


def test_tfds_images_past_the_load_time_sample_are_checked_in_the_pipeline(monkeypatch):
    monkeypatch.setattr("pixel_keras.data.tfds.LEVELS_SAMPLE", 0)  # the bad images come after the sample
    with tfds.testing.mock_data(num_examples=4):  # 8-bit values
        splits = load_dataset("kmnist", levels=17)
        for split in (splits.train, splits.validation, splits.test):
            with pytest.raises(tf.errors.InvalidArgumentError, match="Dataset kmnist has a pixel value outside the 17"):
                next(iter(split))


def test_unprepared_dataset_goes_to_the_tfds_download(tmp_path, monkeypatch):
    """Without mock_data: the real `download_and_prepare` runs (it needs every module TFDS imports on
    that path, e.g. importlib_resources) until the download manager, intercepted here."""
    from tensorflow_datasets.core.download import download_manager
    from tensorflow_datasets.core.utils import gcs_utils

    monkeypatch.setattr(gcs_utils, "_is_gcs_disabled", True)  # no prepared copy from GCS either (TFDS' default)
    requested = []

    def offline(self, url_or_urls):
        requested.append(url_or_urls)
        raise ConnectionError("intercepted: no network in this test")

    monkeypatch.setattr(download_manager.DownloadManager, "download_and_extract", offline)
    monkeypatch.setattr(download_manager.DownloadManager, "download", offline)
    with pytest.raises(DataError) as error:
        load_dataset("kmnist", data_dir=str(tmp_path))
    assert requested and "kmnist" in str(requested[0])
    message = str(error.value)
    assert "TFDS dataset 'kmnist' is not prepared in" in message and str(tmp_path) in message
    assert "downloading and preparing it failed: intercepted: no network in this test" in message


def test_a_module_missing_on_the_download_path_is_named_with_its_install_command(tmp_path, monkeypatch):
    from tensorflow_datasets.core import dataset_builder

    def missing(self, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'importlib_resources'", name="importlib_resources")

    monkeypatch.setattr(dataset_builder.DatasetBuilder, "download_and_prepare", missing)
    with pytest.raises(DataError) as error:
        load_dataset("cifar10", data_dir=str(tmp_path))
    message = str(error.value)
    assert "TFDS needs the Python module 'importlib_resources' to load 'cifar10'" in message
    assert "pip install importlib_resources" in message
    assert "is not available" not in message  # the dataset is not to blame
