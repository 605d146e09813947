"""`etcdref wal dump|verify`: one line per record, and an exit status that says what to do."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from impl.wal.cli import VerifyStatus, dump, main
from impl.wal.files import list_segments
from tests.impl.wal.helpers import write_log

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "impl.cli", "wal", *arguments],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def tail_segment(directory: Path) -> Path:
    return directory / list_segments(directory)[-1].file_name()


def test_dump_prints_one_line_per_record(tmp_path: Path) -> None:
    write_log(tmp_path / "wal", 10, batch_size=5, segment_size_bytes=1 << 20)
    out = io.StringIO()
    assert dump(tmp_path / "wal", out) == VerifyStatus.VALID
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
    kinds = [line.split()[1] for line in lines]
    assert kinds == ["crc", "metadata", "snapshot"] + (["entry"] * 5 + ["state"]) * 2
    assert "term=1    index=3" in lines[5]


def test_verify_exit_statuses(tmp_path: Path) -> None:
    directory = tmp_path / "wal"
    write_log(directory, 40, segment_size_bytes=2048)
    valid = run_cli("verify", str(directory))
    assert valid.returncode == VerifyStatus.VALID and valid.stdout.startswith("valid:"), valid

    tail = tail_segment(directory)
    content = bytearray(tail.read_bytes())
    end = content.rstrip(b"\0").__len__()
    torn = content[: end - 3]  # the last frame loses its end: a torn write
    tail.write_bytes(bytes(torn))
    repairable = run_cli("verify", str(directory))
    assert repairable.returncode == VerifyStatus.REPAIRABLE_TAIL, repairable
    assert "repairable torn tail" in repairable.stderr

    first = directory / list_segments(directory)[0].file_name()
    damaged = bytearray(first.read_bytes())
    damaged[100] ^= 0x01
    first.write_bytes(bytes(damaged))
    corrupt = run_cli("verify", str(directory))
    assert corrupt.returncode == VerifyStatus.CORRUPT, corrupt
    assert f"{first} at offset" in corrupt.stderr and "Traceback" not in corrupt.stderr

    dumped = run_cli("dump", str(directory))
    assert dumped.returncode == VerifyStatus.CORRUPT
    assert "CORRUPT at" in dumped.stdout


@pytest.mark.parametrize(
    "arguments", [["verify", "/nonexistent/wal"], ["dump", "/nonexistent/wal"]]
)
def test_missing_directory_is_a_clear_error(arguments: list[str]) -> None:
    completed = run_cli(*arguments)
    assert completed.returncode == VerifyStatus.UNREADABLE
    assert "does not exist" in completed.stderr and "Traceback" not in completed.stderr


def test_wrong_flags_are_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["verify"])
    assert exited.value.code == 2
    completed = run_cli("frobnicate")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
