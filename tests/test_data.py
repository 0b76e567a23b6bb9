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


def _write_fashion_idx(folder, train, test):
    """Fashion-MNIST's four IDX files (images as given, labels i % 10) in `folder`."""
    for prefix, images in (("train", train), ("t10k", test)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write((0x801).to_bytes(4, "big") + len(images).to_bytes(4, "big")
                    + (np.arange(len(images)) % 10).astype(np.uint8).tobytes())


def test_fashion_mnist_from_idx_files_and_its_binarization(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (50, 28, 28), np.uint8), rng.integers(0, 256, (10, 28, 28), np.uint8)
    _write_fashion_idx(tmp_path, train, test)
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
        splits = load_dataset("kmnist", data_dir=str(tmp_path))
        images = _array(splits.train.take(4))
    assert splits.image_shape == (28, 28, 1) and splits.num_levels == 256
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.uint8


def _rows(images):
    """The images of an array as a set of byte strings (to compare splits regardless of order)."""
    return {image.tobytes() for image in images}


def _split_rows(splits):
    return {name: _rows(_array(getattr(splits, name))) for name in ("train", "validation", "test")}


def _assert_test_split_is_seed_independent(load):
    first, second = _split_rows(load(0)), _split_rows(load(1))
    assert first["test"] == second["test"]
    assert first["validation"] != second["validation"]  # the hold-out still follows the seed
    for rows in (first, second):
        assert not rows["test"] & (rows["train"] | rows["validation"])
        assert not rows["train"] & rows["validation"]


def test_digits_test_split_does_not_depend_on_the_seed():
    _assert_test_split_is_seed_independent(lambda seed: load_dataset("digits", seed=seed))


def _write_distinct_pngs(folder, count, size=2):
    from PIL import Image

    folder.mkdir(exist_ok=True)
    for index in range(count):  # image i is constant at 5 i: every image differs
        Image.fromarray(np.full((size, size), 5 * index, np.uint8)).save(folder / f"{index:03d}.png")


def test_folder_split_is_80_10_10_and_its_test_split_does_not_depend_on_the_seed(tmp_path):
    _write_distinct_pngs(tmp_path, 50)
    splits = load_dataset(f"folder:{tmp_path}", image_size=2, channels=1)
    assert splits.sizes == {"train": 40, "validation": 5, "test": 5}
    _assert_test_split_is_seed_independent(
        lambda seed: load_dataset(f"folder:{tmp_path}", image_size=2, channels=1, seed=seed))


def test_binarized_fashion_mnist_test_binarization_does_not_depend_on_the_seed(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    _write_fashion_idx(tmp_path, rng.integers(0, 256, (20, 4, 4), np.uint8), rng.integers(0, 256, (10, 4, 4), np.uint8))
    monkeypatch.setenv("PIXEL_KERAS_FASHION_MNIST_DIR", str(tmp_path))
    first, second = (load_dataset("binarized_fashion_mnist", data_dir=str(tmp_path / "tfds"), seed=seed)
                     for seed in (0, 1))
    np.testing.assert_array_equal(_array(first.test), _array(second.test))
    pools = [_rows(_array(s.train)) | _rows(_array(s.validation)) for s in (first, second)]
    assert pools[0] != pools[1]  # the training binarization follows the seed


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    from pixel_keras.data import load_image_file

    Image.fromarray(np.full((4, 4), 32768, np.uint16)).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode == "I;16"
    for channels in (1, 3):
        np.testing.assert_array_equal(load_image_file(tmp_path / "grey16.png", 2, channels),
                                      np.full((2, 2, channels), 128))  # round(32768 * 255 / 65535)


@pytest.mark.parametrize("orientation, top, bottom", [(6, 0, 255), (8, 255, 0)])
def test_jpeg_is_turned_upright_by_its_exif_orientation(orientation, top, bottom, tmp_path):
    """Stored landscape 12 x 8, left half black: orientation 6 (turn 90 degrees clockwise to view) puts
    the stored left side at the top, 8 (counter-clockwise) at the bottom."""
    from PIL import Image

    from pixel_keras.data import load_image_file

    stored = np.full((8, 12), 255, np.uint8)
    stored[:, :6] = 0
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif.tobytes(), quality=95)
    image = load_image_file(tmp_path / "photo.jpg", 8, 1)[..., 0].astype(int)  # portrait 8 x 12 -> centre 8 x 8
    assert np.abs(image[:3] - top).max() < 40 and np.abs(image[-3:] - bottom).max() < 40


def test_unreadable_files_are_skipped_with_one_warning_naming_them(tmp_path):
    import warnings

    _write_distinct_pngs(tmp_path, 10)
    (tmp_path / "._x.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble, not a PNG")
    (tmp_path / "cut.png").write_bytes((tmp_path / "000.png").read_bytes()[:30])  # truncated
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_dataset(f"folder:{tmp_path}", image_size=2, channels=1)
    skipped = [str(w.message) for w in caught if str(w.message).startswith("Skipped")]
    assert len(skipped) == 1 and "Skipped 2 unreadable image file(s) of 12" in skipped[0]
    assert "._x.png" in skipped[0] and "cut.png" in skipped[0]
    assert sum(splits.sizes.values()) == 10
    for path in tmp_path.glob("0*.png"):
        path.unlink()
    with pytest.raises(DataError, match=r"None of the 2 PNG/JPEG files in .* can be read.*\._x\.png"):
        load_dataset(f"folder:{tmp_path}", image_size=2, channels=1)


def test_levels_are_declared_never_requantised():
    assert load_dataset("digits", levels=256).num_levels == 256
    with pytest.raises(DataError, match=r"'digits' has pixel values up to 16, outside the 16 levels declared"):
        load_dataset("digits", levels=16)
    for bad in (1, 257, 2.5, True):
        with pytest.raises(DataError, match=rf"integer in \[2, 256\].*Received levels={bad!r}\."):
            load_dataset("digits", levels=bad)


def test_fashion_mnist_declared_as_binary_is_refused(tmp_path, monkeypatch):
    _write_fashion_idx(tmp_path, np.full((5, 4, 4), 255, np.uint8), np.zeros((2, 4, 4), np.uint8))
    monkeypatch.setenv("PIXEL_KERAS_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"'fashion_mnist' has pixel values up to 255, outside the 2 levels"):
        load_dataset("fashion_mnist", data_dir=str(tmp_path / "tfds"), levels=2)


def _cached_element_specs(dataset):
    """element_spec of every `.cache()` in a tf.data pipeline, walking back to its source."""
    specs = []
    while dataset is not None:
        if type(dataset).__name__.lstrip("_") == "CacheDataset":
            specs.append(dataset.element_spec)
        dataset = getattr(dataset, "_input_dataset", None)
    return specs


def test_training_pipelines_cache_uint8_and_cast_per_batch():
    import argparse

    import tensorflow as tf

    from training.run import make_pipelines

    splits = load_dataset("digits")
    args = argparse.Namespace(seed=0, batch_size=4, validation_images=8, eval_batch_size=4, perturb_rate=0.0)
    for pipeline in make_pipelines(splits, args, 0, tf.data.Options()):
        cached = _cached_element_specs(pipeline)
        assert [spec.dtype for spec in cached] == [tf.uint8]
        assert [spec.dtype for spec in pipeline.element_spec] == [tf.int32, tf.int32]


def test_sample_photos_are_tiles_of_one_photograph_for_training_and_the_other_for_test():
    from sklearn.datasets import load_sample_images

    splits = load_dataset("sample_photos")
    assert (splits.image_shape, splits.num_levels) == ((32, 32, 3), 256)
    assert splits.sizes == {"train": 234, "validation": 26, "test": 260}
    china, flower = load_sample_images().images  # china.jpg, flower.jpg: 427 x 640 x 3
    test = _array(splits.test)
    np.testing.assert_array_equal(test[0], flower[:32, :32])
    np.testing.assert_array_equal(test[21], flower[32:64, 32:64])  # 20 tiles per row
    china_tiles = {tile.tobytes() for tile in china[:416].reshape(13, 32, 20, 32, 3).transpose(0, 2, 1, 3, 4)
                   .reshape(-1, 32, 32, 3)}
    training = np.concatenate([_array(splits.train), _array(splits.validation)])
    assert {tile.tobytes() for tile in training} == china_tiles  # all of china.jpg's tiles, once each
    assert len({tile.tobytes() for tile in training}) == 260
    assert test.dtype == np.uint8


def test_sample_photos_test_split_does_not_depend_on_the_seed():
    _assert_test_split_is_seed_independent(lambda seed: load_dataset("sample_photos", seed=seed))
