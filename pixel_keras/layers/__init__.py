"""Keras layers of the PixelCNN / PixelRNN family."""

from pixel_keras.layers.diagonal_bilstm import DiagonalBiLSTM
from pixel_keras.layers.masked_conv import MaskedConv2D
from pixel_keras.layers.row_lstm import RowLSTM
from pixel_keras.layers.skew import Skew, Unskew

__all__ = ["DiagonalBiLSTM", "MaskedConv2D", "RowLSTM", "Skew", "Unskew"]
