"""Requests to TensorFlow Serving running an export of `python -m export.saved_model`.

    python -m export.client --name pixelcnn sample --num-images 4 --seed 0 --out samples.npy
    python -m export.client --name pixelcnn log-likelihood --images images.npy
    python -m export.client --name pixelcnn --grpc localhost:8500 complete --images x.npy --known-rows 14

REST (`--rest`, default localhost:8501) posts `{"signature_name": ..., "inputs": {...}}` to
`/v1/models/<name>[/versions/<v>]:predict`; gRPC (`--grpc HOST:PORT`) sends a tensorflow-serving-api
`PredictRequest`. Both take numpy inputs and return a dict of numpy outputs.
"""

import argparse
import json
import urllib.error
import urllib.request

import numpy as np

from export.saved_model import SIGNATURE_INPUTS
from training.cli import RunError, run_cli


def _as_inputs(signature, inputs):
    """`inputs` as numpy arrays of the signature's dtypes; an error names a missing or extra input."""
    if signature not in SIGNATURE_INPUTS:
        raise ValueError(f"unknown signature {signature!r}; expected one of {', '.join(SIGNATURE_INPUTS)}")
    expected = SIGNATURE_INPUTS[signature]
    if set(inputs) != set(expected):
        raise ValueError(f"signature {signature} takes inputs {sorted(expected)}; received {sorted(inputs)}")
    return {key: np.asarray(inputs[key]).astype(dtype) for key, (dtype, _) in expected.items()}


def rest_request(name, signature, inputs, version=None):
    """(URL path, JSON body) of a REST `:predict` request in the columnar ("inputs") format."""
    path = f"/v1/models/{name}" + (f"/versions/{version}" if version else "") + ":predict"
    body = {"signature_name": signature,
            "inputs": {key: value.tolist() for key, value in _as_inputs(signature, inputs).items()}}
    return path, body


def rest_predict(host, name, signature, inputs, version=None, timeout=600):
    """POST a `:predict` request to `host` (e.g. localhost:8501); returns {output name: array}."""
    path, body = rest_request(name, signature, inputs, version)
    request = urllib.request.Request(f"http://{host}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            outputs = json.loads(response.read())["outputs"]
    except urllib.error.HTTPError as error:  # Serving puts the graph's assert message in "error"
        raise RunError(f"{host} refused the request: {json.loads(error.read()).get('error', error.reason)}") from None
    except urllib.error.URLError as error:
        raise RunError(f"cannot reach TensorFlow Serving at {host}: {error.reason}") from None
    # A signature with one output answers with that output's value alone.
    return {key: np.asarray(value) for key, value in outputs.items()} if isinstance(outputs, dict) else \
        {"images": np.asarray(outputs)}


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

    with grpc.insecure_channel(host) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(grpc_request(name, signature, inputs, version), timeout=timeout)
        except grpc.RpcError as error:
            raise RunError(f"{host} refused the request: {error.details()}") from None
    return {key: tf.make_ndarray(value) for key, value in response.outputs.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m export.client", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="model name the server was started with")
    parser.add_argument("--version", type=int, default=None, help="model version (default: the server's latest)")
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--rest", default="localhost:8501", help="REST host:port")
    transport.add_argument("--grpc", default=None, help="gRPC host:port (instead of REST)")
    commands = parser.add_subparsers(dest="command", required=True)
    likelihood = commands.add_parser("log-likelihood", help="per-image log p, NLL and bits/dim")
    likelihood.add_argument("--images", required=True, help=".npy of integer images [batch, H, W, C]")
    draw = commands.add_parser("sample", help="draw new images")
    draw.add_argument("--num-images", type=int, default=4)
    draw.add_argument("--seed", type=int, default=0)
    draw.add_argument("--temperature", type=float, default=None)
    draw.add_argument("--out", default="samples.npy", help=".npy for the uint8 images")
    fill = commands.add_parser("complete", help="keep the top rows of images, sample the rest")
    fill.add_argument("--images", required=True, help=".npy of integer images [batch, H, W, C]")
    fill.add_argument("--known-rows", type=int, required=True, help="rows kept from the top")
    fill.add_argument("--seed", type=int, default=0)
    fill.add_argument("--out", default="completions.npy", help=".npy for the uint8 images")
    args = parser.parse_args(argv)

    if args.command == "sample":
        signature = "sample" if args.temperature is None else "sample_with_temperature"
        inputs = {"num_images": args.num_images, "seed": args.seed}
        if args.temperature is not None:
            inputs["temperature"] = args.temperature
    else:
        images = np.load(args.images)
        if args.command == "log-likelihood":
            signature, inputs = "log_likelihood", {"images": images}
        else:
            known = np.zeros(images.shape, bool)
            known[:, :args.known_rows] = True
            signature, inputs = "complete", {"images": images, "known_mask": known, "seed": args.seed}
    predict = grpc_predict if args.grpc else rest_predict
    outputs = predict(args.grpc or args.rest, args.name, signature, inputs, args.version)
    if "images" in outputs:
        np.save(args.out, outputs["images"])
        print(f"{outputs['images'].shape[0]} images {outputs['images'].shape[1:]} written to {args.out}")
    else:
        for index, (nats, bits) in enumerate(zip(outputs["nll_nats"], outputs["bits_per_dim"])):
            print(f"image {index}: {nats:.2f} nats, {bits:.4f} bits/dim")


if __name__ == "__main__":
    run_cli(main)
