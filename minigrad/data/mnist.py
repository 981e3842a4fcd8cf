"""MNIST: read the IDX files, find or download them, load them as the book does.

The MNIST database of handwritten digits is the work of Yann LeCun, Corinna
Cortes and Christopher J. C. Burges, released under CC BY-SA 3.0. The subset
embedded in this package (`mnist_subset.npz`: the first 5,000 training and
first 1,000 test images with their labels, unchanged) carries that license;
`scripts/make_mnist_subset.py` regenerates it from the original files.

The files needed are taken together from the first of these directories
that holds them all (one before the cache that holds only some is an error):

1. the `data_dir` argument;
2. the directory named by the `MINIGRAD_DATA_DIR` environment variable;
3. the cache, `cache_dir() / "mnist"`.

A directory may hold a file gzipped (`train-images-idx3-ubyte.gz`, as
published) or uncompressed (`train-images-idx3-ubyte`). Files that are found
nowhere are downloaded into the cache from the first of `MIRRORS` that
serves them, through a temporary file that is renamed only once its md5
matches the published one in `MD5`. Files found on disk are not compared with
those checksums (a local copy may be re-gzipped or uncompressed); they are
checked structurally instead: magic number, dimensions, exact byte count and
the gzip CRC, so a truncated or damaged file is an error, never a wrong array.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from minigrad._files import remove_leftovers, temporary_path
from minigrad.data.datasets import TensorDataset

# Base names of the (images, labels) files of each split.
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# Public copies of the original yann.lecun.com/exdb/mnist files, tried in order
# (the first is the mirror torchvision uses, the second the one TensorFlow used).
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# md5 of the gzipped files as published on yann.lecun.com/exdb/mnist and the
# mirrors above; the same table torchvision's MNIST class checks downloads with.
MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (count)

SUBSET_PATH = Path(__file__).with_name("mnist_subset.npz")

_TIMEOUT = 30  # seconds to connect and get an answer, and then without data, per mirror
_DEADLINE = 900  # seconds for a whole file: a mirror that trickles is given up on too
_CHUNK = 1 << 20  # bytes read at a time from an IDX file


class CorruptFileError(ValueError):
    """A data file is truncated, damaged, or not the IDX file it should be."""


class DownloadError(OSError):
    """No mirror delivered a file whose checksum matches."""


# ---------------------------------------------------------------- IDX files


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not) whose header must carry `magic`.

    `magic` is `IMAGES_MAGIC` (2051, returns (N, rows, cols) uint8) or
    `LABELS_MAGIC` (2049, returns (N,) uint8). Raises `CorruptFileError`, naming
    the file, when the header or the byte count does not match.
    """
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        raise ValueError(f"magic must be {IMAGES_MAGIC} or {LABELS_MAGIC}, got {magic}")
    path = Path(path)
    fix = (
        f"delete {path} and download it again, or point data_dir / MINIGRAD_DATA_DIR "
        "at a directory with a good copy"
    )
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=raw) if is_gzip else raw
        try:
            return _read_idx_stream(stream, magic, path, fix)
        except (EOFError, OSError, zlib.error) as err:  # truncated or damaged gzip stream
            raise CorruptFileError(f"{path} cannot be read ({err}); {fix}") from err


