"""Model sizes and training minutes that suit a 2-core CPU: the training app's defaults, which the
benchmarks measure too (so they live in the library, not in one app)."""

# Model sizes (layers, hidden) that train usefully on a 2-core CPU within the default time budget
# (the paper's sizes, 12 layers of h = 128, are `--layers 12 --hidden 128`). PixelCNN's 6 x 48 by
# measurement (issue 15, BUILD_NOTES.md): better than 5 x 32 at the main command's 20 minutes with the
# cosine ending there.
CPU_SIZES = {"pixelcnn": (6, 48), "row_lstm": (3, 32), "diagonal_bilstm": (3, 32), "spatial_lstm": (3, 32),
             "gated_pixelcnn": (5, 32)}
# Default training minutes, so that a whole default run (with the final test evaluation and
# gallery, ~3x slower for the Diagonal BiLSTM, ~1.6x for the Spatial LSTM than for the Row LSTM) ends
# within 30 minutes on a 2-core CPU.
CPU_MINUTES = {"pixelcnn": 20.0, "row_lstm": 20.0, "diagonal_bilstm": 15.0, "spatial_lstm": 18.0,
               "gated_pixelcnn": 20.0}
