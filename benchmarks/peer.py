"""The peer contender: `tfp.distributions.PixelCNN` (PixelCNN++), trained as TFP's example does.

Imports tensorflow-probability and tf-keras; never imported in a process that uses Keras 3 models.
"""

import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras


class _Budget(tf_keras.callbacks.Callback):
    """Stop after `seconds`; update the `BestWeights` `best` at every epoch end."""

    def __init__(self, seconds, best):
        super().__init__()
        self.deadline, self.best = time.monotonic() + seconds, best

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() >= self.deadline:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.best.update(self.model)


class PeerPixelCNN:
    """TFP's PixelCNN++ over integer pixels 0 .. num_levels - 1, as a tf-keras model with the
    negative log-likelihood as its loss, Adam(1e-3) (TFP's documented recipe).

    Args:
        image_shape, num_levels: the data's.
        **settings: `tfd.PixelCNN` arguments (num_resnet, num_filters, ...).
    """

    def __init__(self, image_shape, num_levels, **settings):
        tf_keras.utils.set_random_seed(0)
        self.distribution = tfp.distributions.PixelCNN(image_shape=image_shape, high=num_levels - 1, low=0,
                                                       **settings)
        images = tf_keras.layers.Input(shape=image_shape)
        log_prob = self.distribution.log_prob(images)
        self.model = tf_keras.Model(inputs=images, outputs=log_prob)
        self.model.add_loss(-tf.reduce_mean(log_prob))
        self.model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
        self.score = tf.function(lambda x: -self.distribution.log_prob(x, training=False))

    def params(self):
        return self.model.count_params()

    def fit_for(self, batches, seconds, best, steps_per_epoch):
        floats = batches.map(lambda x: tf.cast(x, tf.float32))
        self.model.fit(floats, steps_per_epoch=steps_per_epoch, epochs=10**6, verbose=0,
                       callbacks=[_Budget(seconds, best)])
        best.restore(self.model)
        return int(self.model.optimizer.iterations.numpy())

    def train_step(self, images):
        self.model.train_on_batch(images.astype(np.float32))

    def nll_nats(self, images):
        return self.score(tf.constant(images, tf.float32)).numpy()

    def sampler(self, seed):
        """A function n -> n uint8 images: TFP's sampling `tf.while_loop` in a `tf.function`, traced
        once (TFP takes the seed as a Python value; n is a tensor)."""
        sample = tf.function(lambda n: self.distribution.sample(n, seed=seed))
        return lambda n: tf.cast(sample(tf.constant(n)), tf.uint8).numpy()
