"""Export trained models as SavedModels for TensorFlow Serving."""
