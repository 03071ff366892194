"""The release wheel (scripts/build-wheels.sh, run by scripts/test.sh before
the suite): auditwheel reports the intended platform tag, and the wheel
installs into a fresh virtual environment with no Rust toolchain on PATH and
runs ``kafkalake demo``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kafkalake

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "manylinux_2_28_x86_64"


@pytest.fixture(scope="module")
def wheel() -> Path:
    found = sorted((ROOT / "dist").glob(f"kafkalake-{kafkalake.__version__}-cp311-abi3-*.whl"))
    assert found, "no release wheel in dist/: run scripts/build-wheels.sh first"
    assert len(found) == 1, f"more than one wheel of this version in dist/: {found}"
    assert found[0].name.endswith(f"-{PLATFORM}.whl"), found[0].name
    return found[0]


def test_auditwheel_reports_the_platform_tag(wheel: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tag = re.search(r'platform tag: "(manylinux_2_(\d+)_x86_64)"', out)
    assert tag, out
    # The wheel asks for no newer glibc than its name says (older is fine).
    assert int(tag.group(2)) <= 28, out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_wheel_installs_and_runs_the_demo_without_rust(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Only the new environment and the system's own tools: no cargo, no rustc.
    path = os.pathsep.join([str(venv / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    for tool in ("cargo", "rustc", "maturin"):
        assert shutil.which(tool, path=path) is None, f"{tool} is on the test's PATH"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CARGO", "RUST", "VIRTUAL_ENV"))
    }
    env["PATH"] = path
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr
    demo = subprocess.run(
        [str(venv / "bin" / "kafkalake"), "demo"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr
    # The package ran from the new environment, not from this checkout.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import kafkalake; print(kafkalake.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(venv)), where
    assert "distinct (partition, offset) pairs: 20,000 (produced: 20,000)" in demo.stdout
