"""Write minigrad/data/mnist_subset.npz: the first MNIST training and test examples.

    python scripts/make_mnist_subset.py [--data-dir DIR] [--out PATH]

(with minigrad installed, or PYTHONPATH=. from the repository root).

The files are found as `load_mnist` finds them (DIR, then MINIGRAD_DATA_DIR,
then the cache, then a download). The images and labels are stored unchanged
as uint8, compressed, without pickle.
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

import numpy as np

from minigrad.data.mnist import SUBSET_PATH, load_mnist

N_TRAIN = 5000
N_TEST = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="directory holding the four MNIST IDX files")
    parser.add_argument("--out", type=Path, default=SUBSET_PATH, help="npz file to write")
    args = parser.parse_args()

    train, test = load_mnist(normalize=False, flatten=False, data_dir=args.data_dir)
    arrays = {}
    for split, (images, labels), count in (("train", train, N_TRAIN), ("test", test, N_TEST)):
        arrays[f"{split}_images"] = images[:count, 0]  # (N, 28, 28), as in the IDX files
        arrays[f"{split}_labels"] = labels[:count].astype(np.uint8)

    # Written beside the target and renamed, so a failed run leaves the old file intact.
    tmp = args.out.with_name(f".{args.out.name}.{secrets.token_hex(4)}.part")
    try:
        with open(tmp, "xb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, args.out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
