"""etcdctl's member commands print the same against a three-member etcdref cluster as against
real etcd 3.4 doing the same steps: add (with the lines to start the new member), list,
remove, update, promote, and etcd's refusals (unhealthy cluster while a voter is unstarted,
Peer URLs already exists, member not found, too many learners, a learner not in sync, a voter
that is no learner, not enough started members). Ids, URLs and member names are normalized;
everything else must be byte-identical."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator

import pytest

from conformance.launcher import LaunchedCluster
from impl.node.cli import free_ports
from impl.node.membership import HEALTH_INTERVAL_SECONDS

pytestmark = pytest.mark.etcd


def etcdctl(endpoint: str, *arguments: str) -> str:
    completed = subprocess.run(
        ["etcdctl", f"--endpoints={endpoint}", *arguments],
        capture_output=True, text=True, timeout=30,
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    errors = [line for line in completed.stderr.splitlines() if line.startswith("Error:")]
    return (
        f"$ etcdctl {' '.join(arguments)}\nexit {completed.returncode}\n"
        f"{completed.stdout}{chr(10).join(errors)}"
    )


def new_id(output: str) -> str:
    match = re.search(r"Member +([0-9a-f]+) added", output)  # etcdctl pads ids: %16x
    assert match is not None, output
    return match.group(1)


def ids_by_name(endpoint: str) -> dict[str, str]:
    listing = etcdctl(endpoint, "member", "list").split("\n", 2)[2]
    return {line.split(", ")[2]: line.split(", ")[0] for line in listing.splitlines() if line}


def run_script(cluster: LaunchedCluster) -> tuple[list[str], list[str]]:
    """The same steps on any cluster, all sent to the leader (removed members stop); returns
    the transcript and the names of the leader and the two followers, in that order."""
    leader_index = cluster.leader_index(timeout_seconds=20)
    assert leader_index is not None
    leader = cluster.members[leader_index]
    followers = [member for member in cluster.members if member is not leader]
    endpoint = leader.endpoint
    ports = free_ports(4)
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    time.sleep(HEALTH_INTERVAL_SECONDS + 1)  # etcd adds members only when peers are connected
    ids = ids_by_name(endpoint)
    transcript = []

    def step(*arguments: str) -> str:
        output = etcdctl(endpoint, *arguments)
        transcript.append(output)
        return output

    unstarted = new_id(step("member", "add", "new1", f"--peer-urls={urls[0]}"))
    step("member", "list")
    step("member", "add", "new2", f"--peer-urls={urls[1]}")  # unhealthy: new1 never connected
    step("member", "remove", unstarted)
    step("member", "remove", unstarted)
    step("member", "add", "taken", f"--peer-urls={leader.peer_url}")
    learner = new_id(step("member", "add", "learner1", f"--peer-urls={urls[2]}", "--learner"))
    step("member", "list")
    step("member", "promote", learner)
    step("member", "add", "learner2", f"--peer-urls={urls[3]}", "--learner")
    step("member", "promote", ids[followers[0].name])
    step("member", "update", "1234", f"--peer-urls={urls[3]}")
    step("member", "update", ids[followers[0].name], f"--peer-urls={followers[0].peer_url}")
    step("member", "update", ids[followers[0].name], f"--peer-urls={leader.peer_url}")
    step("member", "remove", learner)
    step("member", "add", "new3", f"--peer-urls={urls[1]}")
    step("member", "remove", ids[followers[0].name])
    step("member", "remove", ids[followers[1].name])  # leaves the leader the only started voter
    step("member", "list")
    return transcript, [leader.name, followers[0].name, followers[1].name]


def normalize(text: str, names: list[str]) -> str:
    for number, name in enumerate(names):
        text = re.sub(rf"\b{re.escape(name)}\b", f"<name{number}>", text)
    text = re.sub(r"http://127\.0\.0\.1:\d+", "<url>", text)
    text = re.sub(r" *\b[0-9a-f]{12,16}\b", " <id>", text).replace("\n <id>", "\n<id>")
    head, _, body = text.partition("\n")
    lines = body.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("ETCD_INITIAL_CLUSTER="):  # in member id order, which differs
            items = sorted(line.split("=", 1)[1].strip('"').split(","))
            lines[number] = f'ETCD_INITIAL_CLUSTER="{",".join(items)}"'
    if head.startswith("$ etcdctl member list"):
        lines = lines[:1] + sorted(lines[1:])
    return head + "\n" + "\n".join(lines)


@pytest.fixture(scope="module")
def transcripts() -> Iterator[tuple[list[str], list[str]]]:
    results = []
    for server in ("etcdref", "etcd"):
        with LaunchedCluster(size=3, server=server) as cluster:  # type: ignore[arg-type]
            transcript, names = run_script(cluster)
            results.append([normalize(item, names) for item in transcript])
    yield results[0], results[1]


STEPS = 19


@pytest.mark.parametrize("step", range(STEPS))
def test_member_commands_print_what_etcd_prints(
    transcripts: tuple[list[str], list[str]], step: int
) -> None:
    ours, etcd = transcripts
    assert len(ours) == len(etcd) == STEPS
    assert ours[step] == etcd[step]


def test_the_script_reaches_each_refusal(transcripts: tuple[list[str], list[str]]) -> None:
    """Guard against a vacuous comparison."""
    _, etcd = transcripts
    joined = "\n".join(etcd)
    for error in (
        "etcdserver: unhealthy cluster",
        "etcdserver: member not found",
        "etcdserver: Peer URLs already exists",
        "etcdserver: can only promote a learner member which is in sync with leader",
        "etcdserver: too many learner members in cluster",
        "etcdserver: can only promote a learner member\n",
        "etcdserver: re-configuration failed due to not enough started members",
    ):
        assert f"Error: {error}" in joined + "\n", error
    assert 'ETCD_INITIAL_CLUSTER_STATE="existing"' in joined
