"""The exhaustive explorer: the ci bounds are explored completely with no violation, and the explorer
finds a seeded bug with a shortest counterexample trace (so its checks can fail)."""

from __future__ import annotations

import attrs
import pytest

from models.explore import PROFILES, explore, format_report, main
from tests.quality.raft_bugs import CATALOG, HARD_TO_CATCH

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


def test_a_bug_needing_a_crash_is_found_with_loss_and_duplication_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The network reductions (a set with deliver-and-keep, inert messages collected) keep a
    shortest trace: a vote forgotten in a crash is cast again six actions in."""
    BUGS["hard-state-not-persisted"].install(monkeypatch)
    bounds = attrs.evolve(PROFILES["ci"], loss=True)
    report = explore(bounds)
    assert report.counterexample is not None
    assert "voted for" in report.problems[0]
    labels = report.counterexample
    assert labels[0] == "initial state" and len(labels) == report.depth + 1 == 7
    assert "crash 1" in labels and "restart 1" in labels


def test_stale_messages_are_kept_when_the_spec_does_not_ignore_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A message from an older term is collected only after checking that delivering it changes
    nothing: with a spec that accepts stale terms, it stays and the bug is found."""
    stale = next(bug for bug in HARD_TO_CATCH if bug.name == "accept-stale-terms")
    stale.install(monkeypatch)
    bounds = attrs.evolve(PROFILES["ci"], loss=True, duplication=False, crashes_max=0)
    report = explore(bounds)
    assert report.counterexample is not None
    assert any("term=1" in label and "->1" in label for label in report.counterexample)


def test_the_command_line_rejects_bad_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--term-max", "0"])
    assert exit_info.value.code == 2
    assert "bounds must be at least 1" in capsys.readouterr().err
