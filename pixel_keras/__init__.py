"""pixel_keras: PixelCNN and PixelRNN autoregressive image models in Keras 3."""

from pixel_keras import layers
from pixel_keras.likelihood import NegativeLogLikelihood, bits_per_dim, log_prob
from pixel_keras.models import ARCHS, build_model
from pixel_keras.multiscale import build_multiscale_model
from pixel_keras.sampling import Sampler, complete, sample
from pixel_keras import fitting  # pk.fitting.training_view: the mixture head's fast training loss

__all__ = [
    "ARCHS", "NegativeLogLikelihood", "Sampler", "bits_per_dim", "build_model", "build_multiscale_model", "complete",
    "fitting", "layers", "log_prob", "sample",
]
