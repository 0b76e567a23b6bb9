"""pixel_keras.codec: lossless round trips, size against the model's NLL, clear errors."""

import io
import pathlib
import re
import struct
import zlib

import keras
import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras import codec
from pixel_keras.codec import cli
from pixel_keras.cli import run_cli
from pixel_keras.data import load_digits
from tests.tiers import slow, slow_except

FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")
DATA = pathlib.Path(__file__).parent / "data"
MAX_OVERHEAD_BYTES = 16  # format 3, sides below 128: 11 bytes of header, at most 5 of the coder's flush


def nll_bits(model, images, labels=None):
    return -np.asarray(pk.log_prob(model, images, labels=labels), np.float64) / np.log(2.0)


def check_size(model, images, blobs, labels=None):
    """Within 1% of the NLL in bits plus the fixed overhead, summed; and never far below the NLL."""
    total_bits = 8.0 * sum(len(blob) for blob in blobs)
    nll = nll_bits(model, images, labels).sum()
    assert total_bits <= 1.01 * nll + 8 * MAX_OVERHEAD_BYTES * len(images), (total_bits, nll)
    assert total_bits >= 0.99 * nll, (total_bits, nll)  # a blob far below -log2 p(x) cannot be decodable
    return total_bits - nll


def traces(coder, size=None):
    """How often each stage's step was traced (compiled) at `size` (default: the model's); None on
    PyTorch, which runs it eagerly."""
    if keras.backend.backend() == "torch":
        return None
    return [stage.advance_traces for stage in (coder.stages if size is None else coder.stages_at(*size))]


def random_images(shape, levels, count, seed=0):
    return np.random.default_rng(seed).integers(0, levels, (count,) + shape)


def test_frequencies_are_exact_and_nonzero():
    probabilities = np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25000003], [0.1, 0.2, 0.3, 0.4]], np.float32)
    table = codec.frequencies(probabilities)
    assert (table >= 1).all() and (table == np.floor(table)).all()
    np.testing.assert_array_equal(table.sum(axis=-1), 2.0**codec.PRECISION_BITS)


def test_dropped_trailing_zero_bytes_decode():
    """The payload drops the coder's trailing zero bytes (whole zero words too): the range decoder
    must read them back as zeros. Rare with a model (1 blob in 256), so searched for directly."""
    import constriction

    rng, family, seen = np.random.default_rng(0), constriction.stream.model.Categorical(perfect=False), set()
    for _ in range(20000):
        probabilities = rng.dirichlet(np.full(4, 0.3), int(rng.integers(1, 6))).astype(np.float32)
        symbols = np.array([rng.choice(4, p=row / row.sum()) for row in probabilities.astype(np.float64)], np.int32)
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode(symbols, family, codec.frequencies(probabilities))
        words = encoder.get_compressed()
        dropped = 4 * len(words) - len(codec.pack_words(words))
        if dropped == 0 or min(dropped, 4) in seen:
            continue
        seen.add(min(dropped, 4))
        decoder = constriction.stream.queue.RangeDecoder(codec.unpack_words(codec.pack_words(words)))
        decoded = [decoder.decode(constriction.stream.model.Categorical(row, perfect=False))
                   for row in codec.frequencies(probabilities)]
        np.testing.assert_array_equal(decoded, symbols)
        assert decoder.maybe_exhausted()
        if {1, 2, 4} <= seen:  # (the coder's flush never ends in exactly 3 zero bytes)
            return
    pytest.fail(f"found trailing zero runs of only {sorted(seen)} bytes")


@slow
def test_digits_round_trip_and_overhead():
    (_, test), levels = load_digits()
    model = pk.build_model("pixelcnn", (8, 8, 1), levels, num_layers=1, hidden=8)
    images = test[:3].astype(np.int32)
    blobs = codec.compress(model, images)
    np.testing.assert_array_equal(codec.decompress(model, blobs), images)
    overhead_bits = check_size(model, images, blobs)
    assert overhead_bits / len(images) <= 8 * MAX_OVERHEAD_BYTES


@pytest.mark.skipif(not FASHION_MNIST.exists(), reason="Fashion-MNIST (dataset-fashion-mnist) not installed")
@slow
def test_fashion_mnist_round_trip_within_one_percent_of_nll():
    test = pk.data.load_dataset("fashion_mnist").test
    images = np.stack([image for image in test.take(2).as_numpy_iterator()]).astype(np.int32)
    model = pk.build_model("pixelcnn", (28, 28, 1), 256, num_layers=1, hidden=8)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=pk.NegativeLogLikelihood())
    model.fit(images, images, epochs=15, batch_size=2, verbose=0)  # peaked conditionals, not uniform
    blobs = codec.compress(model, images)
    np.testing.assert_array_equal(codec.decompress(model, blobs), images)
    check_size(model, images, blobs)
    assert nll_bits(model, images).mean() < 7.0 * 28 * 28  # the fit moved away from uniform (8 bits/dim)


