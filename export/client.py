"""Requests to TensorFlow Serving running an export of `python -m export.saved_model`.

    python -m export.client --name pixelcnn sample --num-images 4 --seed 0 --out samples.npy
    python -m export.client --name pixelcnn log-likelihood --images images.npy
    python -m export.client --name pixelcnn --grpc localhost:8500 complete --images x.npy --known-rows 14

REST (`--rest`, default localhost:8501) posts `{"signature_name": ..., "inputs": {...}}` to
`/v1/models/<name>[/versions/<v>]:predict`; gRPC (`--grpc HOST:PORT`) sends a tensorflow-serving-api
`PredictRequest`. Both take numpy inputs and return a dict of numpy outputs with the export's
dtypes (uint8 images, float32 scores). Inputs are checked here as the library checks them: a float
image or a value outside int32 is refused, never silently truncated on the way to the server.
"""

import argparse
import http.client
import json
import urllib.error
import urllib.request

import numpy as np

from pixel_keras.cli import (RunError, add_verbose_flag, check_output_file, host_port, int_range, make_parent_directory,
                             number_range, program_name, run_cli, sampling_seed)

from .saved_model import SIGNATURE_INPUTS, signature_inputs

# Dtypes of the export's outputs: gRPC's tensors carry them, REST's JSON does not.
OUTPUT_DTYPES = {"images": "uint8", "log_prob": "float32", "nll_nats": "float32", "bits_per_dim": "float32"}


def _checked(key, value, dtype, rank):
    """`value` as a numpy array of `dtype` after checking its kind, rank and range (never truncated)."""
    array = np.asarray(value)
    if dtype == "bool":
        if array.dtype != np.bool_:
            raise ValueError(f"Expected {key} of dtype bool (True where the value is known). "
                             f"Received {key} of dtype {array.dtype}.")
    elif dtype.startswith("int"):
        if not np.issubdtype(array.dtype, np.integer):
            hint = " Convert with e.g. images.astype('uint8') (do not rescale to [0, 1])." if key == "images" else ""
            raise ValueError(f"Expected integer {key}. Received {key} of dtype {array.dtype}.{hint}")
        limits = np.iinfo(dtype)
        if array.size and (array.min() < limits.min or array.max() > limits.max):
            raise ValueError(f"Expected {key} within {dtype} [{limits.min}, {limits.max}]. "
                             f"Received values in [{array.min()}, {array.max()}].")
    elif not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"Expected a real number for {key}. Received {key} of dtype {array.dtype}.")
    if array.ndim != rank:
        raise ValueError(f"Expected {key} of rank {rank}. Received shape {array.shape}.")
    return array.astype(dtype)


def _as_inputs(signature, inputs):
    """`inputs` as checked numpy arrays of the signature's dtypes; an error names a missing or extra input."""
    if signature not in SIGNATURE_INPUTS:
        raise ValueError(f"unknown signature {signature!r}; expected one of {', '.join(SIGNATURE_INPUTS)}")
    # A class-conditional export takes `labels` [batch] in every signature that takes a batch.
    expected = signature_inputs(num_classes=1 if "labels" in inputs else None)[signature]
    if set(inputs) != set(expected):
        raise ValueError(f"signature {signature} takes inputs {sorted(expected)}; received {sorted(inputs)}")
    return {key: _checked(key, inputs[key], dtype, rank) for key, (dtype, rank) in expected.items()}


def _as_output(key, value):
    """A REST output as an array of the export's dtype (JSON numbers carry none)."""
    array = np.asarray(value)
    dtype = OUTPUT_DTYPES.get(key)
    if dtype is None:
        return array
    if np.issubdtype(np.dtype(dtype), np.integer) and array.size and \
            (array.min() < np.iinfo(dtype).min or array.max() > np.iinfo(dtype).max):
        raise RunError(f"output {key} has values in [{array.min()}, {array.max()}], outside {dtype}")
    return array.astype(dtype)


def rest_request(name, signature, inputs, version=None):
    """(URL path, JSON body) of a REST `:predict` request in the columnar ("inputs") format."""
    path = f"/v1/models/{name}" + (f"/versions/{version}" if version else "") + ":predict"
    body = {"signature_name": signature,
            "inputs": {key: value.tolist() for key, value in _as_inputs(signature, inputs).items()}}
    return path, body


def _reply_text(status, reason, payload):
    """What a non-JSON reply says: its HTTP status and the first line of its body."""
    lines = payload.decode(errors="replace").strip().splitlines()
    return f"HTTP {status} {reason}" + (f": {lines[0][:200]}" if lines else " (empty body)")


