"""The exhaustive explorer: the ci bounds are explored completely with no violation, and the explorer
finds a seeded bug with a shortest counterexample trace (so its checks can fail)."""

from __future__ import annotations

import pytest

from models.explore import PROFILES, explore, format_report, main
from tests.quality.raft_bugs import CATALOG

BUGS = {bug.name: bug for bug in CATALOG}


def test_the_ci_bounds_are_explored_completely_without_violation() -> None:
    report = explore(PROFILES["ci"])
    print(format_report(PROFILES["ci"], report))
    assert report.counterexample is None, format_report(PROFILES["ci"], report)
    assert report.complete
    assert report.distinct_states > 10_000  # the bounds reach well beyond one election


@pytest.mark.parametrize("name", ["vote-twice-in-term", "vote-without-log-check"])
def test_a_seeded_bug_is_found_with_a_shortest_trace(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    BUGS[name].install(monkeypatch)
    report = explore(PROFILES["small"])
    assert report.counterexample is not None, f"{name} not found"
    assert report.counterexample[0] == "initial state"
    assert len(report.counterexample) == report.depth + 1
    text = format_report(PROFILES["small"], report)
    assert "VIOLATION" in text and "shortest trace" in text


def test_breadth_first_order_gives_the_shortest_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two votes in one term need: two timeouts, two vote requests delivered to one voter. Nothing shorter."""
    BUGS["vote-twice-in-term"].install(monkeypatch)
    report = explore(PROFILES["small"])
    assert report.counterexample is not None
    labels = report.counterexample[1:]
    assert sum(label.startswith("timeout") for label in labels) >= 2
    assert report.depth <= 15


def test_the_command_line_rejects_bad_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--term-max", "0"])
    assert exit_info.value.code == 2
    assert "bounds must be at least 1" in capsys.readouterr().err
