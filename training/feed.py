"""Input of in-memory datasets as numpy batches: no tf.data, so no TensorFlow (JAX on a machine
without it). The order is `pixel_keras.batching`'s (seeded per pass, a function of the seed and the
step), so a resumed run sees the data an uninterrupted one would have seen.
"""

import numpy as np

from pixel_keras.batching import batch_indices
from pixel_keras.perturbation import perturb


def train_batches(images, labels, batch_size, seed, step, perturb_rate=0.0, num_levels=256):
    """An endless generator of training batches from optimizer step `step` on: (images, images)
    int32, or ((images, labels), images) where `labels` is given (class-conditional); with a
    `perturb_rate`, the images of step s perturbed by `perturbation.perturb(..., seed, s)`."""
    for index, chosen in enumerate(batch_indices(len(images), batch_size, seed, step)):
        batch = perturb(images[chosen].astype(np.int32), perturb_rate, num_levels, seed, step + index)
        yield (batch, batch) if labels is None else ((batch, labels[chosen]), batch)


def validation_data(images, labels, count):
    """The first `count` validation images as `fit`'s `validation_data`: (images, images) int32, or
    ((images, labels), images)."""
    images = images[:count].astype(np.int32)
    return (images, images) if labels is None else ((images, labels[:count]), images)


def numpy_pipelines(splits, args, step):
    """(train, validation, extra `fit` arguments) of numpy input: `make_pipelines`' counterpart
    for `splits` with `arrays`."""
    labels = splits.label_arrays if splits.paired else None
    if len(splits.arrays["train"]) < args.batch_size:
        raise ValueError(f"--batch-size {args.batch_size} is larger than the {len(splits.arrays['train'])} "
                         f"training images of {splits.name}")
    train = train_batches(splits.arrays["train"], labels and labels["train"], args.batch_size, args.seed, step,
                          args.perturb_rate, splits.num_levels)
    validation = validation_data(splits.arrays["validation"], labels and labels["validation"],
                                 args.validation_images)
    return train, validation, {"validation_batch_size": args.eval_batch_size}
