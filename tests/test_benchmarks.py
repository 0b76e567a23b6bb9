"""The benchmark machinery: contender specs, the independent-pixel baseline, worker processes."""

import math

import numpy as np
import pytest

from benchmarks.contenders import parse_spec, run_in_process
from benchmarks.nll_budget import independent_pixel_nats
from tests.tiers import slow


def test_contender_specs_parse_and_reject_garbage():
    assert parse_spec("tfp") == ("tfp", {})
    assert parse_spec("row_lstm:layers=12,hidden=16,skip=1,dropout_p=0.5") == (
        "row_lstm", {"layers": 12, "hidden": 16, "skip": 1, "dropout_p": 0.5})
    with pytest.raises(ValueError, match="key=value"):
        parse_spec("pixelcnn:layers")
    with pytest.raises(ValueError, match="expected a number"):
        parse_spec("pixelcnn:layers=many")


def test_independent_pixel_baseline_is_the_smoothed_histogram_likelihood():
    train = np.array([[[[0]], [[1]]], [[[0]], [[0]]]], np.uint8)  # two 2 x 1 images, 2 levels
    test = np.array([[[[0]], [[1]]]], np.uint8)
    # position 0: counts (2, 0) + 1 -> p(0) = 3/4; position 1: counts (1, 1) + 1 -> p(1) = 1/2
    assert independent_pixel_nats(train, test, 2) == pytest.approx(-math.log(3 / 4) - math.log(1 / 2))


@pytest.mark.parametrize("contender", ["pixelcnn:layers=1,hidden=4", "row_lstm:layers=1,hidden=4,multiscale=2", "tfp:num_resnet=1,num_filters=4"])
@slow
def test_budget_worker_trains_selects_and_scores_in_its_own_process(contender):
    rng = np.random.default_rng(0)
    data = {split: rng.integers(0, 4, (count, 4, 4, 1)).astype(np.uint8)
            for split, count in (("train", 64), ("validation", 8), ("test", 8))}
    result = run_in_process("budget", contender=contender, image_shape=(4, 4, 1), num_levels=4, minutes=0.05,
                            batch=8, steps_per_epoch=4, **data)
    assert result["steps"] >= 1 and result["params"] > 0 and result["peak_memory_mb"] > 0
    assert result["test_images"] == 8
    # Random data: every model is near uniform, 16 * ln 4 nats, and a proper likelihood is finite.
    assert 0.5 * 16 * math.log(4) < result["test_nats"] < 3 * 16 * math.log(4)


@slow
def test_worker_failures_surface_with_the_workers_message():
    with pytest.raises(RuntimeError, match="unknown contender 'nonsense'"):
        run_in_process("throughput", contender="nonsense", image_shape=(4, 4, 1), num_levels=4, batch=2, steps=1)


def test_numpy_training_stream_reshuffles_every_pass_in_full_batches():
    from benchmarks.worker import repeating_batches

    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    stream = repeating_batches(images, 4, seed=0, numpy_input=True)  # what our models get off TensorFlow
    batches = [next(stream) for _ in range(4)]  # two full batches per pass of 10 images, two passes
    assert all(batch.shape == (4, 1, 1, 1) and batch.dtype == np.uint8 for batch in batches)
    passes = [np.concatenate(batches[:2]).ravel(), np.concatenate(batches[2:]).ravel()]
    assert all(len(set(values)) == 8 for values in passes)  # no image twice within a pass
    assert not np.array_equal(passes[0], passes[1])
    with pytest.raises(ValueError, match="at least one batch of 16 training images. Received 10"):
        repeating_batches(images, 16, seed=0, numpy_input=True)


def test_default_tables_leave_out_the_peer_only_where_tensorflow_probability_is_missing(monkeypatch, capsys):
    import importlib.util

    from benchmarks.header import runnable

    defaults = ("pixelcnn", "tfp:num_resnet=2")
    real_find_spec = importlib.util.find_spec
    assert runnable(defaults, defaults) == list(defaults)  # installed here
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "tensorflow_probability" else real_find_spec(name, *args))
    assert runnable(defaults, defaults) == ["pixelcnn"]
    assert "left out" in capsys.readouterr().out
    assert runnable(["tfp"], defaults) == ["tfp"]  # asked for by name: kept, its worker says what is missing