# (shape, levels) of the round trip of each arch: every kind among the built-ins; another arch (a
# registered one) RGB with 8 levels.
ROUND_TRIP_KINDS = {
    "gated_pixelcnn": ((3, 3, 3), 16),   # RGB
    "row_lstm": ((4, 4, 1), 2),          # binary (Bernoulli head)
    "diagonal_bilstm": ((2, 3, 3), 8),
    "spatial_lstm": ((3, 3, 1), 256),
}


@pytest.mark.parametrize("arch", pk.arch_names())
def test_round_trip_every_kind(arch):
    shape, levels = ROUND_TRIP_KINDS.get(arch, ((2, 3, 3), 8))
    model = pk.build_model(arch, shape, levels, num_layers=1, hidden=4)
    images = random_images(shape, levels, 2)
    blobs = codec.compress(model, images)
    np.testing.assert_array_equal(codec.decompress(model, blobs), images)
    check_size(model, images, blobs)
    # Encoder and decoder ran one and the same traced graph (a retrace could compute other floats).
    assert traces(codec.codec_for(model)) in ([1], None)


def test_conditional_model_round_trip_needs_the_labels():
    model = pk.build_model("pixelcnn", (3, 3, 3), 8, num_layers=1, hidden=4, num_classes=3)
    images, labels = random_images((3, 3, 3), 8, 2), np.array([2, 0])
    blobs = codec.compress(model, images, labels)
    np.testing.assert_array_equal(codec.decompress(model, blobs, labels), images)
    check_size(model, images, blobs, labels)
    with pytest.raises(ValueError, match="class-conditional"):
        codec.decompress(model, blobs)


@pytest.fixture(scope="module")
def small():
    """A tiny model, two images and their blobs."""
    keras.utils.set_random_seed(7)
    model = pk.build_model("pixelcnn", (2, 3, 1), 16, num_layers=1, hidden=4)
    images = random_images((2, 3, 1), 16, 2, seed=3)
    return model, images, codec.compress(model, images)


def test_another_models_weights_are_refused(small):
    model, images, blobs = small
    other = pk.build_model("pixelcnn", (2, 3, 1), 16, num_layers=1, hidden=4)
    with pytest.raises(codec.CodecError, match="another model"):
        codec.decompress(other, blobs)


def test_drifted_decoder_raises(small, monkeypatch):
    """A decoder whose distributions differ (simulated: other weights behind the same fingerprint)
    fails the pixel checksum instead of returning a wrong image."""
    model, images, blobs = small
    other = pk.build_model("pixelcnn", (2, 3, 1), 16, num_layers=1, hidden=4)
    other_codec = codec.Codec(other)
    monkeypatch.setattr(other_codec, "fingerprint", blobs[0][1:5])
    with pytest.raises(codec.CodecError, match="checksum|corrupted"):
        other_codec.decompress(blobs)


@slow
def test_truncated_and_corrupted_blobs_never_give_a_wrong_image(small):
    """Every cut, flipped bit pattern and appended byte is refused: a decoded image must re-encode
    to the blob's payload exactly (format 3) and match its 32-bit checksum."""
    model, images, blobs = small
    blob, header = blobs[0], codec.FIXED_HEADER_BYTES + 2  # sides below 128: one size byte each
    variants = [blob[:cut] for cut in range(len(blob))]
    variants += [blob[:i] + bytes([blob[i] ^ flip]) + blob[i + 1:]
                 for i in range(len(blob)) for flip in (1, 0x10, 0x80)]
    for variant in variants:
        with pytest.raises(codec.CodecError):
            codec.decompress(model, [variant])
    for cut in range(header + 1):  # header and the first payload byte
        with pytest.raises(codec.CodecError, match="truncated|empty"):
            codec.decompress(model, [blob[:cut]])


def test_trailing_bytes_are_refused(small):
    """Bytes appended to a blob (zeros too, which the range decoder would read as padding) are not
    part of it: refused, never decoded as if they were."""
    model, images, blobs = small
    np.testing.assert_array_equal(codec.decompress(model, blobs[:1]), images[:1])
    for tail in (b"\0", b"\0\0\0\0", b"\x01", b"garbage"):
        with pytest.raises(codec.CodecError, match="bytes added"):
            codec.decompress(model, [blobs[0] + tail])


def test_bad_arguments_are_value_errors(small):
    model, images, blobs = small
    with pytest.raises(ValueError, match="list of blobs"):
        codec.decompress(model, blobs[0])
    with pytest.raises(ValueError, match="dtype float"):
        codec.compress(model, images.astype(np.float32))
    with pytest.raises(ValueError, match="unconditional"):
        codec.compress(model, images, labels=[0, 1])
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        codec.compress(model, images + 16)


def write_png(path, image):
    from PIL import Image

    array = np.asarray(image, np.uint8)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


