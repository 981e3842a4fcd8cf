"""Tests for minigrad.data: datasets, DataLoader, IDX parsing, finding/downloading MNIST."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from minigrad.data import (
    GATES,
    MNIST,
    CorruptFileError,
    DataLoader,
    Dataset,
    DownloadError,
    TensorDataset,
    gate,
    load_mnist,
    load_mnist_subset,
    mnist,
    spiral,
)
from minigrad.engine import Tensor

# The full MNIST for the tests that need it: $MINIGRAD_TEST_MNIST names a directory with the
# four IDX files (.gz or not); without it, ../shared/datasets/mnist beside the checkout.
REAL_MNIST = Path(
    os.environ.get("MINIGRAD_TEST_MNIST")
    or Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"
)
needs_real_mnist = pytest.mark.skipif(
    not all(
        any((REAL_MNIST / f"{name}{ext}").is_file() for ext in (".gz", ""))
        for pair in mnist.FILES.values()
        for name in pair
    ),
    reason=f"the MNIST files are not in {REAL_MNIST} (set MINIGRAD_TEST_MNIST to a directory "
    "that holds them)",
)

# From the datasets README (and the MNIST web page).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Keep every test off the user's cache, data directory and the network."""
    monkeypatch.setenv("MINIGRAD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MINIGRAD_DATA_DIR", raising=False)
    monkeypatch.setattr(mnist, "MIRRORS", ())


