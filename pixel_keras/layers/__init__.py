"""Keras layers of the PixelCNN / PixelRNN family."""

from pixel_keras.layers.causal_attention import CausalSelfAttention
from pixel_keras.layers.conditioning import Conditioning
from pixel_keras.layers.diagonal_bilstm import DiagonalBiLSTM
from pixel_keras.layers.gated import GatedBlock
from pixel_keras.layers.masked_conv import MaskedConv2D
from pixel_keras.layers.row_lstm import RowLSTM
from pixel_keras.layers.scales import MergeScales, Subsample
from pixel_keras.layers.skew import Skew, Unskew
from pixel_keras.layers.spatial_lstm import SpatialLSTM

__all__ = ["CausalSelfAttention", "Conditioning", "DiagonalBiLSTM", "GatedBlock", "MaskedConv2D", "MergeScales", "RowLSTM",
           "Skew", "SpatialLSTM", "Subsample", "Unskew"]