def read_png(path):
    from PIL import Image

    with Image.open(path) as image:
        array = np.asarray(image).astype(np.int32)
    return array[..., None] if array.ndim == 2 else array


def cli_error(capsys, argv):
    """The one line a refused command prints (exit status 2)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        run_cli(cli.main, argv)
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    return error.strip()


def cli_failures(capsys, argv):
    """(the lines naming failed files, the error line) of a folder run with failures (exit 2)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        run_cli(cli.main, argv)
    assert stopped.value.code == 2
    *listed, error = capsys.readouterr().err.splitlines()
    assert error.startswith("error: ") and not any(line.startswith("error: ") for line in listed), listed
    return listed, error


@slow
def test_cli_folder_and_file_through_a_keras_file(small, tmp_path, capsys):
    model, images, blobs = small
    model.save(tmp_path / "model.keras")
    (tmp_path / "in").mkdir()
    for number, image in enumerate(images):
        write_png(tmp_path / "in" / f"img{number}.png", image)
    arguments = ["--model", str(tmp_path / "model.keras")]
    assert cli.main(["compress", *arguments, str(tmp_path / "in"), str(tmp_path / "blobs")]) == 0
    assert sorted(path.name for path in (tmp_path / "blobs").iterdir()) == ["img0.pkc", "img1.pkc"]
    assert (tmp_path / "blobs" / "img0.pkc").read_bytes() == blobs[0]  # the loaded model: same blob
    assert cli.main(["decompress", *arguments, str(tmp_path / "blobs"), str(tmp_path / "out")]) == 0
    for number, image in enumerate(images):
        np.testing.assert_array_equal(read_png(tmp_path / "out" / f"img{number}.png"), image)
    assert cli.main(["decompress", *arguments, str(tmp_path / "blobs" / "img1.pkc"), str(tmp_path / "one.png")]) == 0
    np.testing.assert_array_equal(read_png(tmp_path / "one.png"), images[1])
    wide = random_images((5, 9, 1), 16, 1, seed=4)[0]  # another size than the model's 2 x 3
    write_png(tmp_path / "in" / "wide.png", wide)
    assert cli.main(["compress", *arguments, str(tmp_path / "in" / "wide.png"), str(tmp_path / "blobs")]) == 0
    assert cli.main(["decompress", *arguments, str(tmp_path / "blobs" / "wide.pkc"), str(tmp_path / "out")]) == 0
    np.testing.assert_array_equal(read_png(tmp_path / "out" / "wide.png"), wide)
    error = cli_error(capsys, ["decompress", *arguments, "--max-pixels", "44", str(tmp_path / "blobs" / "wide.pkc"),
                               str(tmp_path / "out" / "again.png")])
    assert "wide.pkc" in error and "5 x 9 = 45 pixels, over the limit of 44" in error
    (tmp_path / "bad.pkc").write_bytes(blobs[0][:3])
    error = cli_error(capsys, ["decompress", *arguments, str(tmp_path / "bad.pkc"), str(tmp_path / "bad.png")])
    assert "bad.pkc" in error and "truncated" in error
    assert not (tmp_path / "bad.png").exists()