# ---------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes holding `array`, built by hand from the format spec."""
    magic = 0x0800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fake_mnist(directory: Path, label: int | None = None, gz: bool = True, seed: int = 0):
    """Write four small MNIST-format files (6 train, 4 test images); return their arrays.

    With `label`, every label is that digit, so tests can tell directories apart.
    """
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 6), ("test", 4)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.full(n, label, np.uint8) if label is not None else rng.integers(0, 10, n)
        image_name, label_name = mnist.FILES[split]
        suffix = ".gz" if gz else ""
        write_idx(directory / f"{image_name}{suffix}", images, gz)
        write_idx(directory / f"{label_name}{suffix}", labels.astype(np.uint8), gz)
        arrays[split] = (images, labels.astype(np.uint8))
    return arrays


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local HTTP server over tmp_path/"www"; yields its base URL."""
    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def md5_table(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in directory.glob("*.gz")}


# ---------------------------------------------------------------- IDX parsing


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 5, 4), dtype=np.uint8)
    labels = np.array([0, 9, 3], dtype=np.uint8)
    got_images = mnist.read_idx(write_idx(tmp_path / "img", images, gz), mnist.IMAGES_MAGIC)
    got_labels = mnist.read_idx(write_idx(tmp_path / "lab", labels, gz), mnist.LABELS_MAGIC)
    assert got_images.dtype == np.uint8 and got_images.shape == (3, 5, 4)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    got_images[0, 0, 0] = 7  # a fresh, writable array, not a view of a read-only buffer


def test_idx_bad_magic_names_file_and_expected_magic(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.arange(5, dtype=np.uint8), gz=True)
    with pytest.raises(CorruptFileError, match="magic number 2049, expected 2051") as err:
        mnist.read_idx(path, mnist.IMAGES_MAGIC)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_idx_truncated_file_is_an_error_with_a_fix(tmp_path, gz):
    data = idx_bytes(np.ones((4, 28, 28), np.uint8))[:-100]
    path = tmp_path / ("images.gz" if gz else "images")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(CorruptFileError, match="truncated") as err:
        mnist.read_idx(path, mnist.IMAGES_MAGIC)
    assert str(path) in str(err.value) and "delete" in str(err.value)


def test_idx_truncated_gzip_stream(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.ones((4, 28, 28), np.uint8)))[:-40])
    with pytest.raises(CorruptFileError, match="cannot be read") as err:
        mnist.read_idx(path, mnist.IMAGES_MAGIC)
    assert str(path) in str(err.value)


def test_idx_gzip_crc_mismatch(tmp_path):
    data = bytearray(gzip.compress(idx_bytes(np.ones((2, 28, 28), np.uint8))))
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    path = tmp_path / "images.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="cannot be read"):
        mnist.read_idx(path, mnist.IMAGES_MAGIC)


def test_idx_extra_bytes_and_short_header(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.arange(3, dtype=np.uint8)) + b"\x00\x00")
    with pytest.raises(CorruptFileError, match="2 bytes longer"):
        mnist.read_idx(path, mnist.LABELS_MAGIC)
    path.write_bytes(b"\x00\x00\x08")
    with pytest.raises(CorruptFileError, match="too short for an IDX header"):
        mnist.read_idx(path, mnist.LABELS_MAGIC)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_header_declaring_terabytes_is_corrupt_not_a_memory_error(tmp_path, gz):
    data = idx_bytes(np.ones((3, 28, 28), np.uint8))
    data = data[:4] + (2**31).to_bytes(4, "big") + data[8:]  # 1.7 TB declared, 3 images held
    path = tmp_path / ("images.gz" if gz else "images")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(
        CorruptFileError, match=r"truncated: .*\(2147483648, 28, 28\).*holds only 2,352"
    ) as err:
        mnist.read_idx(path, mnist.IMAGES_MAGIC)
    assert str(path) in str(err.value) and "delete" in str(err.value)


def test_images_and_labels_must_agree_in_count(tmp_path):
    arrays = fake_mnist(tmp_path / "d")
    image_name, label_name = mnist.FILES["train"]
    write_idx(tmp_path / "d" / f"{label_name}.gz", arrays["train"][1][:-1], gz=True)
    with pytest.raises(CorruptFileError, match="6 images but .* 5 labels") as err:
        load_mnist(data_dir=tmp_path / "d")
    assert image_name in str(err.value) and label_name in str(err.value)
    assert "same split" in str(err.value) and "download them again" in str(err.value)


def test_a_label_that_is_not_a_digit_is_an_error_with_a_fix(tmp_path):
    fake_mnist(tmp_path / "d", label=12)
    with pytest.raises(CorruptFileError, match="has label 12, expected digits 0-9; delete it"):
        load_mnist(data_dir=tmp_path / "d")


# ---------------------------------------------------------------- finding files


def test_cache_dir_precedence(monkeypatch, tmp_path):
    assert mnist.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("MINIGRAD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist.cache_dir() == tmp_path / "xdg" / "minigrad"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist.cache_dir() == tmp_path / "home" / ".cache" / "minigrad"


def test_location_chain_explicit_beats_env_beats_cache(monkeypatch, tmp_path):
    fake_mnist(tmp_path / "explicit", label=1, gz=False)  # uncompressed files are fine too
    fake_mnist(tmp_path / "env", label=2)
    fake_mnist(tmp_path / "cache" / "mnist", label=3)
    monkeypatch.setenv("MINIGRAD_DATA_DIR", str(tmp_path / "env"))

    def train_label(**kwargs) -> int:
        (_, t), _ = load_mnist(download=False, **kwargs)
        return int(t[0])

    assert train_label(data_dir=tmp_path / "explicit") == 1
    assert train_label() == 2
    monkeypatch.delenv("MINIGRAD_DATA_DIR")
    assert train_label() == 3


def test_a_directory_with_only_some_files_is_an_error_not_mixed_with_another(tmp_path):
    # Its train files were paired with the cache's test files (and images could be paired
    # with another copy's labels) without a word.
    fake_mnist(tmp_path / "cache" / "mnist", label=3)
    fake_mnist(tmp_path / "mine", label=1)
    for name in mnist.FILES["test"]:
        (tmp_path / "mine" / f"{name}.gz").unlink()
    _, t = mnist.MNIST(train=True, data_dir=tmp_path / "mine", download=False).arrays
    assert set(t) == {1}  # one split needs only its own two files
    with pytest.raises(FileNotFoundError, match="holds only some") as err:
        load_mnist(data_dir=tmp_path / "mine", download=False)
    assert str(tmp_path / "mine") in str(err.value)
    assert all(name in str(err.value) for name in mnist.FILES["test"])


def test_load_mnist_options_on_small_files(tmp_path):
    arrays = fake_mnist(tmp_path / "d")
    (x, t), (xt, tt) = load_mnist(data_dir=tmp_path / "d")
    assert x.shape == (6, 784) and x.dtype == np.float32 and t.dtype == np.int64
    np.testing.assert_allclose(x * 255, arrays["train"][0].reshape(6, 784), atol=1e-4)
    np.testing.assert_array_equal(tt, arrays["test"][1])

    (x, t), _ = load_mnist(
        normalize=False, flatten=False, one_hot_label=True, data_dir=tmp_path / "d"
    )
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 0], arrays["train"][0])
    assert t.shape == (6, 10) and t.dtype == np.float32
    np.testing.assert_array_equal(t.sum(axis=1), np.ones(6))
    np.testing.assert_array_equal(t.argmax(axis=1), arrays["train"][1])


def test_missing_files_message_lists_files_dirs_and_fixes(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIGRAD_DATA_DIR", str(tmp_path / "env"))
    (tmp_path / "env").mkdir()
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(data_dir=tmp_path / "nowhere", download=False)
    message = str(err.value)
    for pair in mnist.FILES.values():
        for name in pair:
            assert name in message
    for directory in (tmp_path / "nowhere", tmp_path / "env", tmp_path / "cache" / "mnist"):
        assert str(directory) in message
    assert "does not exist" in message
    assert "download=False" in message
    (tmp_path / "a_file").write_bytes(b"")  # was listed as "does not exist" too
    with pytest.raises(FileNotFoundError, match="a_file \\(data_dir argument, not a directory\\)"):
        load_mnist(data_dir=tmp_path / "a_file", download=False)
    assert "MINIGRAD_DATA_DIR" in message and "data_dir=" in message
    # Offline, the subset inside the package is the way out (the README named only load_mnist).
    assert "Without them, minigrad.data.load_mnist_subset() loads" in message


def test_failed_download_message_says_why(server, monkeypatch, tmp_path):
    monkeypatch.setattr(mnist, "MIRRORS", (f"{server}/empty/",))
    with pytest.raises(FileNotFoundError) as err:
        MNIST(train=False)
    message = str(err.value)
    assert "t10k-images-idx3-ubyte" in message and "train-images" not in message.split("\n")[0]
    assert "The download failed" in message and "404" in message
    assert f"{server}/empty/t10k-images-idx3-ubyte.gz" in message
    assert not any((tmp_path / "cache" / "mnist").iterdir())


def test_uncreatable_cache_still_says_which_files_are_missing(monkeypatch, tmp_path):
    (tmp_path / "a_file").write_bytes(b"")
    monkeypatch.setenv("MINIGRAD_CACHE_DIR", str(tmp_path / "a_file" / "cache"))
    monkeypatch.setattr(mnist, "MIRRORS", ("http://127.0.0.1:9/",))  # never reached
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(data_dir=tmp_path / "nowhere")
    message = str(err.value)
    assert message.startswith("MNIST files not found")
    assert "The download failed" in message and "cannot create" in message


# ---------------------------------------------------------------- download


def test_download_writes_verified_file(server, tmp_path):
    fake_mnist(tmp_path / "www" / "mirror")
    table = md5_table(tmp_path / "www" / "mirror")
    name = "t10k-labels-idx1-ubyte.gz"
    path = mnist.download_file(name, tmp_path / "dest", [f"{server}/mirror/"], table)
    assert path == tmp_path / "dest" / name
    assert path.read_bytes() == (tmp_path / "www" / "mirror" / name).read_bytes()
    assert os.listdir(tmp_path / "dest") == [name]
    (tmp_path / "reference").write_bytes(b"")  # the mode an ordinary new file gets (umask)
    assert path.stat().st_mode == (tmp_path / "reference").stat().st_mode


def test_download_checksum_mismatch_leaves_nothing(server, tmp_path):
    fake_mnist(tmp_path / "www" / "mirror")
    name = "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(DownloadError, match="expected 0{32}") as err:
        mnist.download_file(name, tmp_path / "dest", [f"{server}/mirror/"], {name: "0" * 32})
    assert "md5" in str(err.value)
    assert os.listdir(tmp_path / "dest") == []


class _CutShortHandler(http.server.BaseHTTPRequestHandler):
    """Promises 1,000 bytes, sends 10, and hangs up: an interrupted transfer."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_interrupted_download_leaves_nothing(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CutShortHandler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        name = "t10k-labels-idx1-ubyte.gz"
        with pytest.raises(DownloadError, match=name):
            mnist.download_file(name, tmp_path / "dest", [url], {name: "0" * 32})
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert os.listdir(tmp_path / "dest") == []


