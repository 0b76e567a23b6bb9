"""SavedModel export for TensorFlow Serving: signatures, self-containment, errors, clients."""

import http.server
import json
import os
import pathlib
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import pixel_keras as pk
from export import client
from export.saved_model import main as export_main
from export.saved_model import version_directory
from pixel_keras.data import load_digits
from pixel_keras.cli import RunError
from tests.tiers import slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAVED_MODEL_CLI = pathlib.Path(sys.executable).parent / "saved_model_cli"


@pytest.fixture(scope="module")
def digits():
    (_, test), levels = load_digits()
    return test[:12].astype(np.int32), levels


@pytest.fixture(scope="module", params=pk.arch_names())
def exported(request, tmp_path_factory, digits):
    """(arch, export dir, model) for a small model of each arch on 8 x 8 digits, exported by the CLI."""
    images, levels = digits
    keras.utils.set_random_seed(0)
    model = pk.build_model(request.param, images.shape[1:], levels, num_layers=2, hidden=8)
    folder = tmp_path_factory.mktemp(request.param)
    model.save(folder / "model.keras")
    export_main(["--run-dir", str(folder / "model.keras"), "--out", str(folder / "models"), "--name", "digits"])
    return request.param, folder / "models" / "digits" / "1", model


@slow
def test_export_serves_exact_likelihoods_samples_and_errors_without_our_code(exported, digits, tmp_path):
    _, export_dir, model = exported
    images, levels = digits
    expected = tmp_path / "expected.npz"
    np.savez(expected, images=images, log_prob=pk.log_prob(model, images), num_levels=levels)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "serving_check.py"), str(export_dir), str(expected)],
                          cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "serving checks passed" in done.stdout


@slow
def test_saved_model_cli_shows_signatures_and_runs_log_likelihood(exported, digits, tmp_path):
    arch, export_dir, model = exported
    if arch != "pixelcnn":
        pytest.skip("TensorFlow's loader is exercised once; the other archs go through the same code")
    images, _ = digits
    shown = subprocess.run([str(SAVED_MODEL_CLI), "show", "--dir", str(export_dir), "--all"],
                           capture_output=True, text=True, check=True).stdout
    for name in ("log_likelihood", "serving_default", "sample", "sample_with_temperature", "complete"):
        assert f"signature_def['{name}']" in shown
    sample_section = shown.split("signature_def['sample']")[1].split("signature_def[")[0]
    assert "inputs['num_images'] tensor_info:\n        dtype: DT_INT32\n        shape: unknown_rank" in sample_section
    height, width, channels = images.shape[1:]
    assert (f"outputs['images'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, {height}, {width}, "
            f"{channels})") in sample_section
    assert "dtype: DT_BOOL" in shown.split("signature_def['complete']")[1]

    np.save(tmp_path / "images.npy", images)
    subprocess.run([str(SAVED_MODEL_CLI), "run", "--dir", str(export_dir), "--tag_set", "serve",
                    "--signature_def", "log_likelihood", "--inputs", f"images={tmp_path / 'images.npy'}",
                    "--outdir", str(tmp_path / "out")], capture_output=True, text=True, check=True)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "log_prob.npy"), pk.log_prob(model, images), rtol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "bits_per_dim.npy"), pk.bits_per_dim(model, images),
                               rtol=1e-5)


def test_versions_count_up_and_are_never_overwritten_unless_asked(tmp_path):
    assert version_directory(tmp_path, "m") == tmp_path / "m" / "1"
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "7").mkdir()
    (tmp_path / "m" / ".staging-8-1").mkdir()
    assert version_directory(tmp_path, "m") == tmp_path / "m" / "8"
    with pytest.raises(RunError, match="exists; choose another --version or pass --overwrite"):
        version_directory(tmp_path, "m", 7)
    assert version_directory(tmp_path, "m", 7, overwrite=True) == tmp_path / "m" / "7"
    with pytest.raises(RunError, match="positive integer"):
        version_directory(tmp_path, "m", 0)


@slow
def test_export_cli_errors_are_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "export.saved_model", "--run-dir", str(tmp_path / "none"),
                           "--out", str(tmp_path), "--name", "m"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: no model at")


class _FakeRestServing(http.server.BaseHTTPRequestHandler):
    """Answers `:predict` as TensorFlow Serving's REST API does, from a loaded SavedModel."""

    loaded = None

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        signature = self.loaded.signatures[body["signature_name"]]
        specs = signature.structured_input_signature[1]
        try:
            outputs = signature(**{key: tf.constant(value, specs[key].dtype) for key, value in body["inputs"].items()})
            status, answer = 200, {key: value.numpy().tolist() for key, value in outputs.items()}
            answer = {"outputs": answer if len(answer) > 1 else next(iter(answer.values()))}
        except tf.errors.InvalidArgumentError as error:
            status, answer = 400, {"error": error.message}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@slow
