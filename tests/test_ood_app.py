"""python -m training.ood end to end on tiny models (Fashion-MNIST in, transformed sets and digits out)."""

import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras import ood
from pixel_keras.cli import RunError
from tests.tiny_cases import randomise_weights
from training import ood as ood_app


def _save(path, levels=256, shape=(28, 28, 1), seed=3):
    model = pk.build_model("pixelcnn", shape, levels, num_layers=1, hidden=4)
    randomise_weights(model, scale=0.1, seed=seed)
    model.save(path)
    return str(path)


@pytest.mark.slow
def test_app_prints_the_table_and_writes_histograms_and_gallery(tmp_path, capsys):
    model, background = _save(tmp_path / "m.keras"), _save(tmp_path / "b.keras", seed=4)
    ood_app.main(["--model", model, "--background", background, "--in", "fashion_mnist", "--out", "invert:fashion_mnist",
                  "--out", "digits", "--rescale-levels", "--images", "40", "--reference-images", "40",
                  "--output-dir", str(tmp_path / "o")])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("invert:fashion_mnist", "digits"))]
    scores = 6 if ood.compressor_available("jxl") else 5  # the JPEG XL complexity where its plugin is installed
    assert len(rows) == 2 * scores  # every score against each set, ratio included
    for row in rows:
        auroc, auprc, fpr = map(float, row.split()[-3:])
        assert 0 <= auroc <= 1 and 0 <= auprc <= 1 and 0 <= fpr <= 1
    assert "cut accepting 95% of 40 validation images" in out
    written = sorted(path.name for path in (tmp_path / "o").iterdir())
    assert "most_and_least_anomalous.png" in written and "histogram_likelihood_ratio.png" in written
    assert "histogram_typicality_10.png" in written


@pytest.mark.slow
def test_sets_are_mapped_onto_the_model():
    digits = ood_app.load_set("digits", (28, 28, 1), 256, 5, rescale_levels=True)
    assert digits.shape == (5, 28, 28, 1) and digits.max() <= 255 and digits.max() > 200  # 16 -> 255
    flipped = ood_app.load_set("hflip:fashion_mnist", (28, 28, 1), 256, 3)
    np.testing.assert_array_equal(flipped[:, :, ::-1], ood_app.load_set("fashion_mnist", (28, 28, 1), 256, 3))
    noise = ood_app.load_set("noise:fashion_mnist", (28, 28, 1), 256, 3)
    assert noise.shape == (3, 28, 28, 1) and len(np.unique(noise)) > 200


@pytest.mark.slow
def test_app_takes_the_background_perturb_rate_from_its_run(tmp_path, capsys, monkeypatch):
    """A background run directory's run.json names its --perturb-rate: the app denoises with it,
    and --background-perturb-rate overrides it."""
    import json

    model, run = _save(tmp_path / "m.keras"), tmp_path / "background_run"
    run.mkdir()
    _save(run / "best.keras", seed=4)
    (run / "run.json").write_text(json.dumps({"perturb_rate": 0.2}))
    seen = []
    original = ood_app.score_sets
    monkeypatch.setattr(ood_app, "score_sets", lambda *a, **k: seen.append(k["background_perturb_rate"]) or original(*a, **k))
    common = ["--model", model, "--background", str(run), "--out", "invert:fashion_mnist", "--images", "20",
              "--reference-images", "20", "--output-dir", str(tmp_path / "o")]
    ood_app.main(common)
    assert seen == [0.2, 0.2] and "--perturb-rate 0.2" in capsys.readouterr().out
    ood_app.main(common + ["--background-perturb-rate", "0"])
    assert seen[2:] == [0.0, 0.0]


@pytest.mark.slow
def test_a_set_of_other_levels_is_refused_unless_a_mapping_is_asked_for(tmp_path):
    """A binary model scored against 256-level MNIST measured the binarization (typicality AUROC
    1.000 against MNIST itself): such a set is refused, naming both level counts, before any
    scoring; --rescale-levels maps it (a threshold at half onto 2 levels)."""
    binary = _save(tmp_path / "binary.keras", levels=2)
    for out in ("fashion_mnist", "hflip:fashion_mnist", "digits"):
        levels = 17 if out == "digits" else 256
        with pytest.raises(RunError, match=f"^--out {out}: images with {levels} levels; the model "
                                           "takes 2: .*give --rescale-levels"):
            ood_app.main(["--model", binary, "--in", "binarized_fashion_mnist", "--out", out, "--images", "4",
                          "--output-dir", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
    mapped = ood_app.load_set("fashion_mnist", (28, 28, 1), 2, 4, rescale_levels=True)
    raw = ood_app.load_set("fashion_mnist", (28, 28, 1), 256, 4)
    np.testing.assert_array_equal(mapped, np.round(raw / 255.0).astype(np.int32))
    noise = ood_app.load_set("noise:fashion_mnist", (28, 28, 1), 2, 4)  # noise takes only the set's shape
    assert noise.shape == (4, 28, 28, 1) and set(np.unique(noise)) == {0, 1}


def test_the_default_output_folder_is_an_ignored_one_under_runs():
    """The README's command wrote over tracked PNGs in ./ood: the default is now under runs/."""
    import pathlib
    import subprocess

    repo = pathlib.Path(__file__).resolve().parent.parent
    folder = ood_app.parse_args(["--model", "m.keras"]).output_dir
    assert pathlib.PurePath(folder).parts[0] == "runs"
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{folder}/histogram_likelihood.png"], cwd=repo)
    tracked = subprocess.run(["git", "ls-files", folder], cwd=repo, capture_output=True, text=True).stdout
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0 and tracked == ""


def test_mismatches_are_one_line_errors(tmp_path):
    model = _save(tmp_path / "m.keras")
    with pytest.raises(RunError, match="--background"):
        ood_app.main(["--model", model, "--background", _save(tmp_path / "b.keras", levels=2), "--images", "4"])
    with pytest.raises(RunError, match="--in digits"):
        ood_app.main(["--model", model, "--in", "digits", "--images", "4"])
    with pytest.raises(RunError, match="--background-perturb-rate .* give --background"):
        ood_app.main(["--model", model, "--background-perturb-rate", "0.2"])