def test_download_falls_through_to_next_mirror(server, tmp_path):
    fake_mnist(tmp_path / "www" / "second")
    table = md5_table(tmp_path / "www" / "second")
    name = "train-labels-idx1-ubyte.gz"
    mirrors = [f"{server}/first/", f"{server}/second"]
    path = mnist.download_file(name, tmp_path / "dest", mirrors, table)
    assert path.read_bytes() == (tmp_path / "www" / "second" / name).read_bytes()


def test_load_mnist_downloads_missing_files_into_cache(server, monkeypatch, tmp_path):
    arrays = fake_mnist(tmp_path / "www" / "mirror")
    monkeypatch.setattr(mnist, "MIRRORS", (f"{server}/none/", f"{server}/mirror/"))
    monkeypatch.setattr(mnist, "MD5", md5_table(tmp_path / "www" / "mirror"))
    (x, t), (xt, tt) = load_mnist(normalize=False)
    np.testing.assert_array_equal(xt.reshape(4, 28, 28), arrays["test"][0])
    np.testing.assert_array_equal(t, arrays["train"][1])
    cached = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert cached == sorted(mnist.MD5)  # the four files, no temporaries


@pytest.mark.parametrize("progress", [True, False])
def test_download_progress_bar_can_be_turned_off(server, monkeypatch, tmp_path, capsys, progress):
    fake_mnist(tmp_path / "www" / "mirror")
    monkeypatch.setattr(mnist, "MIRRORS", (f"{server}/mirror/",))
    monkeypatch.setattr(mnist, "MD5", md5_table(tmp_path / "www" / "mirror"))
    assert len(MNIST(train=False, progress=progress)) == 4  # downloads the two test files
    assert ("t10k-labels-idx1-ubyte.gz" in capsys.readouterr().err) == progress


