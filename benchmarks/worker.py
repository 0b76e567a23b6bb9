"""One benchmark measurement in a fresh process: `python -m benchmarks.worker '<json request>'`.

Tasks: `budget` (train for a wall-clock budget, then score test images), `throughput` (training
images/s on one fixed batch), `profile` (op time per op type under TensorFlow's profiler), `sample` (seconds for `num` images, after a traced warm-up draw: of one image
on TensorFlow, of `num` under JAX, which compiles per batch size; ours by `method`).
Prints `RESULT <json>` last; every result has the parameter count and peak resident memory.
Imports TensorFlow only on the TensorFlow backend, so it runs where TensorFlow is not installed.
"""

import json
import sys
import time

import numpy as np

from benchmarks.contenders import BestWeights, make_contender, peak_memory_mb, score_nats


def repeating_batches(images, batch, seed, numpy_input=False):
    """The training stream a contender consumes: uint8 batches, shuffled, repeated. A tf.data
    pipeline (the figures measured so far; the TFP peer needs it), or with `numpy_input` (our models
    under another Keras backend) numpy batches reshuffled every pass in the training app's order
    (`pixel_keras.batching`), which needs no TensorFlow."""
    if not numpy_input:
        import tensorflow as tf

        return (tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed).repeat()
                .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    from pixel_keras.batching import batch_indices

    return (images[chosen] for chosen in batch_indices(len(images), batch, seed))


def budget(contender, data, minutes, batch, steps_per_epoch, eval_batch=256, sample_images=0, **_):
    """Train for `minutes` (validation included), keep the best-validation weights, score the test set;
    with `sample_images`, also time drawing that many images (after one traced warm-up draw)."""
    best = BestWeights(contender, data["validation"], eval_batch)
    start = time.perf_counter()
    stream = repeating_batches(data["train"], batch, seed=0, numpy_input=getattr(contender, "numpy_input", False))
    steps = contender.fit_for(stream, minutes * 60.0, best, steps_per_epoch)
    seconds = time.perf_counter() - start
    test = data["test"]
    nats = score_nats(contender, test, eval_batch)
    result = {"steps": steps, "train_seconds": seconds, "images_per_second": steps * batch / seconds,
              "test_images": len(test), "test_nats": float(nats.mean()), "validation_nats": best.best}
    if sample_images:
        result["sample_seconds"] = sample(contender, sample_images)["seconds"]
    return result


def throughput(contender, image_shape, num_levels, batch, steps, min_seconds=0.0, **_):
    """Training images/s on one fixed random batch: the first step (tracing, compiling) timed apart,
    then at least `steps` steps and at least `min_seconds` of them (train_on_batch returns numpy,
    so every step is synchronised)."""
    images = np.random.default_rng(0).integers(0, num_levels, (batch,) + tuple(image_shape)).astype(np.uint8)
    start = time.perf_counter()
    contender.train_step(images)  # trace and compile
    first = time.perf_counter() - start
    done, start = 0, time.perf_counter()
    while done < steps or time.perf_counter() - start < min_seconds:
        contender.train_step(images)
        done += 1
    return {"images_per_second": batch * done / (time.perf_counter() - start), "steps": done,
            "first_step_seconds": first}


def sample(contender, num, method=None, **_):
    draw = contender.sampler(seed=1) if method is None else contender.sampler(seed=1, method=method)
    # Trace (and compile) the loop: TensorFlow traces once for any batch size, jax.jit once per size.
    draw(num if getattr(contender, "numpy_input", False) else 1)
    start = time.perf_counter()
    images = draw(num)
    seconds = time.perf_counter() - start
    assert images.shape[0] == num, images.shape
    return {"seconds": seconds}


def profile(contender, image_shape, num_levels, batch, steps, **_):
    """Op time per op type (ms per step) of `steps` training steps under TensorFlow's profiler."""
    import glob
    import tempfile

    import tensorflow as tf

    images = np.random.default_rng(0).integers(0, num_levels, (batch,) + tuple(image_shape)).astype(np.uint8)
    for _ in range(3):  # trace, compile, settle
        contender.train_step(images)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(steps):
            contender.train_step(images)
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        with open(path, "rb") as trace:
            data = trace.read()
    from benchmarks.trace_ops import op_times

    return {"wall_ms_per_step": 1000 * wall / steps, **op_times(data, steps, wall)}


TASKS = {"budget": budget, "throughput": throughput, "sample": sample, "profile": profile}


def main(request):
    request = json.loads(request)
    path = request.pop("data")
    data = dict(np.load(path)) if path else {}
    contender = make_contender(request.pop("contender"), tuple(request["image_shape"]), request["num_levels"])
    result = TASKS[request.pop("task")](contender, data=data, **request)
    print("RESULT " + json.dumps({**result, "params": contender.params(), "peak_memory_mb": peak_memory_mb()}),
          flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
