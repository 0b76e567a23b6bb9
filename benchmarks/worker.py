"""One benchmark measurement in a fresh process: `python -m benchmarks.worker '<json request>'`.

Tasks: `budget` (train for a wall-clock budget, then score test images), `throughput` (training
images/s on one fixed batch), `sample` (seconds for `num` images, after a traced warm-up draw of one; ours by `method`).
Prints `RESULT <json>` last; every result has the parameter count and peak resident memory.
"""

import json
import sys
import time

import numpy as np
import tensorflow as tf

from benchmarks.contenders import BestWeights, make_contender, peak_memory_mb, score_nats


def repeating_batches(images, batch, seed):
    """The training stream both kinds of contender consume: uint8 images, shuffled, repeated."""
    return (tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed).repeat()
            .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def budget(contender, data, minutes, batch, steps_per_epoch, eval_batch=256, **_):
    """Train for `minutes` (validation included), keep the best-validation weights, score the test set."""
    best = BestWeights(contender, data["validation"], eval_batch)
    start = time.perf_counter()
    steps = contender.fit_for(repeating_batches(data["train"], batch, seed=0), minutes * 60.0, best, steps_per_epoch)
    seconds = time.perf_counter() - start
    test = data["test"]
    nats = score_nats(contender, test, eval_batch)
    return {"steps": steps, "train_seconds": seconds, "images_per_second": steps * batch / seconds,
            "test_images": len(test), "test_nats": float(nats.mean()), "validation_nats": best.best}


def throughput(contender, image_shape, num_levels, batch, steps, **_):
    images = np.random.default_rng(0).integers(0, num_levels, (batch,) + tuple(image_shape)).astype(np.uint8)
    contender.train_step(images)  # trace and compile
    start = time.perf_counter()
    for _ in range(steps):
        contender.train_step(images)
    return {"images_per_second": batch * steps / (time.perf_counter() - start)}


def sample(contender, num, method=None, **_):
    draw = contender.sampler(seed=1) if method is None else contender.sampler(seed=1, method=method)
    draw(1)  # trace (and compile) the loop
    start = time.perf_counter()
    images = draw(num)
    seconds = time.perf_counter() - start
    assert images.shape[0] == num, images.shape
    return {"seconds": seconds}


TASKS = {"budget": budget, "throughput": throughput, "sample": sample}


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