def _read_idx_stream(stream: BinaryIO, magic: int, path: Path, fix: str) -> np.ndarray:
    ndim = magic & 0xFF
    header = stream.read(4)
    found = int.from_bytes(header, "big")
    if len(header) == 4 and found != magic:
        kinds = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
        raise CorruptFileError(
            f"{path} has magic number {found}, expected {magic} (an IDX {kinds[magic]} file); "
            f"is it the right file? {fix}"
        )
    header += stream.read(4 * ndim)
    if len(header) < 4 + 4 * ndim:
        raise CorruptFileError(
            f"{path} is too short for an IDX header ({len(header)} bytes, expected "
            f"{4 + 4 * ndim}); {fix}"
        )
    shape = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    declared = math.prod(shape)
    # Grown chunk by chunk, not allocated at the declared size: a damaged header can
    # declare terabytes, so memory must follow the data actually read.
    data = bytearray()
    while len(data) < declared:
        chunk = stream.read(min(declared - len(data), _CHUNK))
        if not chunk:
            raise CorruptFileError(
                f"{path} is truncated: its header declares shape {shape}, {declared:,} bytes "
                f"of data, but the file holds only {len(data):,}; {fix}"
            )
        data += chunk
    extra = len(stream.read())
    if extra:
        raise CorruptFileError(
            f"{path} is {extra} bytes longer than its header (shape {shape}) declares; {fix}"
        )
    try:
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)  # writable: a bytearray
    except ValueError as err:  # no data, but dimensions no array can have: (0, 2**32-1, ...)
        raise CorruptFileError(
            f"{path} declares shape {shape}, which no array can have ({err}); {fix}"
        ) from None


def _read_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):  # MNIST's, and the form of every MNIST-like set
        raise CorruptFileError(
            f"{images_path} holds images of {images.shape[1]}x{images.shape[2]} pixels, "
            "expected 28x28; is it an MNIST file? Delete it and download it again, or point "
            "data_dir / MINIGRAD_DATA_DIR at a good copy"
        )
    if len(images) != len(labels):
        raise CorruptFileError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
            "labels; expected one label per image. Check that both files are of the same "
            "split (train-* or t10k-*), or delete them and let minigrad download them again."
        )
    if labels.size and labels.max() > 9:
        raise CorruptFileError(
            f"{labels_path} has label {labels.max()}, expected digits 0-9; delete it and "
            "download it again, or point data_dir / MINIGRAD_DATA_DIR at a good copy"
        )
    return images, labels


# ---------------------------------------------------------------- finding files