# ---------------------------------------------------------------- real MNIST


@needs_real_mnist
def test_real_mnist_book_defaults():
    (x, t), (xt, tt) = load_mnist(data_dir=REAL_MNIST, download=False)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() == 1.0
    assert t.shape == (60000,) and t.dtype == np.int64
    assert np.bincount(t).tolist() == TRAIN_COUNTS
    assert np.bincount(tt).tolist() == TEST_COUNTS
    assert tt[:10].tolist() == FIRST_TEST_LABELS


@needs_real_mnist
def test_real_mnist_raw_one_hot_and_dataset():
    (x, t), (xt, tt) = load_mnist(
        normalize=False, flatten=False, one_hot_label=True, data_dir=REAL_MNIST, download=False
    )
    assert x.shape == (60000, 1, 28, 28) and x.dtype == np.uint8 and x.max() == 255
    assert tt.shape == (10000, 10) and tt.dtype == np.float32
    assert tt.sum(axis=0).tolist() == TEST_COUNTS

    test_set = MNIST(train=False, data_dir=REAL_MNIST, download=False)
    assert len(test_set) == 10000
    x_batch, t_batch = next(iter(DataLoader(test_set, batch_size=10)))
    assert x_batch.shape == (10, 784) and t_batch.data.tolist() == FIRST_TEST_LABELS


@needs_real_mnist
def test_subset_is_the_first_rows_of_real_mnist():
    (x, t), (xt, tt) = load_mnist(normalize=False, data_dir=REAL_MNIST, download=False)
    (sx, st), (sxt, stt) = load_mnist_subset(normalize=False)
    np.testing.assert_array_equal(sx, x[:5000])
    np.testing.assert_array_equal(st, t[:5000])
    np.testing.assert_array_equal(sxt, xt[:1000])
    np.testing.assert_array_equal(stt, tt[:1000])