@slow
def test_cli_codes_the_pixels_a_viewer_shows(tmp_path, capsys):
    """Palette, 1-bit, opaque grey+alpha, grey-looking RGB and EXIF-turned files code the values
    they show (not palette indices, not {0, 1}); what cannot be coded exactly is refused by name,
    one line."""
    from PIL import Image, ImageOps

    keras.utils.set_random_seed(4)
    pk.build_model("pixelcnn", (6, 6, 1), 256, num_layers=1, hidden=4).save(tmp_path / "model.keras")
    rng = np.random.default_rng(8)
    grey = rng.integers(0, 256, (6, 6), dtype=np.uint8)
    colour = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(grey).convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=16).save(tmp_path / "in/p.png")
    Image.fromarray(grey).convert("1").save(tmp_path / "in/bits.png")
    Image.fromarray(np.stack([grey, np.full_like(grey, 255)], -1), "LA").save(tmp_path / "in/la.png")
    Image.fromarray(np.repeat(grey[..., None], 3, -1)).save(tmp_path / "in/rgb_grey.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter turn
    Image.fromarray(grey).save(tmp_path / "in/turned.png", exif=exif)
    arguments = ["--model", str(tmp_path / "model.keras")]
    assert cli.main(["compress", *arguments, str(tmp_path / "in"), str(tmp_path / "blobs")]) == 0
    assert cli.main(["decompress", *arguments, str(tmp_path / "blobs"), str(tmp_path / "out")]) == 0
    for name in ("p", "bits", "la", "rgb_grey", "turned"):
        with Image.open(tmp_path / "in" / f"{name}.png") as image:
            shown = np.asarray(ImageOps.exif_transpose(image).convert("RGBA"))[..., :1].astype(np.int32)
        np.testing.assert_array_equal(read_png(tmp_path / "out" / f"{name}.png"), shown, err_msg=name)
    assert set(np.unique(read_png(tmp_path / "out" / "bits.png"))) == {0, 255}
    assert len(np.unique(read_png(tmp_path / "out" / "p.png"))) > 2  # palette colours, not indices 0 .. 15
    np.testing.assert_array_equal(read_png(tmp_path / "out" / "turned.png")[..., 0], np.rot90(grey, -1))

    refused = {"alpha.png": "transparency", "colour.png": "colour image", "deep.png": "16-bit"}
    (tmp_path / "bad").mkdir()
    Image.fromarray(np.dstack([colour[..., :1].repeat(3, -1), np.full_like(grey, 128)]), "RGBA").save(
        tmp_path / "bad/alpha.png")
    Image.fromarray(colour).save(tmp_path / "bad/colour.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "bad/deep.png")
    write_png(tmp_path / "bad" / "fine.png", grey[..., None])
    listed, error = cli_failures(capsys, ["compress", *arguments, str(tmp_path / "bad"), str(tmp_path / "bad_blobs")])
    assert error == "error: 3 of 4 files not compressed (the others were), listed above", error
    assert len(listed) == 3
    for (name, reason), line in zip(sorted(refused.items()), listed):  # one line per file, in name order
        assert re.fullmatch(rf"\S*bad/{name}: .*{reason}.*", line), (name, line)
    assert sorted(path.name for path in (tmp_path / "bad_blobs").iterdir()) == ["fine.pkc"]


def test_cli_refuses_outputs_that_collide_up_to_case(small, tmp_path, capsys):
    """img.png and img.PNG would both become img.pkc: refused before anything is written."""
    model, images, _ = small
    model.save(tmp_path / "model.keras")
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "img.png", images[0])
    write_png(tmp_path / "in" / "img.PNG", images[1])
    error = cli_error(capsys, ["compress", "--model", str(tmp_path / "model.keras"), str(tmp_path / "in"),
                               str(tmp_path / "blobs")])
    assert "img.PNG" in error and "img.png" in error and "case" in error
    assert not (tmp_path / "blobs").exists() or not list((tmp_path / "blobs").iterdir())


@slow
def test_cli_never_overwrites_unasked_and_leaves_nothing_partial(small, tmp_path, capsys):
    model, images, blobs = small
    model.save(tmp_path / "model.keras")
    arguments = ["--model", str(tmp_path / "model.keras")]
    folder = tmp_path / "pictures"
    folder.mkdir()
    for number, image in enumerate(images):
        write_png(folder / f"img{number}.png", image)
    originals = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert cli.main(["compress", *arguments, str(folder), str(folder)]) == 0  # NAME.pkc beside NAME.png
    error = cli_error(capsys, ["decompress", *arguments, str(folder), str(folder)])  # would replace the PNGs
    assert "exists" in error and "--overwrite" in error
    assert {name: (folder / name).read_bytes() for name in originals} == originals
    error = cli_error(capsys, ["compress", *arguments, str(folder / "img0.png"), str(folder / "img1.pkc")])
    assert "img1.pkc exists" in error
    assert (folder / "img1.pkc").read_bytes() == blobs[1]
    # --overwrite replaces; a folder run with one bad blob codes the others and names it, exit 2.
    (folder / "img0.pkc").write_bytes(blobs[0][:-1] + bytes([blobs[0][-1] ^ 0x40]))
    listed, error = cli_failures(capsys, ["decompress", *arguments, "--overwrite", str(folder), str(tmp_path / "out")])
    assert error == "error: 1 of 2 files not decompressed (the others were), listed above", error
    assert len(listed) == 1 and re.fullmatch(r"\S*img0\.pkc: .*corrupted.*", listed[0]), listed
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["img1.png"]  # no partial, no temp file
    np.testing.assert_array_equal(read_png(tmp_path / "out" / "img1.png"), images[1])
    (tmp_path / "out" / "img1.png").write_bytes(b"old")
    assert cli.main(["decompress", *arguments, "--overwrite", str(folder / "img1.pkc"),
                     str(tmp_path / "out" / "img1.png")]) == 0
    np.testing.assert_array_equal(read_png(tmp_path / "out" / "img1.png"), images[1])
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["img1.png"]


def test_write_atomically_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "blob.pkc"
    target.write_bytes(b"old")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cli.write_atomically(target, b"new contents", overwrite=True)
    assert target.read_bytes() == b"old" and [path.name for path in tmp_path.iterdir()] == ["blob.pkc"]


def test_the_old_command_line_module_warns_and_is_the_new_one(monkeypatch):
    """`pixel_keras.codec_cli` (the name before the codec became a package) still imports, with a
    DeprecationWarning naming the new module, and its names are `pixel_keras.codec.cli`'s."""
    import sys

    monkeypatch.delitem(sys.modules, "pixel_keras.codec_cli", raising=False)
    with pytest.warns(DeprecationWarning, match=r"pixel_keras\.codec\.cli") as caught:
        import pixel_keras.codec_cli as old
    assert caught[0].filename == __file__  # stacklevel 2: the warning names the importing line
    assert old.main is cli.main and old.write_atomically is cli.write_atomically


def png_header_of_size(path, width, height):
    """A PNG whose header says width x height (its data is a 1 x 1 image's): what PIL reads
    lazily, without decoding, and what a decoder would fail on."""
    import struct
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    path.write_bytes(bytes(data))


def test_cli_one_line_for_missing_folders_and_huge_images(small, tmp_path, capsys):
    model, images, blobs = small
    model.save(tmp_path / "model.keras")
    arguments = ["--model", str(tmp_path / "model.keras")]
    write_png(tmp_path / "img.png", images[0])
    nested = tmp_path / "new" / "folders"
    assert cli.main(["compress", *arguments, str(tmp_path / "img.png"), str(nested / "img.pkc")]) == 0
    assert cli.main(["decompress", *arguments, str(nested / "img.pkc"), str(nested / "more" / "img.png")]) == 0
    np.testing.assert_array_equal(read_png(nested / "more" / "img.png"), images[0])
    png_header_of_size(tmp_path / "bomb.png", 14000, 14000)
    error = cli_error(capsys, ["compress", *arguments, str(tmp_path / "bomb.png"), str(tmp_path / "bomb.pkc")])
    assert "bomb.png" in error and "too large" in error
    png_header_of_size(tmp_path / "big.png", 2000, 1000)  # refused from its header: decoding would fail otherwise
    error = cli_error(capsys, ["compress", *arguments, str(tmp_path / "big.png"), str(tmp_path / "big.pkc")])
    assert "big.png" in error and "1000 x 2000" in error
    assert not (tmp_path / "bomb.pkc").exists() and not (tmp_path / "big.pkc").exists()


def test_model_without_an_incremental_step_is_a_clear_error():
    inputs = keras.Input((2, 2, 1), dtype="int32", name="images")
    x = keras.layers.Conv2D(4, 3, padding="same")(keras.layers.Rescaling(1.0)(inputs))  # no rule: unmasked
    model = keras.Model(inputs, keras.layers.Reshape((2, 2, 1, 4))(x))
    with pytest.raises(ValueError, match="one sub-pixel at a time.*Conv2D"):
        codec.compress(model, np.zeros((1, 2, 2, 1), np.int32))


def coding_batches(images, fillers, slots):
    """Coding batches that put image k in slot slots[k], the other slots from `fillers`."""
    batches = []
    for number, slot in enumerate(slots):
        batch = fillers[number % len(fillers)].copy()
        batch[slot] = images[number]
        batches.append(batch)
    return batches


@pytest.mark.parametrize("arch", slow_except(pk.arch_names(),
                                             "pixelcnn"))
def test_probabilities_do_not_depend_on_the_batch(arch):
    """The float probabilities that code an image are bit-identical whatever else is in its coding
    batch and whatever its slot: what lets any blob decode alone or beside any others."""
    keras.utils.set_random_seed(1)
    model = pk.build_model(arch, (2, 3, 3), 8, num_layers=2, hidden=8)
    check_batch_independence(model, (2, 3, 3), 8)


@pytest.mark.parametrize("arch", ["pixelcnn", "gated_pixelcnn"])
@slow
def test_probabilities_do_not_depend_on_the_batch_at_another_size(arch):
    """The same at a size the model was not built for (other row widths: the Gated PixelCNN's row
    stage multiplies (16 W, k) matrices)."""
    keras.utils.set_random_seed(1)
    model = pk.build_model(arch, (2, 3, 3), 8, num_layers=2, hidden=8)
    check_batch_independence(model, (3, 7, 3), 8)


def check_batch_independence(model, shape, levels):
    batch = codec.CODING_BATCH
    coder = codec.codec_for(model)
    images = random_images(shape, levels, batch, seed=11)
    reference = coder.coding_probabilities(images)  # image k in slot k
    fillers = [np.zeros((batch,) + shape, np.int32), random_images(shape, levels, batch, seed=12)]
    slots = np.random.default_rng(13).permutation(batch)
    for number, other in enumerate(coding_batches(images, fillers, slots)):
        table = coder.coding_probabilities(other)[slots[number]]
        assert table.tobytes() == reference[number].tobytes(), (number, slots[number])
    assert len(np.unique(reference.reshape(batch, -1), axis=0)) == batch  # images that differ, floats that differ
    assert traces(coder, shape[:2]) in ([1] * len(coder.stages), None)


def test_multiscale_round_trip_and_size():
    """A multi-scale model codes the small image, then the rest given it (each value once)."""
    from pixel_keras.multiscale import build_multiscale_model

    keras.utils.set_random_seed(2)
    model = build_multiscale_model("pixelcnn", (4, 4, 1), 8, factor=2, num_layers=1, hidden=4)
    images = random_images((4, 4, 1), 8, 3, seed=5)
    coder = codec.codec_for(model)
    assert coder.coding_symbols(images).shape == (3, 16)  # 4 small values + 12 others: none twice
    blobs = codec.compress(model, images)
    np.testing.assert_array_equal(codec.decompress(model, blobs), images)
    np.testing.assert_array_equal(codec.decompress(model, blobs[2:]), images[2:])  # alone, another slot
    check_size(model, images, blobs)
    check_batch_independence(model, (4, 4, 1), 8)


def test_many_images_in_several_batches_decode_in_any_grouping():
    """More images than a coding batch: blobs decode together, alone, and in another order."""
    keras.utils.set_random_seed(3)
    model = pk.build_model("pixelcnn", (2, 2, 1), 4, num_layers=1, hidden=4)
    count = codec.CODING_BATCH + 3
    images = random_images((2, 2, 1), 4, count, seed=6)
    blobs = codec.compress(model, images)
    assert len(blobs) == count
    np.testing.assert_array_equal(codec.decompress(model, blobs), images)
    order = np.random.default_rng(4).permutation(count)
    np.testing.assert_array_equal(codec.decompress(model, [blobs[i] for i in order]), images[order])
    np.testing.assert_array_equal(codec.decompress(model, [blobs[-1]]), images[-1:])
    assert codec.compress(model, images[order[:5]]) == [blobs[i] for i in order[:5]]  # the blob is the image's alone


@pytest.mark.skipif(not FASHION_MNIST.exists(), reason="Fashion-MNIST (dataset-fashion-mnist) not installed")
@slow
def test_compression_benchmark_runs_on_one_image(tmp_path, capsys):
    from benchmarks import compression

    pk.build_model("pixelcnn", (28, 28, 1), 256, num_layers=1, hidden=4).save(tmp_path / "model.keras")
    assert compression.main(["--model", str(tmp_path / "model.keras"), "--num", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"command: python -m benchmarks.compression --model {tmp_path / 'model.keras'} --num 1"
    rows = {line[:36].strip(): line[36:].split() for line in lines if line.startswith(("PNG", "WebP", "pixel_keras"))}
    assert set(rows) == {"PNG (optimize=True)", "WebP lossless (method=6)", "pixel_keras.codec"}
    assert 0 < float(rows["pixel_keras.codec"][0]) < 8.2  # bits/dim: a near-uniform model, plus the overhead


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the stored blobs were coded under TensorFlow")
def test_format_2_blobs_still_decode_bit_for_bit():
    """Blobs that the codec wrote before format 3 (tests/data, made with format 2's code: see
    BUILD_NOTES.md) decode to their images, together and alone."""
    model = pk.load_model(DATA / "codec_v2" / "pixelcnn.keras")
    stored = np.load(DATA / "codec_v2" / "blobs.npz")
    blobs = [stored[f"blob{number}"].tobytes() for number in range(3)]
    assert {blob[0] for blob in blobs} == {2}
    # Blobs are CPU-bound (the codec's docstring): this fixture is one whose coding tables are the
    # same on every CPU (tests/data/codec_v2/make_fixture.py): its logits are exact in float32 and
    # one level leads by >= 256 nats at every coded sub-pixel, so the table is (1, ..., 2**24 - 8, ..., 1)
    # whatever exp and summation order a CPU's kernels use. A fixture without that margin decodes
    # only on CPUs like the one that wrote it.
    logits = keras.ops.convert_to_numpy(model(stored["images"].astype("int32"))).reshape(3, 3, 4, 3, 9)
    top_two = np.sort(logits, axis=-1)[..., -2:]
    assert (top_two[..., 1] - top_two[..., 0]).min() >= 256
    np.testing.assert_array_equal(codec.decompress(model, blobs), stored["images"])
    np.testing.assert_array_equal(codec.decompress(model, blobs[1:2]), stored["images"][1:2])
    # Format 3 codes with the very same probabilities and coder: only the header differs.
    header = codec.FIXED_HEADER_BYTES + 2
    assert [blob[header:] for blob in codec.compress(model, stored["images"])] == [blob[7:] for blob in blobs]


CODEC_V3 = ["pixelcnn", "row_lstm", "diagonal_bilstm", "spatial_lstm", "gated_pixelcnn", "gated_pixelcnn_labels"]


@pytest.mark.parametrize("name", CODEC_V3)
def test_format_3_blobs_of_every_arch_still_decode_bit_for_bit(name):
    """Blobs that the codec wrote before the layers owned their incremental step (tests/data/
    codec_v3, made by its make_fixture.py) decode to their images: one tiny model per arch, random
    float weights, whose coding tables are the same on every CPU (one level leads by >= 150 nats at
    every coded sub-pixel, so a table is (1, ..., 2**24 - 3, ..., 1) whatever the last bits of its
    hidden features). A layer whose step computes another feature changes a table, and the blob no
    longer decodes."""
    model = pk.load_model(DATA / "codec_v3" / f"{name}.keras")
    stored = np.load(DATA / "codec_v3" / "blobs.npz")
    images = stored[f"{name}_images"]
    labels = stored[f"{name}_labels"] if f"{name}_labels" in stored else None
    blobs = [stored[f"{name}_blob{number}"].tobytes() for number in range(len(images))]
    assert {blob[0] for blob in blobs} == {3}
    inputs = images.astype("int32") if labels is None else [images.astype("int32"), labels]
    logits = keras.ops.convert_to_numpy(model(inputs)).reshape(images.shape + (-1,))
    top_two = np.sort(logits, axis=-1)[..., -2:]
    assert (top_two[..., 1] - top_two[..., 0]).min() >= 150
    np.testing.assert_array_equal(codec.decompress(model, blobs, labels=labels), images)


def test_format_3_header_holds_the_size_and_a_full_crc32(small):
    model, images, blobs = small
    height, width = images.shape[1:3]
    for image, blob in zip(images, blobs):
        assert blob[0] == 3 and blob[1:5] == codec.codec_for(model).fingerprint
        assert blob[5:7] == bytes([height, width])  # one varint byte per side below 128
        data = struct.pack(">II", height, width) + image.astype("<i4").tobytes()
        assert blob[7:11] == zlib.crc32(data).to_bytes(4, "big")
    assert codec.pack_size(300) == bytes([300 & 0x7F | 0x80, 300 >> 7])
    assert codec.unpack_size(b"\xac\x02", 0) == (300, 2) and codec.unpack_size(b"\xac", 0) is None


def test_no_images_give_no_blobs(small):
    model, images, _ = small
    assert codec.compress(model, np.zeros((0,) + images.shape[1:], np.int32)) == []
    assert codec.decompress(model, []).shape == (0,) + images.shape[1:]


def test_a_conditional_blob_decoded_with_another_label_says_so():
    keras.utils.set_random_seed(5)
    model = pk.build_model("pixelcnn", (3, 3, 1), 16, num_layers=1, hidden=4, num_classes=3)
    images = random_images((3, 3, 1), 16, 2, seed=9)
    blobs = codec.compress(model, images, labels=[0, 1])
    with pytest.raises(codec.CodecError, match="another label"):
        codec.decompress(model, blobs, labels=[2, 2])


def test_cli_flags_are_checked_and_named(small, tmp_path, capsys):
    model, images, _ = small
    model.save(tmp_path / "model.keras")
    write_png(tmp_path / "img.png", images[0])
    common = ["compress", "--model", str(tmp_path / "model.keras"), str(tmp_path / "img.png"), str(tmp_path / "o.pkc")]
    for flags, named in ((["--max-pixels", "0"], "--max-pixels"), (["--max-pixels", "-5"], "--max-pixels"),
                         (["--max-pixels", "1e9"], "--max-pixels"), (["--label", "-1"], "--label"),
                         (["--label", "nan"], "--label"), (["--bogus"], "--bogus")):
        assert named in cli_error(capsys, common[:1] + flags + common[1:]), flags
    assert not (tmp_path / "o.pkc").exists()


def test_progress_bar_past_a_few_seconds(small, monkeypatch, capsys):
    model, images, _ = small
    monkeypatch.setattr(codec.stages, "PROGRESS_AFTER_SECONDS", 3600.0)
    codec.compress(model, images, progress=True)
    assert "step" not in capsys.readouterr().out  # quicker than that: no bar
    monkeypatch.setattr(codec.stages, "PROGRESS_AFTER_SECONDS", 0.0)
    codec.compress(model, images, progress=True)
    out = capsys.readouterr().out  # not a terminal here: plain lines, no redrawn bar (Keras' Progbar's \r, ANSI)
    assert re.fullmatch(r"6/6 steps \(100%\), \d+\.\d s\n", out), repr(out)  # 2 x 3 x 1 steps, one coding batch


def built_at(model, shape, build):
    """The model's architecture built for images of `shape`, with its weights."""
    other = build(shape)
    other.set_weights(model.get_weights())
    return other


@pytest.mark.parametrize("arch, channels, levels", [
    ("pixelcnn", 1, 16), ("gated_pixelcnn", 3, 8), ("row_lstm", 1, 2), ("diagonal_bilstm", 3, 8),
    ("spatial_lstm", 1, 16), ("multiscale", 1, 8),
])
@slow
def test_any_size_round_trip_codes_under_the_model_built_at_that_size(arch, channels, levels):
    """A model trained at 4 x 4 codes 6 x 8 images: round trip, and the coding probabilities (hence
    the coded length) are those of the same weights built for 6 x 8."""
    from pixel_keras.multiscale import build_multiscale_model
    from pixel_keras.inspection import all_layers

    keras.utils.set_random_seed(6)
    size = {"num_layers": 2, "hidden": 6}
    if arch == "multiscale":
        def build(shape):
            return build_multiscale_model("pixelcnn", shape, levels, factor=2, **size)
    else:
        def build(shape):
            return pk.build_model(arch, shape, levels, **size)
    model, shape = build((4, 4, channels)), (6, 8, channels)
    for layer in all_layers(model):  # peaked conditionals, not near uniform
        if layer.name == "head_logits":
            layer.set_weights([weight * 6.0 for weight in layer.get_weights()])
    images = random_images(shape, levels, codec.CODING_BATCH, seed=10)
    blobs = codec.compress(model, images)
    np.testing.assert_array_equal(codec.decompress(model, blobs), images)
    np.testing.assert_array_equal(codec.decompress(model, blobs[3:4]), images[3:4])
    reference = built_at(model, shape, build)
    logits = np.asarray(reference(images), np.float64)
    if levels == 2:
        logits = np.stack([np.zeros_like(logits), logits], axis=-1)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    order = codec.codec_for(model).coding_symbols(np.arange(np.prod(shape)).reshape((1,) + shape))[0]
    expected = expected.reshape(len(images), -1, levels)[:, order]
    np.testing.assert_allclose(codec.codec_for(model).coding_probabilities(images), expected, atol=2e-5)
    check_size(reference, images, blobs)


def test_benchmark_stitches_tiles_in_raster_order():
    from benchmarks.compression import stitch

    tiles = np.arange(8)[:, None, None, None] * np.ones((8, 2, 3, 1), int)  # tile k filled with k
    images = stitch(tiles, 2)
    assert images.shape == (2, 4, 6, 1)
    np.testing.assert_array_equal(images[1, ::2, ::3, 0], [[4, 5], [6, 7]])


def test_cli_output_through_a_file_is_one_line_before_the_model_loads(tmp_path, capsys, monkeypatch):
    """`compress IMG afile/x.pkc` raised FileExistsError (a folder output under a file,
    NotADirectoryError) after ~5 s of loading the model: now one line, the model never loaded."""
    import pixel_keras.io

    monkeypatch.setattr(pixel_keras.io, "load_model_file", lambda *a: pytest.fail("the model was loaded"))
    write_png(tmp_path / "img.png", np.zeros((4, 4, 1), np.int32))
    (tmp_path / "folder").mkdir()
    write_png(tmp_path / "folder" / "a.png", np.zeros((4, 4, 1), np.int32))
    (tmp_path / "blob.pkc").write_bytes(b"PKC")
    (tmp_path / "afile").write_text("mine")
    model = ["--model", str(tmp_path / "unused.keras")]
    for command, source, output in [("compress", "img.png", "afile/x.pkc"), ("compress", "folder", "afile/sub"),
                                    ("decompress", "blob.pkc", "afile/x.png"), ("compress", "img.png", "afile/a/b.pkc")]:
        error = cli_error(capsys, [command, *model, str(tmp_path / source), str(tmp_path / output)])
        assert error == (f"error: cannot write {tmp_path / output}: {tmp_path / 'afile'} is a file, not a folder; "
                         "nothing was written")
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_folder_run_names_the_first_twenty_failures_one_line_each_then_a_count(small, tmp_path, capsys):
    """Failures came as one line of ~1,500 characters joined by ';': now a line per file."""
    model, images, _ = small
    model.save(tmp_path / "model.keras")
    (tmp_path / "in").mkdir()
    for number in range(23):
        (tmp_path / "in" / f"bad{number:02d}.png").write_bytes(b"not a png")
    write_png(tmp_path / "in" / "good.png", images[0])
    listed, error = cli_failures(capsys, ["compress", "--model", str(tmp_path / "model.keras"), str(tmp_path / "in"),
                                          str(tmp_path / "out")])
    assert error == "error: 23 of 24 files not compressed (the others were), listed above"
    assert len(listed) == 21 and listed[-1] == "... and 3 more"
    assert [line.split(": ")[0] for line in listed[:20]] == [str(tmp_path / "in" / f"bad{n:02d}.png") for n in range(20)]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["good.pkc"]


def test_progress_in_a_log_is_plain_lines_not_a_redrawn_bar(monkeypatch, capsys):
    """Keras' Progbar redraws with carriage returns and ANSI codes on any POSIX stream: where the
    output is not a terminal, progress is a plain line every few seconds and one at the end."""
    from pixel_keras import progress

    clock = iter(range(0, 1000, 2))  # 2 s a call
    monkeypatch.setattr(progress.time, "monotonic", lambda: float(next(clock)))
    report = progress.ProgressReport(10, "step", every=5.0)
    for done in range(1, 11):
        report.update(done)
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out
    assert out.splitlines() == ["1/10 steps (10%), 2.0 s, about 18 s left", "4/10 steps (40%), 8.0 s, about 12 s left",
                                "7/10 steps (70%), 14.0 s, about 6 s left", "10/10 steps (100%), 20.0 s"]
