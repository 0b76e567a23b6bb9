"""Input of in-memory datasets as numpy batches: no tf.data, so no TensorFlow (JAX on a machine
without it). The order is `pixel_keras.batching`'s (seeded per pass, a function of the seed and the
step), so a resumed run sees the data an uninterrupted one would have seen.
"""

import numpy as np

from pixel_keras.batching import batch_indices


def train_batches(images, labels, batch_size, seed, step):
    """An endless generator of training batches from optimizer step `step` on: (images, images)
    int32, or ((images, labels), images) where `labels` is given (class-conditional)."""
    for chosen in batch_indices(len(images), batch_size, seed, step):
        batch = images[chosen].astype(np.int32)
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
    train = train_batches(splits.arrays["train"], labels and labels["train"], args.batch_size, args.seed, step)
    validation = validation_data(splits.arrays["validation"], labels and labels["validation"],
                                 args.validation_images)
    return train, validation, {"validation_batch_size": args.eval_batch_size}