def test_the_real_mnist_tests_take_a_copy_from_the_environment(tmp_path):
    """They looked only beside the checkout; MINIGRAD_TEST_MNIST points them elsewhere."""

    def run(directory: Path) -> str:
        env = dict(os.environ, MINIGRAD_TEST_MNIST=str(directory), HYPOTHESIS_PROFILE="ci")
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
             f"{__file__}::test_real_mnist_book_defaults"],
            env=env, capture_output=True, text=True, timeout=300,
        ).stdout  # fmt: skip

    out = run(tmp_path / "nowhere")
    assert "1 skipped" in out
    assert f"not in {tmp_path / 'nowhere'} (set MINIGRAD_TEST_MNIST to" in out
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"
    if shared.is_dir():  # another copy: a directory of links to the shared files
        (tmp_path / "copy").mkdir()
        for pair in mnist.FILES.values():
            for name in pair:
                (tmp_path / "copy" / f"{name}.gz").symlink_to(shared / f"{name}.gz")
        assert "1 passed" in run(tmp_path / "copy")


# ---------------------------------------------------------------- embedded subset


def test_subset_file_is_small_numeric_and_pickle_free():
    assert mnist.SUBSET_PATH.stat().st_size < 3 * 2**20
    with np.load(mnist.SUBSET_PATH, allow_pickle=False) as npz:
        shapes = {key: (npz[key].shape, npz[key].dtype) for key in npz.files}
    assert shapes == {
        "train_images": ((5000, 28, 28), np.uint8),
        "train_labels": ((5000,), np.uint8),
        "test_images": ((1000, 28, 28), np.uint8),
        "test_labels": ((1000,), np.uint8),
    }


def test_subset_loader_forms():
    (x, t), (xt, tt) = load_mnist_subset()
    assert x.shape == (5000, 784) and x.dtype == np.float32 and xt.shape == (1000, 784)
    assert t.dtype == np.int64 and tt[:10].tolist() == FIRST_TEST_LABELS
    assert np.bincount(tt, minlength=10).min() > 50  # every digit is represented
    (x, t), _ = load_mnist_subset(normalize=False, flatten=False, one_hot_label=True)
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.uint8
    assert t.shape == (5000, 10) and t.dtype == np.float32

    dataset = MNIST(train=False, subset=True, one_hot_label=True)
    assert len(dataset) == 1000
    image, label = dataset[0]
    assert image.shape == (784,) and label.argmax() == 7


@pytest.mark.parametrize("train", ["test", "train", 0, None])
def test_mnist_split_must_be_a_bool(train):
    # MNIST(train="test") gave the training split: any non-empty string is true.
    with pytest.raises(TypeError, match="train must be True .* or False"):
        MNIST(train=train, subset=True)


# ---------------------------------------------------------------- datasets


def test_tensor_dataset_indexing():
    x = np.arange(12).reshape(6, 2)
    t = np.arange(6) * 10
    ds = TensorDataset(x, t)
    assert len(ds) == 6
    xi, ti = ds[2]
    np.testing.assert_array_equal(xi, [4, 5])
    assert ti == 20
    xb, tb = ds[np.array([5, 0, 5])]
    np.testing.assert_array_equal(xb, [[10, 11], [0, 1], [10, 11]])
    np.testing.assert_array_equal(tb, [50, 0, 50])


def test_tensor_dataset_gives_float_lists_the_default_dtype():
    # A list of Python floats became float64 batches, so a float32 model ran in float64.
    ds = TensorDataset([[1.0, 2.0], [3.0, 4.0]], [0, 1])
    assert ds.arrays[0].dtype == np.float32 and ds.arrays[1].dtype.kind == "i"
    assert TensorDataset(np.ones((2, 2))).arrays[0].dtype == np.float64  # arrays keep theirs


