"""Seeded, resumable orders of training images as numpy index batches: the one numpy input mechanism
of the training app off TensorFlow (training/feed.py) and of the benchmarks' workers.

Each pass over the images is a seeded permutation of them (`epoch_order`), cut into whole batches
(the last partial batch is dropped, as tf.data's `drop_remainder` does), so the batch of each
optimizer step is a function of the seed and the step alone: a resumed run sees the data an
uninterrupted one would have seen.
"""

import numpy as np


def epoch_order(seed, epoch, count):
    """The order of the images in pass `epoch` over them (a permutation of `count`)."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def batch_indices(count, batch_size, seed, step=0):
    """An endless iterator of index arrays (`batch_size` each) into `count` images, from optimizer
    step `step` on. Refuses (at once, not at the first batch) fewer images than one batch."""
    if count < batch_size:
        raise ValueError(f"Expected at least one batch of {batch_size} training images. Received {count} images.")

    def batches():
        per_epoch = count // batch_size
        epoch, offset = divmod(step, per_epoch)
        while True:
            order = epoch_order(seed, epoch, count)
            for start in range(offset * batch_size, per_epoch * batch_size, batch_size):
                yield order[start:start + batch_size]
            epoch, offset = epoch + 1, 0

    return batches()
