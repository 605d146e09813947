"""Print the seeded-bug catalog with how each bug was caught, at the end of the run."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    import sys

    module = sys.modules.get("tests.quality.test_raft_bugs")
    HOW_CAUGHT: dict[str, str] = getattr(module, "HOW_CAUGHT", {})
    if not HOW_CAUGHT:
        return
    terminalreporter.section("seeded Raft bugs and how each was caught")
    for name, how in sorted(HOW_CAUGHT.items()):
        terminalreporter.write_line(f"{name:<42} {how}")