def test_rest_client_requests_match_the_serving_api(exported, digits):
    arch, export_dir, model = exported
    if arch != "pixelcnn":
        pytest.skip("the client does not depend on the arch")
    images, levels = digits
    path, body = client.rest_request("digits", "complete", {"images": images[:1], "known_mask": images[:1] > 3,
                                                            "seed": 2}, version=3)
    assert path == "/v1/models/digits/versions/3:predict"
    assert body["signature_name"] == "complete" and isinstance(body["inputs"]["known_mask"][0][0][0][0], bool)
    with pytest.raises(ValueError, match="takes inputs"):
        client.rest_request("digits", "sample", {"num_images": 1})

    _FakeRestServing.loaded = tf.saved_model.load(str(export_dir))
    server = http.server.HTTPServer(("127.0.0.1", 0), _FakeRestServing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_port}"
    try:
        outputs = client.rest_predict(host, "digits", "log_likelihood", {"images": images})
        np.testing.assert_allclose(outputs["bits_per_dim"], pk.bits_per_dim(model, images), rtol=1e-5)
        drawn = client.rest_predict(host, "digits", "sample", {"num_images": 2, "seed": 4})["images"]
        assert drawn.shape == (2,) + images.shape[1:] and drawn.max() < levels and drawn.dtype == np.uint8
        with pytest.raises(RunError, match="pixel values must be in"):
            client.rest_predict(host, "digits", "log_likelihood", {"images": images + levels})
    finally:
        server.shutdown()


