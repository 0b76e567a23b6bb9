"""Benchmark contenders named by a spec string, each measured in its own process.

    pixelcnn | row_lstm | diagonal_bilstm | spatial_lstm | gated_pixelcnn [:layers=12,hidden=128,residual=1,skip=0,jit=0,
        head=logistic_mixture,num_mixtures=5,optimizer=adam,lr=0.001,lr_schedule=cosine,decay_steps=2000,multiscale=2,
        dropout=0.5,precision=mixed_bfloat16]
    tfp [:num_resnet=1,num_hierarchies=2,num_filters=32,num_logistic_mix=5,dropout_p=0.3]

`tfp` is the peer, `tfp.distributions.PixelCNN` (PixelCNN++); it needs tf-keras, so it never
shares a process with Keras 3 models. Bare arch names get `training.run`'s defaults: CPU sizes, optimizer
(Adam), learning rate (`pixel_keras.fitting.DEFAULT_LEARNING_RATES`: 2e-3 for Adam since session 22, 1e-3
before) and schedule (a cosine that ends with the budget, since session 23; constant before, or a cosine
over `decay_steps`, which now also ends training there).
"""

import json
import os
import resource
import subprocess
import sys
import tempfile

PEER = "tfp"
# The configuration of TFP's own PixelCNN example (0.63 M parameters on 28 x 28 x 1).
PEER_DEFAULTS = {"num_resnet": 1, "num_hierarchies": 2, "num_filters": 32, "num_logistic_mix": 5, "dropout_p": 0.3}


# Spec keys whose values are names, not numbers.
NAME_KEYS = ("head", "optimizer", "lr_schedule", "precision")


def _value(text):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    raise ValueError(f"expected a number in a contender spec, received {text!r}")


def parse_spec(spec):
    """'name:key=value,...' -> (name, {key: number})."""
    name, _, options = spec.partition(":")
    settings = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"expected key=value in contender spec {spec!r}, received {item!r}")
        settings[key] = value if key in NAME_KEYS else _value(value)
    return name, settings


def make_contender(spec, image_shape, num_levels):
    """The contender object of `spec` (imports only what that contender needs)."""
    name, settings = parse_spec(spec)
    if name == PEER:
        from benchmarks.peer import PeerPixelCNN

        return PeerPixelCNN(image_shape, num_levels, **{**PEER_DEFAULTS, **settings})
    from benchmarks.ours import OurModel

    return OurModel(name, image_shape, num_levels, **settings)


def score_nats(contender, images, batch=256):
    """Per-image NLL in nats of `images`, scored `batch` images at a time."""
    import numpy as np

    return np.concatenate([contender.nll_nats(images[i:i + batch]) for i in range(0, len(images), batch)])


class BestWeights:
    """Keeps the weights of the lowest validation NLL seen during training (model selection as
    `training.run` does with best.keras), so that a long budget on small data is not judged by an
    over-fitted last step. Both frameworks' epoch-end callbacks call `update`."""

    def __init__(self, contender, validation, batch=256):
        self.contender, self.validation, self.batch = contender, validation, batch
        self.best, self.weights = float("inf"), None

    def update(self, model):
        value = float(score_nats(self.contender, self.validation, self.batch).mean())
        if value < self.best:
            self.best, self.weights = value, model.get_weights()

    def restore(self, model):
        model.set_weights(self.weights)


def peak_memory_mb():
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_in_process(task, **arguments):
    """Run `benchmarks.worker` on one task in a fresh Python process; returns its result dict.

    Arrays (datasets) are passed through an .npz file; everything else as JSON."""
    arrays = {key: arguments.pop(key) for key in [k for k, v in arguments.items() if hasattr(v, "dtype")]}
    with tempfile.TemporaryDirectory() as scratch:
        data_path = os.path.join(scratch, "data.npz")
        if arrays:
            import numpy as np

            np.savez(data_path, **arrays)
        request = json.dumps({"task": task, "data": data_path if arrays else None, **arguments})
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run([sys.executable, "-m", "benchmarks.worker", request], capture_output=True,
                              text=True, env=env)
    results = [line[len("RESULT "):] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not results:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"benchmark worker failed on {request[:200]}:\n{tail}")
    return json.loads(results[-1])
