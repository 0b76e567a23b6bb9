"""Messages a newcomer can act on (issue 48): no TensorFlow or absl log lines in a healthy run, errors
that name the flag and come before slow work, progress that suits a log file."""

import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras import ood
from pixel_keras.cli import RunError, is_startup_chatter, run_cli
from tests.tiers import slow
from tests.tiny_cases import randomise_weights
from training import ood as ood_app

REPO = pathlib.Path(__file__).resolve().parent.parent
# What a healthy run printed before (2026-12-07, TensorFlow 2.21 on this 2-core CPU), word for word.
CHATTER = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796685233.993512    5518 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To "
    "turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796685233.993997    5518 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "I0000 00:00:1796685516.852731    6248 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX512_FP16 AVX_VNNI AMX_TILE "
    "AMX_INT8 AMX_BF16 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1796685239.792860    5518 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "WARNING:absl:Variant folder /root/tensorflow_datasets/fashion_mnist/3.0.1 has no dataset_info.json",
]
LOG_LINE = re.compile(r"^[EWI]\d{4} |^WARNING:", re.MULTILINE)


def _save(path, levels=256, shape=(28, 28, 1), seed=3):
    model = pk.build_model("pixelcnn", shape, levels, num_layers=1, hidden=4)
    randomise_weights(model, scale=0.1, seed=seed)
    model.save(path)
    return str(path)


def test_startup_chatter_is_recognised_and_nothing_else():
    for line in CHATTER:
        assert is_startup_chatter(line), line
    for line in ["error: --out blur:fashion_mnist: unknown transform 'blur'", "epoch 1 (step 3): train 7.9 bits/dim",
                 "E0000 00:00:1796685243.220523    5518 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT",
                 "Traceback (most recent call last):", "WARNING:absl:something else went wrong"]:
        assert not is_startup_chatter(line), line  # real errors, and any other line, still show


def _run_cli_writing(lines, *argv, **environment):
    """A child that writes `lines` straight to file descriptor 2 inside `run_cli`, as the C++ code does."""
    script = ("import os, sys\nfrom pixel_keras.cli import run_cli\n"
              f"run_cli(lambda argv: os.write(2, {(chr(10).join(lines) + chr(10)).encode()!r}))\n")
    return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **environment}, timeout=60).stderr


def test_apps_drop_the_chatter_from_standard_error_unless_verbose():
    """The filter works on the file descriptor, so it catches what C++ writes before absl reads
    any setting (TF_CPP_MIN_LOG_LEVEL=3 does not: tried)."""
    written = [*CHATTER, "a line of the run", "E0000 00:00:1.0    7 other.cc:1] a real error"]
    assert _run_cli_writing(written).splitlines() == written[-2:]
    assert _run_cli_writing(written, "--verbose").splitlines() == written
    assert _run_cli_writing(written, PIXEL_KERAS_VERBOSE="1").splitlines() == written


@slow
def test_a_healthy_run_of_each_app_prints_no_tensorflow_or_absl_log_line(tmp_path):
    """The README's main command (3 steps) and the other apps on a shipped model: no `E0000`,
    `W0000`, `I0000` or `WARNING:` line; the remapper's error is gone at its cause, not hidden."""
    from pixel_keras.gallery import write_png

    write_png(tmp_path / "image.png", np.zeros((28, 28, 1), np.int32))
    model = "pretrained:fashion_mnist_pixelcnn_6x48"
    commands = [
        # the README model (6 residual blocks: what tripped the remapper) on digits: its test set is small
        ["training.run", "--arch", "pixelcnn", "--dataset", "digits", "--steps", "3", "--max-minutes", "0",
         "--gallery-size", "0", "--validation-images", "16", "--run-dir", str(tmp_path / "run")],
        ["training.sample", "--checkpoint", model, "--num", "1", "--out", str(tmp_path / "s.png")],
        ["pixel_keras.codec", "compress", "--model", model, str(tmp_path / "image.png"), str(tmp_path / "i.pkc")],
        ["training.ood", "--model", model, "--out", "hflip:fashion_mnist", "--images", "20", "--reference-images",
         "20", "--output-dir", str(tmp_path / "ood")],
    ]
    for command in commands:
        done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, cwd=REPO,
                              timeout=600)
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert not LOG_LINE.search(done.stdout + done.stderr), (command[0], done.stderr[-2000:])
    verbose = subprocess.run([sys.executable, "-m", *commands[1], "--verbose"], capture_output=True, text=True,
                             cwd=REPO, timeout=600)
    assert LOG_LINE.search(verbose.stderr), verbose.stderr[-2000:]  # asked for: shown


@slow
def test_a_set_of_fewer_than_ten_images_prints_every_set_with_the_m10_row_empty(tmp_path, capsys):
    model = _save(tmp_path / "m.keras")
    ood_app.main(["--model", model, "--out", "hflip:fashion_mnist", "--out", "invert:fashion_mnist", "--images", "5",
                  "--reference-images", "5", "--output-dir", str(tmp_path / "o")])
    out = capsys.readouterr().out
    for name in ("hflip:fashion_mnist", "invert:fashion_mnist"):
        rows = [line for line in out.splitlines() if line.startswith(name)]
        assert len(rows) == 4 + ood.compressor_available("jxl"), rows  # no background: no ratio
        assert re.fullmatch(rf"{re.escape(name)} +typicality \(M=10\) +- +- +-", rows[-1]), rows[-1]
    assert "typicality (M=10) scores groups of 10 images; fashion_mnist, hflip:fashion_mnist, invert:fashion_mnist " \
           "have fewer" in out
    assert (tmp_path / "o" / "most_and_least_anomalous.png").exists()