@slow
def test_grpc_client_round_trip(exported, digits):
    arch, export_dir, model = exported
    if arch != "pixelcnn":
        pytest.skip("the client does not depend on the arch")
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    images, _ = digits
    request = client.grpc_request("digits", "log_likelihood", {"images": images}, version=2)
    assert (request.model_spec.name, request.model_spec.signature_name, request.model_spec.version.value) == \
        ("digits", "log_likelihood", 2)
    assert request.inputs["images"].dtype == tf.int32.as_datatype_enum
    loaded = tf.saved_model.load(str(export_dir))

    class FakeGrpcServing(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802 (the service's name)
            signature = loaded.signatures[request.model_spec.signature_name]
            outputs = signature(**{key: tf.constant(tf.make_ndarray(value)) for key, value in request.inputs.items()})
            response = predict_pb2.PredictResponse()
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(FakeGrpcServing(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        outputs = client.grpc_predict(f"127.0.0.1:{port}", "digits", "log_likelihood", {"images": images})
        np.testing.assert_allclose(outputs["log_prob"], pk.log_prob(model, images), rtol=1e-5)
        drawn = client.grpc_predict(f"127.0.0.1:{port}", "digits", "sample", {"num_images": 2, "seed": 4})
        assert drawn["images"].dtype == np.uint8 and drawn["images"].shape == (2,) + images.shape[1:]
    finally:
        server.stop(None)


class _ScriptedServer(http.server.BaseHTTPRequestHandler):
    """Answers every request with `reply` = (status, body bytes, seconds to wait first)."""

    reply = (200, b"{}", 0.0)
    last_body = None

    def do_POST(self):  # noqa: N802 (http.server's name)
        _ScriptedServer.last_body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status, payload, delay = self.reply
        threading.Event().wait(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (the timeout test)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_server():
    """(host, set_reply) of a local HTTP server whose answer the test chooses."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def set_reply(status, payload, delay=0.0):
        _ScriptedServer.reply = (status, payload, delay)

    yield f"127.0.0.1:{server.server_port}", set_reply
    server.shutdown()


@pytest.mark.parametrize("build", [client.rest_request, client.grpc_request])
def test_client_refuses_what_it_would_truncate(build):
    images = np.ones((1, 2, 2, 1), np.int64)
    with pytest.raises(ValueError, match="Expected integer images. Received images of dtype float64"):
        build("m", "log_likelihood", {"images": images * 0.7})
    with pytest.raises(ValueError, match=r"within int32 .* Received values in \[4294967299, 4294967299\]"):
        build("m", "log_likelihood", {"images": images * (2**32 + 3)})
    with pytest.raises(ValueError, match="Received images of dtype bool"):
        build("m", "log_likelihood", {"images": images > 0})
    with pytest.raises(ValueError, match=r"Expected known_mask of dtype bool \(True where the value is known\). Received known_mask of dtype int64"):
        build("m", "complete", {"images": images, "known_mask": images, "seed": 0})
    with pytest.raises(ValueError, match=r"Expected images of rank 4. Received shape \(2, 2, 1\)"):
        build("m", "log_likelihood", {"images": images[0]})
    with pytest.raises(ValueError, match="Expected integer seed"):
        build("m", "sample", {"num_images": 1, "seed": 0.5})


def test_rest_client_errors_are_one_line_and_images_uint8(scripted_server):
    host, set_reply = scripted_server
    set_reply(200, json.dumps({"outputs": [[[[3]], [[255]]]]}).encode())
    drawn = client.rest_predict(host, "m", "sample", {"num_images": 1, "seed": 0})["images"]
    assert drawn.dtype == np.uint8 and drawn.tolist() == [[[[3]], [[255]]]]
    set_reply(502, b"<html>Bad Gateway</html>\nproxy details")
    with pytest.raises(RunError, match=r"refused the request: HTTP 502 Bad Gateway: <html>Bad Gateway</html>$"):
        client.rest_predict(host, "m", "sample", {"num_images": 1, "seed": 0})
    set_reply(200, b"not json")
    with pytest.raises(RunError, match="did not answer with JSON outputs: HTTP 200 OK: not json"):
        client.rest_predict(host, "m", "sample", {"num_images": 1, "seed": 0})
    set_reply(200, b"{}", delay=2.0)
    with pytest.raises(RunError, match=r"^no answer from 127.0.0.1:\d+ within 0.3 s"):
        client.rest_predict(host, "m", "sample", {"num_images": 1, "seed": 0}, timeout=0.3)


def test_client_cli_saves_uint8_and_validates_known_rows(scripted_server, tmp_path, capsys):
    host, set_reply = scripted_server
    np.save(tmp_path / "images.npy", np.zeros((2, 3, 2, 1), np.uint8))
    set_reply(200, json.dumps({"outputs": np.full((2, 3, 2, 1), 7).tolist()}).encode())
    base = ["--name", "m", "--rest", host, "complete", "--images", str(tmp_path / "images.npy")]
    client.main(base + ["--known-rows", "3", "--out", str(tmp_path / "out.npy")])
    saved = np.load(tmp_path / "out.npy")
    assert saved.dtype == np.uint8 and saved.shape == (2, 3, 2, 1) and (saved == 7).all()
    for rows in ("4", "-1"):
        with pytest.raises(RunError, match=rf"--known-rows must be in \[0, 3\] \(the image height\); received {rows}"):
            client.main(base + ["--known-rows", rows])
    np.save(tmp_path / "flat.npy", np.zeros((3, 2), np.uint8))
    with pytest.raises(RunError, match=r"received shape \(3, 2\)"):
        client.main(["--name", "m", "--rest", host, "complete", "--images", str(tmp_path / "flat.npy"),
                     "--known-rows", "1"])
    with pytest.raises(RunError, match="cannot read --images"):
        client.main(["--name", "m", "--rest", host, "log-likelihood", "--images", str(tmp_path / "none.npy")])


def test_grpc_client_timeout_is_one_line():
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    class SlowServing(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802 (the service's name)
            threading.Event().wait(1.0)
            context.abort(grpc.StatusCode.INTERNAL, "too late")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(SlowServing(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(RunError, match=r"^no answer from 127.0.0.1:\d+ within 0.2 s"):
            client.grpc_predict(f"127.0.0.1:{port}", "m", "sample", {"num_images": 1, "seed": 0}, timeout=0.2)
    finally:
        server.stop(None)


def test_client_sends_labels_to_a_conditional_export(scripted_server, tmp_path):
    host, set_reply = scripted_server
    set_reply(200, json.dumps({"outputs": np.zeros((3, 2, 2, 1)).tolist()}).encode())
    client.main(["--name", "m", "--rest", host, "--labels", "4", "sample", "--num-images", "3",
                 "--out", str(tmp_path / "s.npy")])
    assert _ScriptedServer.last_body["inputs"]["labels"] == [4, 4, 4]
    client.main(["--name", "m", "--rest", host, "--labels", "0,2,1", "sample", "--num-images", "3",
                 "--out", str(tmp_path / "s.npy")])
    assert _ScriptedServer.last_body["inputs"]["labels"] == [0, 2, 1]
    with pytest.raises(RunError, match="--labels gives 2 labels for 3 images"):
        client.main(["--name", "m", "--rest", host, "--labels", "0,2", "sample", "--num-images", "3"])
    with pytest.raises(RunError, match="--labels must be integers"):
        client.main(["--name", "m", "--rest", host, "--labels", "cat", "sample", "--num-images", "3"])
    with pytest.raises(ValueError, match=r"Expected labels of rank 1"):
        client.rest_request("m", "sample", {"num_images": 1, "seed": 0, "labels": 3})
