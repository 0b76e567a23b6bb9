"""Our models as benchmark contenders (Keras 3; trained as `python -m training.run` trains them).

Every Keras backend: TensorFlow is imported only on the TensorFlow backend (tf.data input, a
`tf.function` scorer); elsewhere input is numpy batches and scores come from `pk.log_prob`.
"""

import keras
import numpy as np

import pixel_keras as pk
from pixel_keras.cpu_defaults import CPU_SIZES
from pixel_keras.fitting import TrainingBudget, check_lr_schedule, compile_for_training, make_optimizer
from pixel_keras.settings import DEFAULT_LEARNING_RATES
from pixel_keras.xla import default_jit_compile


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


class OurModel:
    """`build_model(arch, ...)` trained on the bits/dim loss with `training.run`'s defaults: Adam at
    `pixel_keras.fitting.DEFAULT_LEARNING_RATES`, a cosine that ends with the budget.

    Args:
        arch: a registered arch (`pixel_keras.arch_names()`).
        image_shape, num_levels: the data's.
        layers, hidden: model size (default: `training.run`'s CPU size for the arch).
        residual, skip: 0 / 1 connection switches of `build_model`.
        jit: 1 to compile with XLA (default: on TensorFlow only with a GPU; elsewhere Keras' own
            "auto": always on JAX, never on PyTorch).
        head, num_mixtures: `build_model`'s output head ("categorical" or "logistic_mixture").
        optimizer, lr, lr_schedule: as `training.run`'s --optimizer, --learning-rate, --lr-schedule;
            decay_steps: training ends there if the budget has not ended it first (as --steps; the
            cosine ends with whichever comes first).
        multiscale: f > 1 for `build_multiscale_model` with factor f (0: single scale).
        dropout: `build_model`'s dropout rate on every block's output (training only).
        precision: a Keras dtype policy name ("float32", "mixed_bfloat16", "mixed_float16"), set as
            the global policy before the model is built (it stays set: one contender per process,
            or the caller restores it).
    """

    def __init__(self, arch, image_shape, num_levels, layers=None, hidden=None, residual=1, skip=0, jit=None,
                 head="categorical", num_mixtures=5, optimizer="adam", lr=None, lr_schedule="cosine",
                 decay_steps=None, multiscale=0, dropout=0.0, precision="float32"):
        if arch not in pk.arch_names():
            raise ValueError(f"unknown contender {arch!r}; expected tfp or one of {', '.join(pk.arch_names())}")
        check_lr_schedule(lr_schedule)  # before building: a bad spec fails at once
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}. Received precision={precision!r}")
        keras.mixed_precision.set_global_policy(precision)
        keras.utils.set_random_seed(0)
        options = dict(num_layers=layers or CPU_SIZES[arch][0], hidden=hidden or CPU_SIZES[arch][1],
                       residual=bool(residual), skip=bool(skip), head=head, num_mixtures=num_mixtures,
                       dropout=dropout)
        if multiscale:
            self.model = pk.build_multiscale_model(arch, image_shape, num_levels, factor=multiscale, **options)
        else:
            self.model = pk.build_model(arch, image_shape, num_levels, **options)
        # the model to fit: a mixture head's training view (observed level only), the same weights
        self.learning_rate = DEFAULT_LEARNING_RATES.get(optimizer) if lr is None else lr
        self.fit_model = compile_for_training(self.model, make_optimizer(optimizer, self.learning_rate),
                                              default_jit_compile() if jit is None else bool(jit))
        self.lr_schedule, self.decay_steps = lr_schedule, decay_steps
        self.numpy_input = keras.backend.backend() != "tensorflow"  # the worker's training stream

    def params(self):
        return self.model.count_params()

    def fit_for(self, batches, seconds, best, steps_per_epoch):
        """Train on the (repeating) uint8 `batches` for `seconds` of wall clock, updating the
        `BestWeights` `best` every epoch and ending with its weights; returns the steps."""
        pairs = ((batch.astype(np.int32),) * 2 for batch in batches) if self.numpy_input else batches.map(_int_pairs)
        select = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: best.update(self.model))
        budget = TrainingBudget(seconds / 60.0, self.decay_steps, self.lr_schedule, self.learning_rate)
        self.fit_model.fit(pairs, steps_per_epoch=steps_per_epoch, epochs=10**6, verbose=0, callbacks=[budget, select])
        best.restore(self.model)
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def train_step(self, images):
        images = images.astype(np.int32)
        self.fit_model.train_on_batch(images, images)

    def nll_nats(self, images):
        return -pk.log_prob(self.model, images.astype(np.int32), batch_size=len(images))

    def sampler(self, seed, method="fast"):
        """A function n -> n images, the compiled sampling loop (traced once for any n)."""
        sampler = pk.Sampler(self.model, method=method)
        return lambda n: sampler.sample(n, seed=seed)


def _int_pairs(images):
    import tensorflow as tf

    images = tf.cast(images, tf.int32)
    return images, images
