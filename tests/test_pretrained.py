"""The models shipped in the package (issue 26, part 4): listed, recorded, within the size budget,
loaded by `pk.load_pretrained` and by every model argument as `pretrained:NAME`, and each scoring
the figure recorded with it on the first 500 MNIST test images, here and under JAX without
TensorFlow."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras import data, pretrained
from pixel_keras.cli import run_cli
from pixel_keras.data import load_arrays, mnist_idx_dir
from pixel_keras.io import load_model_file
from pixel_keras.inspection import model_spec
from tests.tiers import slow

REPO = pathlib.Path(__file__).resolve().parent.parent
SHIPPED = ["fashion_mnist_pixelcnn_6x48", "mnist_diagonal_bilstm_1x32", "mnist_diagonal_bilstm_7x16", "mnist_gated_pixelcnn_5x32", "mnist_pixelcnn_15x16", "mnist_row_lstm_7x16"]
LICENCES = {"stochastic_binarized_mnist": "CC BY-SA 3.0", "mnist": "CC BY-SA 3.0", "fashion_mnist": "MIT"}
MAX_TOTAL_BYTES = 15 * 10**6

MNIST_MISSING = not all((mnist_idx_dir() / name).is_file() for names in data.MNIST_IDX_FILES.values() for name in names)
real_mnist = pytest.mark.skipif(MNIST_MISSING, reason=f"MNIST's IDX files are not in {mnist_idx_dir()}: "
                                "`python -m pixel_keras.fetch_mnist` puts them there")


def test_shipped_models_are_listed_recorded_and_within_the_size_budget():
    assert pk.pretrained_names() == pretrained.pretrained_names() == SHIPPED
    total = 0
    for name in SHIPPED:
        record, path = pretrained.pretrained_record(name), pretrained.pretrained_path(name)
        assert record["name"] == name and record["data_licence"] == LICENCES[record["dataset"]]
        for key in ("command", "steps", "hardware", "date", "test_nats_per_image", "test_images", "partial", "run"):
            assert key in record, (name, key)
        assert record["run"]["arch"] == record["arch"] and record["run"]["dataset"] == record["dataset"]
        assert record["check"]["images"] == 500 and 0 < record["check"]["tolerance_nats"] <= 0.1
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"], name  # the file it describes
        total += path.stat().st_size + path.with_suffix(".json").stat().st_size
    assert total <= MAX_TOTAL_BYTES


def test_an_unknown_name_is_one_line_that_lists_the_shipped_ones(capsys, tmp_path):
    listed = ", ".join(SHIPPED)
    with pytest.raises(ValueError, match=f"^no pretrained model 'nope'; the shipped ones are: {listed}$"):
        pk.load_pretrained("nope")
    with pytest.raises(ValueError, match=f"^no pretrained model 'nope'; the shipped ones are: {listed}$"):
        load_model_file("pretrained:nope")
    from training import sample

    with pytest.raises(SystemExit) as exit:
        run_cli(sample.main, ["--checkpoint", "pretrained:nope", "--out", str(tmp_path / "unused.png")])
    assert exit.value.code == 2
    assert capsys.readouterr().err == f"error: no pretrained model 'nope'; the shipped ones are: {listed}\n"


@slow
def test_a_shipped_file_whose_hash_differs_from_its_record_is_refused_naming_it(tmp_path, monkeypatch, capsys):
    """A tampered copy (one kernel scaled by 1.5: it loads and scores silently wrong) and another
    shipped model's file copied over one are refused in one line by every way to load them."""
    import shutil

    import keras

    for path in pretrained.FOLDER.glob("*"):
        shutil.copy(path, tmp_path / path.name)
    tampered = pk.load_pretrained("fashion_mnist_pixelcnn_6x48")
    kernel = next(variable for variable in tampered.weights if "kernel" in variable.path)
    kernel.assign(keras.ops.convert_to_numpy(kernel) * 1.5)
    tampered.save(tmp_path / "fashion_mnist_pixelcnn_6x48.keras")
    shutil.copy(tmp_path / "mnist_pixelcnn_15x16.keras", tmp_path / "mnist_row_lstm_7x16.keras")
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    from training import sample

    for name in ("fashion_mnist_pixelcnn_6x48", "mnist_row_lstm_7x16"):
        message = (f"^{tmp_path / name}.keras has SHA-256 [0-9a-f]{{64}}, not the {pretrained.pretrained_record(name)['sha256']} "
                   f"its record {name}.json holds: the shipped file was changed or damaged; reinstall pixel_keras$")
        with pytest.raises(ValueError, match=message):
            pk.load_pretrained(name)
        with pytest.raises(ValueError, match=message):
            load_model_file(f"pretrained:{name}")
        with pytest.raises(SystemExit) as exit:
            run_cli(sample.main, ["--checkpoint", f"pretrained:{name}", "--out", str(tmp_path / "unused.png")])
        error = capsys.readouterr().err
        assert exit.value.code == 2 and error.count("\n") == 1 and "has SHA-256" in error
    assert pk.load_pretrained("mnist_pixelcnn_15x16") is not None  # an intact copy loads