@slow
def test_gpu_report_skips_what_would_pass_its_deadline_and_keeps_going_after_a_failure(monkeypatch, tmp_path, capsys):
    import json

    from benchmarks import gpu_report

    calls = []

    def fake_run(kind, arch, settings, args, data):
        calls.append((kind, arch))
        if arch == "row_lstm":
            raise RuntimeError("out of memory")
        return {"images_per_second": 1.0, "steps": 5, "first_step_seconds": 0.1, "params": 7}

    monkeypatch.setattr(gpu_report, "run_item", fake_run)
    # the batch-16 items fit a 35 s deadline (elapsed time stays near 0: the estimate decides), batch 64 does not
    monkeypatch.setattr(gpu_report, "cost_estimate", lambda kind, settings: 15.0 if settings["batch"] == 16 else 99.0)
    gpu_report.main(["--only", "throughput", "--seconds", "35", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    lines = [json.loads(line) for line in (tmp_path / "gpu_report.jsonl").read_text().splitlines()]
    batch16 = [item for item in gpu_report.plan(1.0) if item[0] == "throughput" and item[2]["batch"] == 16]
    assert len(calls) == len(lines) == len(batch16) == 12  # 3 archs x 2 shapes x 2 precisions at batch 16
    assert [line["arch"] for line in lines if "error" in line] == ["row_lstm"] * 4
    assert "FAILED RuntimeError: out of memory" in printed
    assert "skipped (deadline 35 s): train pixelcnn" in printed and "batch 64" in printed.split("skipped")[1]


def test_gpu_report_measures_the_archs_it_is_given(monkeypatch, tmp_path, capsys):
    """Issue 28's GPU row is one call: `--archs pixelcnn pixelsnail`; an unknown arch is refused by name."""
    import json

    import pytest

    from benchmarks import gpu_report

    calls = []

    def fake_run(kind, arch, settings, args, data):
        calls.append((kind, arch))
        return {"images_per_second": 1.0, "steps": 5, "first_step_seconds": 0.1, "params": 7}

    monkeypatch.setattr(gpu_report, "run_item", fake_run)
    gpu_report.main(["--archs", "pixelcnn", "pixelsnail", "--only", "throughput", "--out", str(tmp_path)])
    assert {arch for _, arch in calls} == {"pixelcnn", "pixelsnail"}
    assert len(calls) == len((tmp_path / "gpu_report.jsonl").read_text().splitlines()) == 16  # 2 archs x 8
    assert json.loads((tmp_path / "gpu_report.jsonl").read_text().splitlines()[1])["arch"] == "pixelsnail"
    budgets = [item for item in gpu_report.plan(1.0, ("pixelsnail",)) if item[0] == "budget"]
    assert budgets == [("budget", "pixelsnail", {"minutes": 1.0, "precision": "float32"})]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        gpu_report.main(["--archs", "pixelsnale"])
    assert "invalid choice: 'pixelsnale'" in capsys.readouterr().err


def test_precision_spec_sets_the_policy_and_rejects_unknown_names():
    import keras

    from benchmarks.contenders import make_contender

    try:
        contender = make_contender("pixelcnn:layers=1,hidden=4,precision=mixed_bfloat16", (3, 3, 1), 4)
        policies = {layer.dtype_policy.name for layer in contender.model.layers}
        assert "mixed_bfloat16" in policies and contender.model.get_layer("head_logits").dtype_policy.name == "float32"
        assert contender.nll_nats(np.zeros((2, 3, 3, 1), np.uint8)).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(ValueError, match="precision must be one of float32, mixed_bfloat16, mixed_float16. "
                                         "Received precision='bf16'"):
        make_contender("pixelcnn:layers=1,hidden=4,precision=bf16", (3, 3, 1), 4)


def _trace(events_per_thread):
    """A serialized XSpace like TensorFlow's profiler writes: {thread: [(event name, start ms, ms)]}."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    plane = space.planes.add(name="/host:CPU")
    ids = {}
    for thread, events in events_per_thread.items():
        line = plane.lines.add(name=thread, timestamp_ns=1_000_000)
        for name, start_ms, ms in events:
            if name not in ids:
                ids[name] = len(ids) + 1
                plane.event_metadata[ids[name]].id = ids[name]
                plane.event_metadata[ids[name]].name = name
            line.events.add(metadata_id=ids[name], offset_ps=int(start_ms * 1e9), duration_ps=int(ms * 1e9))
    return space.SerializeToString()


@pytest.mark.tensorflow
def test_trace_op_times_sum_per_type_and_count_the_wall_clock_no_op_covers():
    from benchmarks.trace_ops import op_times

    data = _trace({
        "tf_Compute/1": [("model/conv/Conv2D:Conv2D", 0, 4), ("ExecutorState::Process", 0, 10),
                         ("model/relu/Relu:Relu", 5, 1)],
        "tf_Compute/2": [("model/conv_1/Conv2D:Conv2D", 2, 4), ("ThreadpoolListener::Record", 7, 3)],
    })
    result = op_times(data, steps=2, wall_seconds=0.010)
    assert result["op_ms_per_step"] == pytest.approx({"Conv2D": 4.0, "Relu": 0.5})
    assert result["op_events"] == 3
    assert result["busiest_thread_ms_per_step"] == pytest.approx(2.5)  # thread 1: 4 + 1 ms over 2 steps
    # ops cover [0, 6] ms of the 10 ms wall clock (the two convolutions overlap): 4 ms idle, 2 per step
    assert result["idle_ms_per_step"] == pytest.approx(2.0)


@pytest.mark.tensorflow
@slow
def test_profile_task_finds_the_convolutions_of_a_training_step():
    from benchmarks.contenders import make_contender
    from benchmarks.worker import profile

    contender = make_contender("pixelcnn:layers=1,hidden=4", (4, 4, 1), 4)
    result = profile(contender, (4, 4, 1), 4, batch=2, steps=2)
    assert any("Conv2D" in name for name in result["op_ms_per_step"])
    assert 0 <= result["idle_ms_per_step"] <= result["wall_ms_per_step"]
