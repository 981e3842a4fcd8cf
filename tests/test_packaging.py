"""What the built distribution carries: type information, the licenses of code and data,
and a long description a package index can show."""

import importlib.metadata
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)|<img[^>]*src=\"([^\"]+)\"")


def test_the_long_description_has_no_relative_links():
    # README.md's pictures are linked by relative paths, which no package index resolves.
    text = (ROOT / PROJECT["readme"]).read_text()
    targets = [a or b for a, b in LINK.findall(text)]
    assert all(t.startswith(("https://", "http://")) for t in targets), targets


def test_the_long_description_s_example_is_the_readme_s():
    def taste(path: Path) -> str:
        return path.read_text().split("## A taste", 1)[1].split("```python\n")[1].split("```")[0]

    assert taste(ROOT / PROJECT["readme"]) == taste(ROOT / "README.md")


def test_the_license_covers_the_code_and_the_embedded_data():
    assert PROJECT["license"] == "MIT AND CC-BY-SA-3.0"
    for name in PROJECT["license-files"]:
        assert (ROOT / name).is_file(), name
    notice = (ROOT / "minigrad" / "data" / "mnist_subset_LICENSE.txt").read_text()
    assert "CC BY-SA 3.0" in notice and "creativecommons.org/licenses/by-sa/3.0" in notice
    assert "mnist_subset.npz" in notice and "LeCun" in notice


def _setuptools_version() -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in importlib.metadata.version("setuptools").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        return (0,)


@pytest.mark.skipif(
    _setuptools_version() < (77,),
    reason="building the wheel here needs setuptools >= 77 installed (license expressions); "
    "pip install 'setuptools>=77'",
)
def test_the_wheel_carries_py_typed_and_both_licenses(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("minigrad-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = z.read(metadata).decode()
    assert "minigrad/py.typed" in names  # the package is annotated: type checkers may use it
    assert "minigrad/data/mnist_subset.npz" in names
    assert "minigrad/data/mnist_subset_LICENSE.txt" in names  # the notice beside the data
    licenses = {n.split(".dist-info/licenses/", 1)[1] for n in names if "/licenses/" in n}
    assert licenses == {"LICENSE", "minigrad/data/mnist_subset_LICENSE.txt"}
    assert "License-Expression: MIT AND CC-BY-SA-3.0" in meta
    description = meta.split("\n\n", 1)[1]
    assert description == (ROOT / PROJECT["readme"]).read_text()