def test_load_model_file_takes_a_pretrained_name_with_its_run_settings():
    model, config = load_model_file("pretrained:mnist_pixelcnn_15x16")
    assert config == pretrained.pretrained_record("mnist_pixelcnn_15x16")["run"]
    assert model_spec(model) == ((28, 28, 1), 2)
    images = np.random.default_rng(0).integers(0, 2, (2, 28, 28, 1))
    np.testing.assert_allclose(pk.log_prob(model, images), pk.log_prob(pk.load_pretrained("mnist_pixelcnn_15x16"),
                                                                       images), rtol=1e-6)


def _first_test_images(dataset, count):
    return load_arrays(dataset)[0]["test"][:count].astype(np.int32)


def _needs_mnist(name):
    """The MNIST models skip (saying why) where the IDX files are not fetched; Fashion-MNIST is set up always."""
    on_mnist = pretrained.pretrained_record(name)["dataset"] in ("mnist", "stochastic_binarized_mnist")
    return pytest.param(name, marks=real_mnist) if on_mnist else name


@pytest.mark.parametrize("name", [_needs_mnist(name) for name in SHIPPED])
@slow
def test_each_shipped_model_scores_its_recorded_figure(name):
    record = pretrained.pretrained_record(name)
    check = record["check"]
    images = _first_test_images(record["dataset"], check["images"])
    nats = -pk.log_prob(pk.load_pretrained(f"pretrained:{name}"), images, batch_size=100)
    assert abs(float(nats.mean()) - check["nats_per_image"]) <= check["tolerance_nats"], (name, float(nats.mean()))


JAX_CHECK = """
import json, sys
from tests.backend_run import NoTensorFlow
sys.meta_path.insert(0, NoTensorFlow())
import keras, numpy as np
import pixel_keras as pk
from pixel_keras.data import load_arrays
from pixel_keras.pretrained import pretrained_record
assert keras.backend.backend() == "jax"
figures = {}
for name in pk.pretrained_names():
    images = load_arrays(pretrained_record(name)["dataset"])[0]["test"][:500].astype(np.int32)
    figures[name] = float(-pk.log_prob(pk.load_pretrained(name), images, batch_size=100).mean())
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
print(json.dumps(figures))
"""


@real_mnist
@slow
def test_shipped_models_load_and_score_their_figures_on_jax_without_tensorflow():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", JAX_CHECK], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert sorted(figures) == SHIPPED
    for name, nats in figures.items():
        check = pretrained.pretrained_record(name)["check"]
        assert abs(nats - check["nats_per_image"]) <= check["tolerance_nats"], (name, nats)


@real_mnist
@slow
def test_evaluate_takes_a_pretrained_name_for_its_run():
    from training.evaluate import load_run

    model, splits = load_run("pretrained:mnist_pixelcnn_15x16")
    assert splits.name == "stochastic_binarized_mnist" and splits.image_shape == (28, 28, 1)
    assert splits.num_levels == 2 and model_spec(model) == ((28, 28, 1), 2)


@pytest.mark.parametrize("name", [name for name in SHIPPED if name.startswith("mnist_")])
@slow
def test_a_shipped_paper_table_row_continues_from_its_optimizer_state(name, tmp_path):
    """benchmarks/paper_table/gpu_rows.sh continues a row whose run directory is lost from its
    shipped model (`--initial-model pretrained:NAME --initial-optimizer-state`): the model the app
    builds from the recorded settings takes its weights, RMSProp state and step count."""
    from pixel_keras.fitting import compile_for_training, make_optimizer
    from training.checkpoints import RunCheckpoints

    record = pretrained.pretrained_record(name)
    run = record["run"]
    model = pk.build_model(run["arch"], (28, 28, 1), 2, num_layers=run["layers"], hidden=run["hidden"],
                           residual=run["residual"], skip=run["skip"])
    compile_for_training(model, make_optimizer(run["optimizer"], run["learning_rate"]), False)
    source = pk.load_pretrained(name)
    assert RunCheckpoints(model, tmp_path).start_from(source, True, name) == record["steps"]
    images = np.random.default_rng(0).integers(0, 2, (2, 28, 28, 1))
    np.testing.assert_allclose(pk.log_prob(model, images), pk.log_prob(source, images), rtol=1e-6)
