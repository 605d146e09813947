"""The committed `*_pb2*.py(i)` files are exactly what `make proto` produces from the .proto files.

Regenerates every etcdpb/**/*.proto into a temporary directory with the same protoc plugins and
compares file by file, so a .proto edited without `make proto` (or a generated file edited by
hand) fails here instead of surprising a reader later.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[str]:
    return sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "etcdpb").rglob("*.proto"))


def regenerate(output: Path) -> None:
    bin_directory = Path(sys.executable).parent
    if not (bin_directory / "protoc-gen-mypy").exists():
        pytest.skip("mypy-protobuf's protoc plugins are not installed next to this Python")
    environment = dict(os.environ, PATH=f"{bin_directory}{os.pathsep}{os.environ.get('PATH', '')}")
    command = [
        sys.executable, "-m", "grpc_tools.protoc", "-I", ".",
        f"--python_out={output}", f"--mypy_out={output}",
        f"--grpc_python_out={output}", f"--mypy_grpc_out={output}",
        *proto_files(),
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT, env=environment, check=True, capture_output=True, timeout=120)


def test_generated_protobuf_code_matches_the_proto_files(tmp_path: Path) -> None:
    regenerate(tmp_path)
    fresh = {
        path.relative_to(tmp_path).as_posix(): path.read_bytes()
        for path in tmp_path.rglob("*")
        if path.name.endswith(GENERATED_SUFFIXES)
    }
    committed = {
        path.relative_to(ROOT).as_posix(): path.read_bytes()
        for path in (ROOT / "etcdpb").rglob("*")
        if path.name.endswith(GENERATED_SUFFIXES)
    }
    assert fresh, "protoc produced nothing"
    assert sorted(fresh) == sorted(committed), "generated files missing or left over: run `make proto`"
    stale = [name for name, content in fresh.items() if committed[name] != content]
    assert not stale, f"stale generated code (run `make proto`): {stale}"


def test_every_proto_has_an_importable_python_package() -> None:
    """Each folder holding a .proto is a package, so `etcdpb.<folder>.<name>_pb2` imports."""
    for name in proto_files():
        folder = (ROOT / name).parent
        while folder != ROOT:
            assert (folder / "__init__.py").exists(), f"{folder} lacks __init__.py"
            folder = folder.parent
