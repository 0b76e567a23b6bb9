"""How tests/data/codec_v3 was made (run from a checkout of commit 1cd6a0c, the codec's format 3
before the layers owned their incremental step, with `PYTHONPATH=. python
tests/data/codec_v3/make_fixture.py OUT`; each .keras re-zipped with ZIP_DEFLATED).

One tiny 3 x 4 x 3, 4-level model per built-in arch (h = 3, one layer, no residual sum, so the
head reads the layer alone), plus a class-conditional Gated PixelCNN, with random float weights
(those of ABLATE times BOOST, so that they matter; random biases): their hidden features are
inexact (LSTM gates, tanh) and may differ in the last bits from CPU to CPU. The head is scaled
up (with distinct biases: no tie where the ReLU zeroes every feature) so that at every coded
sub-pixel one level's logit leads all others by >= MARGIN nats: its softmax is then 1 (or 1 - 2**-24) for the
leader and exactly 0 for the rest (exp(-150) underflows float32), so `codec.frequencies` gives the
table (1, ..., 2**24 - 3, ..., 1) on any CPU. Seeds are searched until that holds on the coded
images, the model's greedy choices depend on their context (the argmax at a pixel changes with
the pixels before it) AND on the arch's layer: zeroing each weight of ABLATE (the recurrent
state-to-state kernels, the windowed convolutions, the class vectors) changes the argmax at >= 3
coded sub-pixels, so a layer whose incremental step went wrong changes a table and the blob no
longer decodes (checked by breaking each step by hand: BUILD_NOTES.md)."""
import pathlib
import sys
import zipfile

import keras
import numpy as np

import pixel_keras as pk
from pixel_keras import codec

SHAPE, LEVELS, MARGIN, SCALE, BOOST = (3, 4, 3), 4, 150.0, 1e6, 10.0
# (file name, arch, num_classes)
MODELS = [("pixelcnn", "pixelcnn", None), ("row_lstm", "row_lstm", None),
          ("diagonal_bilstm", "diagonal_bilstm", None), ("spatial_lstm", "spatial_lstm", None),
          ("gated_pixelcnn", "gated_pixelcnn", None), ("gated_pixelcnn_labels", "gated_pixelcnn", 3)]
# Weights whose contribution the coded argmaxes must depend on (each one zeroed alone).
ABLATE = {"pixelcnn": ["block0_conv/kernel"], "row_lstm": ["row_lstm0/state_to_state"],
          "diagonal_bilstm": ["diagonal_bilstm0/state_to_state_left", "diagonal_bilstm0/state_to_state_right"],
          "spatial_lstm": ["spatial_lstm0/state_to_state"],
          "gated_pixelcnn": ["gated0/vertical/kernel", "gated0/horizontal/kernel"],
          "gated_pixelcnn_labels": ["gated0/vertical/kernel", "gated0/horizontal/kernel", "gated0_condition/class_vectors"]}


def logits_of(model, images, labels):
    inputs = images.astype("int32") if labels is None else [images.astype("int32"), labels]
    return np.asarray(model(inputs)).reshape(images.shape + (LEVELS,))


def margin(logits):
    top_two = np.sort(logits, axis=-1)[..., -2:]
    return float((top_two[..., 1] - top_two[..., 0]).min())


def changed_by_ablation(model, images, labels, choices, path):
    """How many coded argmaxes change when the weight `path` is zeroed."""
    (weight,) = [weight for weight in model.weights if weight.path == path]
    kept = weight.numpy()
    weight.assign(np.zeros_like(kept))
    changed = int((logits_of(model, images, labels).argmax(-1) != choices).sum())
    weight.assign(kept)
    return changed


def make(name, arch, num_classes, seed):
    """(model, images, labels) for one seed, or None when the margin or the context test fails."""
    keras.utils.set_random_seed(seed)
    model = pk.build_model(arch, SHAPE, LEVELS, num_layers=1, hidden=3, head_units=6, num_classes=num_classes,
                           residual=False)
    rng = np.random.default_rng(seed)
    for weight in model.weights:  # biases are zero when built: random ones, which the steps must add too
        if weight.path.endswith("bias"):
            weight.assign(rng.normal(0, 0.3, weight.shape).astype("float32"))
    layer = model.get_layer("head_logits")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * SCALE, rng.permutation(bias.shape[0]).astype("float32") * SCALE / 200])
    for weight in model.weights:
        if weight.path in ABLATE[name]:
            weight.assign(weight.numpy() * BOOST)
    labels = None if num_classes is None else np.array([0, 1, 2], np.int32)
    images = rng.integers(0, LEVELS, (3,) + SHAPE).astype(np.uint8)
    images[0] = 0  # the model's own choices (greedy), beside two random images
    for row in range(SHAPE[0]):
        for col in range(SHAPE[1]):
            for ch in range(SHAPE[2]):
                logits = logits_of(model, images[:1], None if labels is None else labels[:1])
                images[0, row, col, ch] = logits[0, row, col, ch].argmax()
    logits = logits_of(model, images, labels)
    choices = logits.argmax(-1)
    # Context dependence: the argmax at the same sub-pixel differs between the images' contexts.
    differ = int((choices[0] != choices[1]).sum() + (choices[0] != choices[2]).sum())
    distinct = len({tuple(images[0, r, c]) for r in range(SHAPE[0]) for c in range(SHAPE[1])})
    if margin(logits) < MARGIN or differ < 4 or distinct < 3:
        return None
    if min(changed_by_ablation(model, images, labels, choices, path) for path in ABLATE[name]) < 3:
        return None
    return model, images, labels


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    stored_arrays = {}
    for name, arch, num_classes in MODELS:
        for seed in range(400):
            made = make(name, arch, num_classes, seed)
            if made:
                break
        model, images, labels = made
        path = out / f"{name}.keras"
        model.save(path)
        with zipfile.ZipFile(path) as stored:
            members = [(info, stored.read(info)) for info in stored.infolist()]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as rezipped:
            for info, data in members:
                rezipped.writestr(info.filename, data)
        model = keras.models.load_model(path)
        found = margin(logits_of(model, images, labels))
        blobs = codec.compress(model, images, labels=labels)
        assert {blob[0] for blob in blobs} == {3}
        np.testing.assert_array_equal(codec.decompress(model, blobs, labels=labels), images)
        print(name, "seed", seed, "margin", round(found), "sizes", [len(blob) for blob in blobs], flush=True)
        stored_arrays[f"{name}_images"] = images
        if labels is not None:
            stored_arrays[f"{name}_labels"] = labels
        stored_arrays.update({f"{name}_blob{i}": np.frombuffer(blob, np.uint8) for i, blob in enumerate(blobs)})
    np.savez(out / "blobs.npz", **stored_arrays)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