def rest_predict(host, name, signature, inputs, version=None, timeout=600):
    """POST a `:predict` request to `host` (e.g. localhost:8501); returns {output name: array}."""
    path, body = rest_request(name, signature, inputs, version)
    request = urllib.request.Request(f"http://{host}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, reason, payload = response.status, response.reason, response.read()
    except urllib.error.HTTPError as error:  # Serving puts the graph's assert message in "error"
        payload = error.read()
        try:
            message = json.loads(payload)["error"]
        except (ValueError, TypeError, KeyError):
            message = _reply_text(error.code, error.reason, payload)
        raise RunError(f"{host} refused the request: {message}") from None
    except (TimeoutError, urllib.error.URLError) as error:
        if isinstance(error, TimeoutError) or isinstance(error.reason, TimeoutError):
            raise RunError(f"no answer from {host} within {timeout} s (raise --timeout for slow requests)") from None
        raise RunError(f"cannot reach TensorFlow Serving at {host}: {error.reason}") from None
    except OSError as error:  # the connection dropped mid-reply
        raise RunError(f"connection to {host} failed: {error}") from None
    except http.client.InvalidURL as error:  # a host the command line would have refused (host_port)
        raise RunError(f"cannot send a request to {host!r}: {error}") from None
    try:
        outputs = json.loads(payload)["outputs"]
    except (ValueError, TypeError, KeyError):
        raise RunError(f"{host} did not answer with JSON outputs: {_reply_text(status, reason, payload)}") from None
    # A signature with one output answers with that output's value alone.
    if not isinstance(outputs, dict):
        outputs = {"images": outputs}
    return {key: _as_output(key, value) for key, value in outputs.items()}


def grpc_request(name, signature, inputs, version=None):
    """A tensorflow-serving-api `PredictRequest` for `signature` of model `name`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version:
        request.model_spec.version.value = int(version)
    for key, value in _as_inputs(signature, inputs).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def grpc_predict(host, name, signature, inputs, version=None, timeout=600):
    """Send a `PredictRequest` to `host` (e.g. localhost:8500); returns {output name: array}."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = grpc_request(name, signature, inputs, version)
    with grpc.insecure_channel(host) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise RunError(f"no answer from {host} within {timeout} s (raise --timeout for slow requests)") \
                    from None
            raise RunError(f"{host} refused the request: {' '.join(str(error.details()).split())}") from None
    return {key: tf.make_ndarray(value) for key, value in response.outputs.items()}


def _load_images(path):
    """Images from a .npy file, or a RunError naming the file."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise RunError(f"cannot read --images {path}: {error}") from None


def _known_top_rows(images, rows):
    """The `complete` mask that keeps the top `rows` rows of every image (0 <= rows <= height)."""
    if images.ndim != 4:
        raise RunError(f"--images must hold images [batch, height, width, channels]; received shape {images.shape}")
    if not 0 <= rows <= images.shape[1]:
        raise RunError(f"--known-rows must be in [0, {images.shape[1]}] (the image height); received {rows}")
    known = np.zeros(images.shape, bool)
    known[:, :rows] = True
    return known


def _parse_labels(text, batch):
    """`--labels`: one integer for every image of the request, or a comma-separated one per image."""
    try:
        labels = [int(value) for value in text.split(",")]
    except ValueError:
        raise RunError(f"--labels must be integers, one or one per image (e.g. 3 or 0,3,1); received {text!r}") from None
    if len(labels) == 1:
        labels = labels * batch
    if len(labels) != batch:
        raise RunError(f"--labels gives {len(labels)} labels for {batch} images; give one, or one per image")
    return np.asarray(labels, np.int64)


def main(argv=None):
    parser = argparse.ArgumentParser(prog=program_name("export.client"), description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="model name the server was started with")
    parser.add_argument("--version", type=int_range(1, 2**63 - 1), default=None,
                        help="model version (default: the server's latest)")
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--rest", type=host_port, default="localhost:8501", help="REST host:port")
    transport.add_argument("--grpc", type=host_port, default=None, help="gRPC host:port (instead of REST)")
    parser.add_argument("--timeout", type=number_range(0, 1e6, low_open=True), default=600.0,
                        help="seconds to wait for the answer")
    parser.add_argument("--labels", default=None,
                        help="class-conditional exports: one label for every image, or one per image (0,3,1)")
    add_verbose_flag(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    likelihood = commands.add_parser("log-likelihood", help="per-image log p, NLL and bits/dim")
    likelihood.add_argument("--images", required=True, help=".npy of integer images [batch, H, W, C]")
    draw = commands.add_parser("sample", help="draw new images")
    draw.add_argument("--num-images", type=int_range(0, 2**31 - 1), default=4)
    draw.add_argument("--seed", type=sampling_seed, default=0)
    draw.add_argument("--temperature", type=number_range(0, low_open=True), default=None)
    draw.add_argument("--out", default="samples.npy", help=".npy for the uint8 images (missing folders are created)")
    fill = commands.add_parser("complete", help="keep the top rows of images, sample the rest")
    fill.add_argument("--images", required=True, help=".npy of integer images [batch, H, W, C]")
    fill.add_argument("--known-rows", type=int, required=True, help="rows kept from the top")
    fill.add_argument("--seed", type=sampling_seed, default=0)
    fill.add_argument("--out", default="completions.npy",
                      help=".npy for the uint8 images (missing folders are created)")
    args = parser.parse_args(argv)
    if args.command != "log-likelihood":
        check_output_file(args.out, "--out")

    if args.command == "sample":
        signature = "sample" if args.temperature is None else "sample_with_temperature"
        inputs = {"num_images": args.num_images, "seed": args.seed}
        if args.temperature is not None:
            inputs["temperature"] = args.temperature
    else:
        images = _load_images(args.images)
        if args.command == "log-likelihood":
            signature, inputs = "log_likelihood", {"images": images}
        else:
            known = _known_top_rows(images, args.known_rows)
            signature, inputs = "complete", {"images": images, "known_mask": known, "seed": args.seed}
    if args.labels is not None:
        batch = inputs["num_images"] if args.command == "sample" else len(inputs["images"])
        inputs["labels"] = _parse_labels(args.labels, batch)
    predict = grpc_predict if args.grpc else rest_predict
    outputs = predict(args.grpc or args.rest, args.name, signature, inputs, args.version, timeout=args.timeout)
    if "images" in outputs:
        make_parent_directory(args.out, "--out")
        np.save(args.out, outputs["images"])
        print(f"{outputs['images'].shape[0]} images {outputs['images'].shape[1:]} written to {args.out}")
    else:
        for index, (nats, bits) in enumerate(zip(outputs["nll_nats"], outputs["bits_per_dim"])):
            print(f"image {index}: {nats:.2f} nats, {bits:.4f} bits/dim")


if __name__ == "__main__":
    run_cli(main)
