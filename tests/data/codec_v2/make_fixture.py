"""How tests/data/codec_v2 was made (run from a checkout of commit e71646d, the codec's format 2,
with `PYTHONPATH=. python tests/data/codec_v2/make_fixture.py OUT 8`, then pixelcnn.keras re-zipped
with ZIP_DEFLATED). A codec format-2 fixture whose probabilities are the same on every CPU: integer weights
(inputs x * 2/8 - 1 are multiples of 1/4, so every product and sum is exact in float32, in any
order), and a head scaled by 1024 so that at every coded sub-pixel one level's logit exceeds all
others by >= 256: its softmax is exactly 1 and the others' round to frequency 1, whatever exp and
summation order a CPU's kernels use."""
import sys, pathlib, numpy as np, keras
import pixel_keras as pk
from pixel_keras import codec
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(0)
model = pk.build_model("pixelcnn", (3, 4, 3), 9, num_layers=1, hidden=3, head_units=6)
rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
for weight in model.weights:
    value = rng.integers(-1, 2, weight.shape).astype("float32")
    if weight.path.startswith("head_logits"):
        value = rng.permutation(weight.shape[-1]).astype("float32") * 256 if weight.path.endswith("bias") else value * 1024
    weight.assign(value)
model.save(out / "pixelcnn.keras")
model = keras.models.load_model(out / "pixelcnn.keras")
images = rng.integers(0, 9, (3, 3, 4, 3)).astype(np.uint8)
images[0] = 0  # filled below with the model's own choices: a cheap image beside two random ones
for row in range(3):
    for col in range(4):
        for ch in range(3):
            logits = np.asarray(model(images[:1].astype("int32"))).reshape(1, 3, 4, 3, 9)
            images[0, row, col, ch] = logits[0, row, col, ch].argmax()
logits = np.asarray(model(images.astype("int32"))).reshape(3, 3, 4, 3, 9)
top2 = np.sort(logits, axis=-1)[..., -2:]
gap = (top2[..., 1] - top2[..., 0]).min()
print("smallest gap between the two largest logits:", gap)
assert gap >= 256, gap
assert len({tuple(images[0, r, c]) for r in range(3) for c in range(4)}) > 2, "the greedy image does not depend on its context"
blobs = codec.compress(model, images)
print("format", {b[0] for b in blobs}, "sizes", [len(b) for b in blobs])
np.savez(out / "blobs.npz", images=images, **{f"blob{i}": np.frombuffer(b, np.uint8) for i, b in enumerate(blobs)})
