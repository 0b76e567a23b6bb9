"""Our models as benchmark contenders (Keras 3; trained as `python -m training.run` trains them)."""

import keras
import numpy as np
import tensorflow as tf

import pixel_keras as pk
from pixel_keras.cpu_defaults import CPU_SIZES
from pixel_keras.fitting import TimeBudget, make_optimizer
from pixel_keras.likelihood import log_prob_from_logits
from pixel_keras.xla import default_jit_compile


class OurModel:
    """`build_model(arch, ...)` trained on the bits/dim loss (default RMSProp(1e-3), as `training.run`).

    Args:
        arch: one of `pixel_keras.ARCHS`.
        image_shape, num_levels: the data's.
        layers, hidden: model size (default: `training.run`'s CPU size for the arch).
        residual, skip: 0 / 1 connection switches of `build_model`.
        jit: 1 to compile with XLA (default: on only with a GPU).
        head, num_mixtures: `build_model`'s output head ("categorical" or "logistic_mixture").
        optimizer, lr, lr_schedule: as `training.run`'s --optimizer, --learning-rate, --lr-schedule;
            decay_steps: the steps a cosine schedule decays over (needed with lr_schedule=cosine).
        multiscale: f > 1 for `build_multiscale_model` with factor f (0: single scale).
    """

    def __init__(self, arch, image_shape, num_levels, layers=None, hidden=None, residual=1, skip=0, jit=None,
                 head="categorical", num_mixtures=5, optimizer="rmsprop", lr=1e-3, lr_schedule="constant",
                 decay_steps=None, multiscale=0):
        if arch not in pk.ARCHS:
            raise ValueError(f"unknown contender {arch!r}; expected tfp or one of {', '.join(pk.ARCHS)}")
        keras.utils.set_random_seed(0)
        options = dict(num_layers=layers or CPU_SIZES[arch][0], hidden=hidden or CPU_SIZES[arch][1],
                       residual=bool(residual), skip=bool(skip), head=head, num_mixtures=num_mixtures)
        if multiscale:
            self.model = pk.build_multiscale_model(arch, image_shape, num_levels, factor=multiscale, **options)
        else:
            self.model = pk.build_model(arch, image_shape, num_levels, **options)
        if lr_schedule == "cosine" and decay_steps is None:
            raise ValueError("lr_schedule=cosine needs decay_steps=N in the contender spec. Received decay_steps=None.")
        self.model.compile(optimizer=make_optimizer(optimizer, lr, lr_schedule, decay_steps),
                           loss=pk.NegativeLogLikelihood(),
                           jit_compile=default_jit_compile() if jit is None else bool(jit))
        self.score = tf.function(lambda images: -log_prob_from_logits(self.model(images, training=False), images))

    def params(self):
        return self.model.count_params()

    def fit_for(self, batches, seconds, best, steps_per_epoch):
        """Train on the (repeating) uint8 `batches` for `seconds` of wall clock, updating the
        `BestWeights` `best` every epoch and ending with its weights; returns the steps."""
        pairs = batches.map(lambda x: (tf.cast(x, tf.int32), tf.cast(x, tf.int32)))
        select = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: best.update(self.model))
        self.model.fit(pairs, steps_per_epoch=steps_per_epoch, epochs=10**6, verbose=0,
                       callbacks=[TimeBudget(seconds / 60.0), select])
        best.restore(self.model)
        return int(self.model.optimizer.iterations.numpy())

    def train_step(self, images):
        images = images.astype(np.int32)
        self.model.train_on_batch(images, images)

    def nll_nats(self, images):
        return self.score(tf.constant(images, tf.int32)).numpy()

    def sampler(self, seed, method="fast"):
        """A function n -> n images, the compiled sampling loop (traced once for any n)."""
        sampler = pk.Sampler(self.model, method=method)
        return lambda n: sampler.sample(n, seed=seed)
