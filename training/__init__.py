"""The pixel_keras training application: `python -m training.run`, `.evaluate`, `.sample`."""