def cache_dir() -> Path:
    """The minigrad cache: `$MINIGRAD_CACHE_DIR`, else `$XDG_CACHE_HOME/minigrad`, else
    `~/.cache/minigrad`. MNIST lives in its `mnist` subdirectory."""
    if env := os.environ.get("MINIGRAD_CACHE_DIR"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "minigrad"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """The directories searched for MNIST files, in order, each with where it came from."""
    dirs = []
    if data_dir is not None:
        dirs.append((Path(data_dir).expanduser(), "data_dir argument"))
    if env := os.environ.get("MINIGRAD_DATA_DIR"):
        dirs.append((Path(env).expanduser(), "MINIGRAD_DATA_DIR"))
    dirs.append((cache_dir() / "mnist", "cache"))
    return dirs


def _find(name: str, directory: Path) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def locate_mnist(
    names: Sequence[str],
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> list[Path]:
    """Paths of the MNIST files with these base names, downloading missing ones if allowed
    (with a progress bar unless `progress=False`).

    All of them come from one directory: the first of `search_dirs` that holds
    them all, else the cache, into which missing ones are downloaded if allowed.
    A directory before the cache that holds only some of them is an error:
    images and labels from different copies could be silently mismatched.
    Raises `FileNotFoundError` naming the missing files, every directory
    searched, why nothing was downloaded, and how to provide the files.
    """
    dirs = search_dirs(data_dir)
    for directory, origin in dirs[:-1]:
        found = {name: _find(name, directory) for name in names}
        missing = [name for name in names if found[name] is None]
        if not missing:
            return [found[name] for name in names]
        if len(missing) < len(names):
            raise FileNotFoundError(
                f"{directory} ({origin}) holds only some of the MNIST files needed: "
                f"{', '.join(missing)} (.gz or uncompressed) missing. Put them all in one "
                "directory; images and labels from different copies could be mismatched."
            )
    cache = dirs[-1][0]
    found = {name: _find(name, cache) for name in names}
    reason = "Nothing was downloaded because download=False."
    if download:
        try:
            for name in names:
                if found[name] is None:
                    found[name] = download_file(f"{name}.gz", cache, MIRRORS, MD5, progress)
        except DownloadError as err:
            reason = f"The download failed: {err}"
    missing = [name for name in names if found[name] is None]
    if missing:
        raise FileNotFoundError(_missing_message(missing, dirs, reason))
    return [found[name] for name in names]


def _not_a_directory(path: Path) -> str:
    return ", not a directory" if path.exists() else ", does not exist"


def _missing_message(missing: list[str], dirs: list[tuple[Path, str]], reason: str) -> str:
    looked = "\n".join(
        f"  {d} ({origin}{'' if d.is_dir() else _not_a_directory(d)})" for d, origin in dirs
    )
    every = ", ".join(f"{name}.gz" for pair in FILES.values() for name in pair)
    return (
        f"MNIST files not found: {', '.join(missing)} (.gz or uncompressed).\n"
        f"Looked in:\n{looked}\n"
        f"{reason}\n"
        f"To provide them, pass data_dir=... or set the MINIGRAD_DATA_DIR environment "
        f"variable to a directory holding the four MNIST files ({every}), or copy them "
        f"into {dirs[-1][0]}.\n"
        "Without them, minigrad.data.load_mnist_subset() loads the first 5,000 training and "
        "1,000 test images, shipped inside minigrad (nothing to download)."
    )


# ---------------------------------------------------------------- download


def download_file(
    filename: str,
    dest: str | os.PathLike,
    mirrors: Sequence[str] = MIRRORS,
    md5: dict[str, str] = MD5,
    progress: bool = True,
) -> Path:
    """Download `filename` into `dest` from the first mirror whose copy has md5 `md5[filename]`.

    The file is written to a temporary file in `dest` and renamed only once
    complete and verified, so `dest` never holds a partial or wrong file.
    Raises `DownloadError` listing what each mirror did wrong.
    """
    if filename not in md5:
        raise ValueError(f"no md5 known for {filename!r}; known files: {', '.join(md5)}")
    if not mirrors:
        raise DownloadError(f"could not download {filename}: no mirrors given")
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a read-only home, or a file where the cache should be
        raise DownloadError(f"could not download {filename}: cannot create {dest}: {err}") from None
    failures = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{filename}"
        try:
            return _fetch(url, dest / filename, md5[filename], progress)
        except (OSError, http.client.HTTPException) as err:  # URLError, HTTPError, timeouts
            failures.append(f"{url}: {err}")
    raise DownloadError(f"could not download {filename}:\n    " + "\n    ".join(failures))


def _fetch(url: str, target: Path, expected_md5: str, progress: bool) -> Path:
    # Beside the target so os.replace is atomic; opened with "xb" rather than made by
    # mkstemp so the file gets the user's umask instead of mode 0600.
    tmp = Path(temporary_path(str(target)))
    start = time.monotonic()
    received = 0
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with open(tmp, "xb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=_TIMEOUT)
            except (TimeoutError, urllib.error.URLError) as err:
                if isinstance(err, TimeoutError) or isinstance(err.reason, TimeoutError):
                    raise DownloadError(f"no answer within {_TIMEOUT:g} s") from None
                raise
            with (
                response,
                tqdm(
                    total=response.length,
                    unit="B",
                    unit_scale=True,
                    desc=target.name,
                    disable=not progress,
                ) as bar,
            ):
                declared = response.length
                # read1: whatever has arrived, so the deadline is checked while data trickles
                while chunk := _read_chunk(response, received):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
                    received += len(chunk)
                    if time.monotonic() - start > _DEADLINE:
                        raise DownloadError(
                            f"not complete within the deadline of {_DEADLINE:g} s ({received:,} "
                            f"bytes received); the mirror is too slow"
                        )
        if declared is not None and received < declared:
            raise DownloadError(
                f"the transfer was cut short: received {received:,} of {declared:,} bytes"
            )
        if digest.hexdigest() != expected_md5:
            raise DownloadError(
                f"md5 of the downloaded file is {digest.hexdigest()}, expected {expected_md5}"
            )
        os.replace(tmp, target)
        remove_leftovers(str(target))  # of downloads killed outright
    finally:
        tmp.unlink(missing_ok=True)  # only still there if something failed
    return target


def _read_chunk(response: http.client.HTTPResponse, received: int) -> bytes:
    try:
        return response.read1(1 << 16)
    except TimeoutError:
        raise DownloadError(f"no data for {_TIMEOUT:g} s after {received:,} bytes") from None
    except http.client.IncompleteRead:  # the server hung up early: reported by the caller
        return b""


# ---------------------------------------------------------------- loading


def _format(
    images: np.ndarray, labels: np.ndarray, normalize: bool, flatten: bool, one_hot_label: bool
) -> tuple[np.ndarray, np.ndarray]:
    n = len(images)
    x = images
    if normalize:
        x = images.astype(np.float32)
        x /= 255.0
    x = x.reshape(n, math.prod(x.shape[1:])) if flatten else x.reshape(n, 1, *x.shape[1:])
    if one_hot_label:
        t = np.zeros((n, 10), dtype=np.float32)
        t[np.arange(n), labels] = 1.0
    else:
        t = labels.astype(np.int64)
    return x, t


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST as `((x_train, t_train), (x_test, t_test))`, with the book's options.

    normalize: images as float32 in [0, 1], else uint8 in 0-255.
    flatten: images as (N, 784), else (N, 1, 28, 28).
    one_hot_label: labels as float32 (N, 10) one-hot rows, else int64 (N,).
    data_dir, download: where to look first and whether to fetch missing
    files (see the module docstring for the whole search order).
    progress: show a progress bar while downloading.
    """
    names = [name for pair in FILES.values() for name in pair]
    paths = locate_mnist(names, data_dir, download, progress)
    train = _format(*_read_split(paths[0], paths[1]), normalize, flatten, one_hot_label)
    test = _format(*_read_split(paths[2], paths[3]), normalize, flatten, one_hot_label)
    return train, test


def _subset_split(train: bool) -> tuple[np.ndarray, np.ndarray]:
    split = "train" if train else "test"
    with np.load(SUBSET_PATH, allow_pickle=False) as npz:
        return npz[f"{split}_images"], npz[f"{split}_labels"]


def load_mnist_subset(
    normalize: bool = True, flatten: bool = True, one_hot_label: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The MNIST subset shipped with minigrad, in the same form as `load_mnist`.

    The first 5,000 training and first 1,000 test images and labels of MNIST
    (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0), for examples and
    tests that must run without the full files.
    """
    train = _format(*_subset_split(True), normalize, flatten, one_hot_label)
    test = _format(*_subset_split(False), normalize, flatten, one_hot_label)
    return train, test


class MNIST(TensorDataset):
    """One MNIST split as a dataset of `(image, label)`, batched by `DataLoader`.

    The options are those of `load_mnist`; `subset=True` uses the embedded
    subset (5,000 training / 1,000 test images) and touches no files.
    """

    def __init__(
        self,
        train: bool = True,
        data_dir: str | os.PathLike | None = None,
        download: bool = True,
        normalize: bool = True,
        flatten: bool = True,
        one_hot_label: bool = False,
        subset: bool = False,
        progress: bool = True,
    ) -> None:
        if not isinstance(train, bool | np.bool_):  # MNIST(train="test") loaded the training set
            raise TypeError(f"train must be True (training split) or False (test), got {train!r}")
        if subset:
            if data_dir is not None:  # it would be ignored without a word
                raise ValueError(
                    "data_dir is for the full set; subset=True reads the embedded copy"
                )
            images, labels = _subset_split(train)
        else:
            paths = locate_mnist(FILES["train" if train else "test"], data_dir, download, progress)
            images, labels = _read_split(*paths)
        super().__init__(*_format(images, labels, normalize, flatten, one_hot_label))
        self.train = train