@pytest.mark.parametrize("out, problem", [
    ("blur:fashion_mnist", "unknown transform 'blur'"),
    ("no_such_set", "unknown dataset"),
    ("hflip:no_such_set", "unknown dataset"),
    ("folder:/no/such/folder", "no folder '/no/such/folder'"),
    ("noise:", "noise: names no set"),
])
def test_an_unknown_out_set_names_the_flag_and_the_forms_before_any_model_loads(out, problem, monkeypatch):
    import pixel_keras.io

    monkeypatch.setattr(pixel_keras.io, "load_model_file", lambda *a: pytest.fail("the model was loaded"))
    with pytest.raises(RunError) as refused:
        ood_app.main(["--model", "unused.keras", "--out", "fashion_mnist", "--out", out])
    assert str(refused.value) == (f"--out {out}: {problem}; a set is NAME (fashion_mnist, mnist, digits, ... or a "
                                  "TFDS image dataset), folder:PATH, or a transformed set: noise:NAME, hflip:NAME, "
                                  "vflip:NAME, invert:NAME")


@slow
def test_a_tfds_dataset_is_an_out_set_as_it_is_a_training_set(tmp_path, capsys):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        images = ood_app.load_set("kmnist", (28, 28, 1), 256, 7)
        assert images.shape == (7, 28, 28, 1) and images.dtype == np.int32
        ood_app.main(["--model", _save(tmp_path / "m.keras"), "--out", "kmnist", "--images", "12",
                      "--reference-images", "10", "--output-dir", str(tmp_path / "o")])
    assert re.search(r"^kmnist +likelihood +[\d.]+", capsys.readouterr().out, re.MULTILINE)


def test_a_truncated_keras_file_is_named_as_unreadable_not_missing(tmp_path, capsys):
    from pixel_keras.codec import cli
    from pixel_keras.io import load_model_file

    whole = pathlib.Path(_save(tmp_path / "m.keras")).read_bytes()
    (tmp_path / "cut.keras").write_bytes(whole[: len(whole) // 2])
    expected = f"{tmp_path / 'cut.keras'} is not a readable .keras file (not a zip archive: truncated, damaged or " \
               "of another format)"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_model_file(tmp_path / "cut.keras")
    (tmp_path / "i.png").write_bytes(b"")
    with pytest.raises(SystemExit):
        run_cli(cli.main, ["compress", "--model", str(tmp_path / "cut.keras"), str(tmp_path / "i.png"),
                           str(tmp_path / "i.pkc")])
    assert capsys.readouterr().err == f"error: {expected}\n"
    from training import run as training_run

    with pytest.raises(RunError, match=f"^--initial-model: {re.escape(expected)}$"):
        training_run.parse_args(["--arch", "pixelcnn", "--initial-model", str(tmp_path / "cut.keras"),
                                 "--run-dir", str(tmp_path / "run")])


@pytest.mark.parametrize("app", ["training.sample", "export.saved_model"])
def test_an_unknown_pretrained_name_is_refused_before_tensorflow_loads(app, tmp_path):
    flags = {"training.sample": ["--checkpoint", "pretrained:nope", "--out", str(tmp_path / "s.png")],
             "export.saved_model": ["--run-dir", "pretrained:nope", "--out", str(tmp_path / "m"), "--name", "m"]}[app]
    script = (f"import sys\nfrom pixel_keras.cli import run_cli\nfrom {app} import main\n"
              f"try:\n    run_cli(main, {flags!r})\nexcept SystemExit as stop:\n"
              "    print(stop.code, sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'jax'}))\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.stdout.strip() == "2 []", (done.stdout, done.stderr)
    assert done.stderr.startswith("error: no pretrained model 'nope'; the shipped ones are: ") and \
        done.stderr.count("\n") == 1, done.stderr
    assert time.monotonic() - started < 30


@slow
def test_long_set_names_keep_their_columns_and_the_help_keeps_its_example(tmp_path, capsys):
    binary = _save(tmp_path / "b.keras", levels=2)
    ood_app.main(["--model", binary, "--in", "binarized_fashion_mnist", "--out", "invert:binarized_fashion_mnist",
                  "--images", "10", "--reference-images", "10", "--output-dir", str(tmp_path / "o")])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("invert:binarized_fashion_mnist")]
    assert rows and all(re.match(r"invert:binarized_fashion_mnist +likelihood|invert:binarized_fashion_mnist +\w", row)
                        and row.split()[0] == "invert:binarized_fashion_mnist" for row in rows), rows
    with pytest.raises(SystemExit):
        ood_app.parse_args(["--help"])
    assert ("\n    python -m training.ood --model pretrained:fashion_mnist_pixelcnn_6x48 --background runs/background \\\n"
            in capsys.readouterr().out)


@slow
def test_the_codec_names_each_failed_file_on_its_own_line_in_a_subprocess(tmp_path):
    """What a user's terminal or log gets from `python -m pixel_keras.codec` on a folder with bad files:
    a line per file, then the error line; no carriage returns or ANSI codes."""
    from pixel_keras.gallery import write_png

    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "good.png", np.zeros((4, 4, 1), np.int32))
    for name in ("bad1.png", "bad2.png"):
        (tmp_path / "in" / name).write_bytes(b"not a png")
    model = _save(tmp_path / "m.keras", shape=(4, 4, 1))
    done = subprocess.run([sys.executable, "-m", "pixel_keras.codec", "compress", "--model", model,
                           str(tmp_path / "in"), str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 3, done.stderr
    assert [line.split(": ")[0] for line in lines[:2]] == [str(tmp_path / "in" / "bad1.png"),
                                                           str(tmp_path / "in" / "bad2.png")]
    assert lines[2] == "error: 2 of 3 files not compressed (the others were), listed above"
    assert "\r" not in done.stdout + done.stderr and "\x1b" not in done.stdout + done.stderr