def test_mnist_subset_refuses_a_data_dir(tmp_path):
    with pytest.raises(ValueError, match="data_dir is for the full set"):
        MNIST(subset=True, data_dir=tmp_path)


def test_tensor_dataset_rejects_bad_arrays():
    with pytest.raises(ValueError, match=r"first dimension.*\(3,\), \(4,\)"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_dataset_base_requires_methods():
    with pytest.raises(NotImplementedError, match="__len__"):
        len(Dataset())
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]


def test_spiral():
    x, t = spiral(n_per_class=50, n_classes=4, seed=3)
    assert x.shape == (200, 2) and x.dtype == np.float32
    assert t.shape == (200,) and t.dtype == np.int64
    assert np.bincount(t).tolist() == [50] * 4
    radius = np.hypot(x[:, 0], x[:, 1])
    np.testing.assert_allclose(radius[:50], np.linspace(0, 1, 50), atol=1e-6)
    x2, t2 = spiral(n_per_class=50, n_classes=4, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(t, t2)
    assert not np.array_equal(x, spiral(n_per_class=50, n_classes=4, seed=4)[0])
    assert spiral()[0].shape == (300, 2)
    with pytest.raises(ValueError, match="n_per_class >= 1"):
        spiral(n_per_class=0)


@pytest.mark.parametrize(
    "name, rule",
    [
        ("AND", lambda a, b: a and b),
        ("NAND", lambda a, b: not (a and b)),
        ("OR", lambda a, b: a or b),
        ("XOR", lambda a, b: a != b),
    ],
)
def test_gate_truth_tables(name, rule):
    x, t = gate(name)
    assert x.shape == (4, 2) and x.dtype == np.float32
    assert t.shape == (4,) and t.dtype == np.float32
    assert sorted(map(tuple, x.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for (a, b), out in zip(x.tolist(), t.tolist(), strict=True):
        assert out == float(rule(bool(a), bool(b)))
    np.testing.assert_array_equal(gate(name.lower())[1], t)


def test_gate_names():
    assert GATES == ("AND", "NAND", "OR", "XOR")
    with pytest.raises(ValueError, match="'NOR'.*AND, NAND, OR, XOR"):
        gate("NOR")


# ---------------------------------------------------------------- DataLoader


class CountingTensorDataset(TensorDataset):
    def __init__(self, *arrays):
        super().__init__(*arrays)
        self.calls = 0

    def __getitem__(self, index):
        self.calls += 1
        return super().__getitem__(index)


class SquaresDataset(Dataset):
    """A plain Dataset (no batch indexing): sample i is (i * ones(2), i**2)."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return np.full(2, i, np.float32), np.int64(i * i)


def epoch_indices(loader) -> list[int]:
    return [int(i) for (batch,) in loader for i in batch.data]


def test_loader_batches_and_len():
    ds = CountingTensorDataset(np.arange(10))
    loader = DataLoader(ds, batch_size=3)
    batches = list(loader)
    assert len(loader) == 4 and [len(b) for (b,) in batches] == [3, 3, 3, 1]
    assert ds.calls == 4  # one fancy index per batch, not one call per sample
    assert epoch_indices(loader) == list(range(10))

    dropping = DataLoader(ds, batch_size=3, drop_last=True)
    assert len(dropping) == 3 and [len(b) for (b,) in dropping] == [3, 3, 3]
    assert len(DataLoader(ds, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(ds)) == 10


def test_loader_yields_tensor_tuples_keeping_dtype():
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    t = np.arange(10, dtype=np.int64)
    for batch in DataLoader(TensorDataset(x, t), batch_size=4):
        assert isinstance(batch, tuple) and len(batch) == 2
        assert all(isinstance(b, Tensor) for b in batch)
        assert batch[0].dtype == np.float64 and batch[1].dtype == np.int64
        np.testing.assert_array_equal(batch[0].data[:, 0] / 2, batch[1].data)


def test_loader_shuffle_is_seeded_and_covers_every_index_once():
    ds = TensorDataset(np.arange(23))
    a = DataLoader(ds, batch_size=5, shuffle=True, generator=7)
    b = DataLoader(ds, batch_size=5, shuffle=True, generator=np.random.default_rng(7))
    epochs_a = [epoch_indices(a) for _ in range(3)]
    epochs_b = [epoch_indices(b) for _ in range(3)]
    assert epochs_a == epochs_b
    for order in epochs_a:
        assert sorted(order) == list(range(23))
    assert epochs_a[0] != epochs_a[1]  # each epoch reshuffles
    assert epochs_a[0] != list(range(23))
    other = DataLoader(ds, batch_size=5, shuffle=True, generator=8)
    assert epoch_indices(other) != epochs_a[0]


def test_loader_shuffle_with_drop_last_sees_distinct_indices():
    loader = DataLoader(TensorDataset(np.arange(10)), batch_size=4, shuffle=True, drop_last=True)
    seen = epoch_indices(loader)
    assert len(seen) == 8 and len(set(seen)) == 8


def test_loader_stacks_a_generic_dataset():
    batches = list(DataLoader(SquaresDataset(), batch_size=2))
    assert len(batches) == 3
    x, t = batches[1]
    np.testing.assert_array_equal(x.data, [[2, 2], [3, 3]])
    np.testing.assert_array_equal(t.data, [4, 9])
    assert x.dtype == np.float32 and t.dtype == np.int64


class ListSamples(Dataset):
    """Samples as lists, [x, t], with x of `width(i)` values."""

    def __init__(self, width=lambda i: 2):
        self.width = width

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return [np.full(self.width(i), i, np.float32), i % 2]


def test_loader_takes_list_samples_as_fields():
    x, t = next(iter(DataLoader(ListSamples(), batch_size=3)))
    np.testing.assert_array_equal(x.data, [[0, 0], [1, 1], [2, 2]])
    np.testing.assert_array_equal(t.data, [0, 1, 0])


def test_loader_says_which_field_cannot_be_batched():
    with pytest.raises(ValueError, match=r"field 0 .* shapes \[\(1,\), \(2,\)\]"):
        next(iter(DataLoader(ListSamples(width=lambda i: 1 + i % 2), batch_size=2)))


def test_loader_refuses_samples_it_cannot_make_an_array_of():
    class DictSamples(ListSamples):
        def __getitem__(self, i):
            return {"x": np.zeros(2), "t": i}  # was batched into a tensor of dicts

    with pytest.raises(TypeError, match="field 0 of the samples: it holds dict values"):
        next(iter(DataLoader(DictSamples(), batch_size=2)))


def test_loader_rejects_samples_with_different_numbers_of_fields():
    class Ragged(ListSamples):
        def __getitem__(self, i):
            return super().__getitem__(i)[: 1 + i % 2]

    with pytest.raises(ValueError, match=r"different numbers of fields \(\[1, 2\]\)"):
        next(iter(DataLoader(Ragged(), batch_size=2)))


def test_loader_rejects_an_empty_dataset():
    with pytest.raises(ValueError, match="empty dataset"):
        DataLoader(TensorDataset(np.zeros((0, 2))), batch_size=4)


def test_loader_rejects_bad_batch_size():
    ds = TensorDataset(np.arange(3))
    with pytest.raises(ValueError, match="at least 1, got 0"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        DataLoader(ds, batch_size=2.0)


def test_dataloader_state_dict_restores_the_order_of_the_next_epochs(tmp_path):
    ds = TensorDataset(np.arange(20.0), np.arange(20))
    loader = DataLoader(ds, batch_size=5, shuffle=True, generator=3)
    next(iter(loader))
    np.savez(tmp_path / "s.npz", **loader.state_dict())
    expected = [[b[1].data.tolist() for b in loader] for _ in range(2)]
    other = DataLoader(ds, batch_size=5, shuffle=True, generator=99)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as archive:
        other.load_state_dict(dict(archive))
    assert [[b[1].data.tolist() for b in other] for _ in range(2)] == expected


@pytest.mark.parametrize("state", [{}, {"generator": np.array("{}")}, {"generator": "x"}])
def test_dataloader_load_state_dict_refuses_a_bad_state(state):
    loader = DataLoader(TensorDataset(np.arange(4.0)), shuffle=True, generator=0)
    before = loader.generator.bit_generator.state
    with pytest.raises(ValueError, match="cannot load the DataLoader's state"):
        loader.load_state_dict(state)
    assert loader.generator.bit_generator.state == before


@pytest.mark.parametrize("size", [0, 1, 20])
def test_images_that_are_not_28x28_are_named_and_refused(tmp_path, size):
    # 1x1 images loaded and trained; 0x0 and mixed sizes ended in tracebacks inside training.
    fake_mnist(tmp_path / "d")
    image_name = mnist.FILES["test"][0]
    write_idx(tmp_path / "d" / f"{image_name}.gz", np.zeros((4, size, size), np.uint8), gz=True)
    with pytest.raises(CorruptFileError, match=rf"{image_name}.gz holds images of {size}x{size} "
                       "pixels, expected 28x28"):  # fmt: skip
        load_mnist(data_dir=tmp_path / "d")


def test_idx_header_of_an_impossible_shape_names_the_file(tmp_path):
    # (0, 2**32-1, 2**32-1): no data to read, and then NumPy's bare "array is too big".
    path = tmp_path / "images"
    path.write_bytes(b"\x00\x00\x08\x03" + bytes(4) + b"\xff" * 8)
    with pytest.raises(CorruptFileError, match=r"images declares shape \(0, 4294967295, "):
        mnist.read_idx(path, mnist.IMAGES_MAGIC)


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Sends a byte every 50 ms: never silent long enough for a timeout, never done."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:  # the client gave up
            pass

    def log_message(self, *args):
        pass


def serve(handler):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    return httpd, thread, f"http://127.0.0.1:{httpd.server_address[1]}/"


NAME = "t10k-labels-idx1-ubyte.gz"


def test_a_mirror_that_never_answers_is_given_up_on_and_named(tmp_path, monkeypatch):
    # It cost 30 s per mirror with no word of why.
    monkeypatch.setattr(mnist, "_TIMEOUT", 0.3)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # connections queue, and nobody answers them
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
    try:
        start = time.monotonic()
        with pytest.raises(DownloadError, match=rf"{url}{NAME}: no answer within 0.3 s"):
            mnist.download_file(NAME, tmp_path / "dest", [url], {NAME: "0" * 32})
        assert time.monotonic() - start < 10
    finally:
        silent.close()
    assert os.listdir(tmp_path / "dest") == []


def test_a_mirror_that_trickles_meets_the_deadline(tmp_path, monkeypatch):
    # A byte every few seconds was never timed out.
    monkeypatch.setattr(mnist, "_DEADLINE", 0.5)
    httpd, thread, url = serve(_TrickleHandler)
    try:
        with pytest.raises(DownloadError, match=r"not complete within the deadline of 0.5 s"):
            mnist.download_file(NAME, tmp_path / "dest", [url], {NAME: "0" * 32})
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert os.listdir(tmp_path / "dest") == []


def test_a_short_body_is_called_truncated_not_a_checksum_mismatch(tmp_path):
    httpd, thread, url = serve(_CutShortHandler)
    try:
        with pytest.raises(DownloadError, match="cut short: received 10 of 1,000 bytes") as err:
            mnist.download_file(NAME, tmp_path / "dest", [url], {NAME: "0" * 32})
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert "md5" not in str(err.value)


def test_a_download_clears_what_a_killed_download_of_the_same_file_left(server, tmp_path):
    # Every killed transfer left its .part file behind for good.
    fake_mnist(tmp_path / "www" / "mirror")
    name = "t10k-labels-idx1-ubyte.gz"
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / f".{name}.0123456789ab.part").write_bytes(b"half")
    (tmp_path / "dest" / ".other.gz.0123456789ab.part").write_bytes(b"not ours")
    table = md5_table(tmp_path / "www" / "mirror")
    mnist.download_file(name, tmp_path / "dest", [f"{server}/mirror/"], table)
    assert sorted(os.listdir(tmp_path / "dest")) == [".other.gz.0123456789ab.part", name]
