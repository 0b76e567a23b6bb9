"""Writes tests/data/builtin_logits_COMMIT.npz: for every built-in arch (and each head), the logits
of a tiny seeded model on fixed images, as the code at COMMIT computes them. tests/test_layering.py
holds every later version of the code to them bit for bit (a refactor must not change a number).

    git worktree add /tmp/old COMMIT && cd /tmp/old && python - < /path/to/this/file OUT.npz
"""

import sys

import keras
import numpy as np

import pixel_keras as pk

CASES = [(arch, head) for arch in ("pixelcnn", "row_lstm", "diagonal_bilstm", "spatial_lstm", "gated_pixelcnn",
                                   "pixelsnail") for head in ("categorical", "logistic_mixture")]
IMAGE_SHAPE, LEVELS = (4, 4, 3), 8


def logits_of(arch, head):
    keras.utils.set_random_seed(0)
    model = pk.build_model(arch, IMAGE_SHAPE, LEVELS, num_layers=2, hidden=4, head=head, num_mixtures=2)
    images = np.random.default_rng(1).integers(0, LEVELS, (3,) + IMAGE_SHAPE).astype("int32")
    return images, np.asarray(model(images, training=False))


if __name__ == "__main__":
    arrays = {}
    for arch, head in CASES:
        arrays["images"], arrays[f"{arch}_{head}"] = logits_of(arch, head)
    np.savez(sys.argv[1] if len(sys.argv) > 1 else "builtin_logits.npz", **arrays)
