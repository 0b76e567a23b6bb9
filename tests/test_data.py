"""Datasets: splits kept apart, the offline sources, TFDS by name (on locally generated data)."""

import gzip

import numpy as np
import pytest

from pixel_keras.data import DataError, load_dataset


def _array(dataset):
    return np.stack(list(dataset.as_numpy_iterator()))


def test_digits_splits_are_disjoint_and_complete():
    splits = load_dataset("digits")
    train, validation, test = (_array(getattr(splits, name)) for name in ("train", "validation", "test"))
    assert splits.image_shape == (8, 8, 1) and splits.num_levels == 17
    assert len(train) + len(validation) + len(test) == 1797
    assert splits.sizes == {"train": len(train), "validation": len(validation), "test": len(test)}
    assert train.max() == 16 and train.dtype == np.uint8


def _write_idx(path, images):
    header = (0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in images.shape[:3])
    with gzip.open(path, "wb") as f:
        f.write(header + images.tobytes())


def test_fashion_mnist_from_idx_files_and_its_binarization(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (50, 28, 28), np.uint8), rng.integers(0, 256, (10, 28, 28), np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test)
    monkeypatch.setenv("PIXEL_KERAS_FASHION_MNIST_DIR", str(tmp_path))
    splits = load_dataset("fashion_mnist", data_dir=str(tmp_path / "tfds"))
    assert splits.sizes == {"train": 45, "validation": 5, "test": 10} and splits.num_levels == 256
    np.testing.assert_array_equal(_array(splits.test)[..., 0], test)
    binary = load_dataset("binarized_fashion_mnist", data_dir=str(tmp_path / "tfds"))
    again = load_dataset("binarized_fashion_mnist", data_dir=str(tmp_path / "tfds"))
    values = _array(binary.test)
    assert binary.num_levels == 2 and set(np.unique(values)) <= {0, 1}
    np.testing.assert_array_equal(values, _array(again.test))
    # Stochastic binarization: brighter pixels are on more often.
    assert values[test[..., None] > 200].mean() > 0.7 and values[test[..., None] < 50].mean() < 0.3


def test_truncated_idx_file_is_reported(tmp_path, monkeypatch):
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8))
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write((0x803).to_bytes(4, "big") + (9).to_bytes(4, "big") * 3)
    monkeypatch.setenv("PIXEL_KERAS_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(DataError, match="truncated"):
        load_dataset("fashion_mnist", data_dir=str(tmp_path / "tfds"))


def test_folder_of_images_is_cropped_and_resized(tmp_path):
    from PIL import Image

    for index in range(10):
        Image.fromarray(np.full((12, 20, 3), index * 20, np.uint8)).save(tmp_path / f"{index}.png")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "gray.jpg")
    splits = load_dataset(f"folder:{tmp_path}", image_size=6, channels=3)
    assert splits.image_shape == (6, 6, 3) and sum(splits.sizes.values()) == 11
    gray = load_dataset(f"folder:{tmp_path}", image_size=4, channels=1)
    assert gray.image_shape == (4, 4, 1)


def test_tfds_dataset_by_name_on_generated_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=20, data_dir=str(tmp_path)):
        splits = load_dataset("mnist", data_dir=str(tmp_path))
        images = _array(splits.train.take(4))
    assert splits.image_shape == (28, 28, 1) and splits.num_levels == 256
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.uint8
