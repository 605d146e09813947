"""etcdctl 3.4 prints the same against a three-member etcdref cluster as against real etcd 3.4.

The same command script runs against both clusters; ids, endpoints, member names and terms are
normalized (they differ by construction), everything else must be byte-identical: values,
revisions, counts, error texts.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.launcher import LaunchedCluster
from tests.impl.node.harness import EtcdrefCluster

pytestmark = pytest.mark.etcd

TXN_SCRIPT = 'value("foo") = "baz"\n\nput foo qux\nget a --prefix\n\nput foo never\n\n'
TXN_FAILING_SCRIPT = 'mod("foo") < "2"\n\nput foo never\n\nget foo\n\n'

# (arguments, stdin): run in order against a fresh cluster.
SCRIPT: list[tuple[list[str], str | None]] = [
    (["put", "foo", "bar"], None),
    (["put", "foo", "baz", "--prev-kv"], None),
    (["get", "foo"], None),
    (["get", "foo", "-w", "json"], None),
    (["put", "a1", "3"], None),
    (["put", "a2", "2"], None),
    (["put", "a3", "1"], None),
    (["get", "a", "--prefix"], None),
    (["get", "a", "--prefix", "--keys-only"], None),
    (["get", "a", "--prefix", "--limit", "2", "--sort-by", "VALUE", "--order", "DESCEND"], None),
    (["get", "a2", "--from-key"], None),
    (["get", "a", "--prefix", "--rev", "5", "-w", "json"], None),
    (["get", "foo", "--rev", "2"], None),
    (["get", "foo", "--consistency", "s"], None),
    (["get", "missing"], None),
    (["txn"], TXN_SCRIPT),
    (["txn", "-w", "json"], TXN_FAILING_SCRIPT),
    (["del", "a1"], None),
    (["del", "a", "--prefix", "--prev-kv"], None),
    (["del", "nothing"], None),
    (["put", "", "x"], None),
    (["compaction", "3"], None),
    (["get", "foo", "--rev", "2"], None),
    (["get", "foo", "--rev", "99"], None),
    (["member", "list"], None),
    (["endpoint", "health"], None),
    (["endpoint", "hashkv"], None),
    (["defrag"], None),
]


def run_script(endpoints: list[str]) -> list[str]:
    transcript = []
    for arguments, stdin in SCRIPT:
        completed = subprocess.run(
            ["etcdctl", f"--endpoints={','.join(endpoints)}", *arguments],
            input=stdin, capture_output=True, text=True, timeout=30,
            env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        # etcdctl logs retries as JSON lines with timestamps; keep its "Error:" and health lines.
        errors = [
            line
            for line in completed.stderr.splitlines()
            if line.startswith("Error:") or " is healthy" in line or " is unhealthy" in line
        ]
        transcript.append(
            f"$ etcdctl {' '.join(arguments)}\nexit {completed.returncode}\n"
            f"{completed.stdout}{chr(10).join(errors)}"
        )
    return transcript


def normalize(text: str, endpoints: list[str], names: list[str]) -> str:
    for number, endpoint in enumerate(endpoints):
        text = text.replace(endpoint, f"<client{number}>")
    for number, name in enumerate(names):
        text = re.sub(rf"\b{re.escape(name)}\b", f"<name{number}>", text)
    text = re.sub(r"http://127\.0\.0\.1:\d+", "<peer-url>", text)
    text = re.sub(r"took = [0-9.]+[a-zµ]+", "took = <duration>", text)
    text = re.sub(r"\b[0-9a-f]{12,16}\b", "<member-id>", text)
    for field in ("cluster_id", "member_id", "raft_term"):
        text = re.sub(rf'"{field}":\d+', f'"{field}":0', text)
    return text


def member_list_lines(text: str) -> str:
    """Member list order follows the ids, health the answer order: compare sorted lines."""
    head, _, body = text.partition("exit 0\n")
    return head + "exit 0\n" + "\n".join(sorted(body.splitlines()))


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], list[str]]]:
    root: Path = tmp_path_factory.mktemp("etcdref")
    with EtcdrefCluster(root) as ours:
        ours_text = [
            normalize(item, ours.endpoints, ["m1", "m2", "m3"])
            for item in run_script(ours.endpoints)
        ]
    with LaunchedCluster(size=3, extra_flags=()) as etcd:
        etcd_text = [
            normalize(item, etcd.endpoints, [member.name for member in etcd.members])
            for item in run_script(etcd.endpoints)
        ]
    yield ours_text, etcd_text


@pytest.mark.parametrize("step", range(len(SCRIPT)), ids=[" ".join(a) for a, _ in SCRIPT])
def test_etcdctl_prints_what_etcd_prints(
    transcripts: tuple[list[str], list[str]], step: int
) -> None:
    ours, etcd = transcripts
    if SCRIPT[step][0][:2] in (["member", "list"], ["endpoint", "health"], ["endpoint", "hashkv"]):
        assert member_list_lines(ours[step]) == member_list_lines(etcd[step])
    else:
        assert ours[step] == etcd[step]


def test_the_script_exercises_errors_and_json(transcripts: tuple[list[str], list[str]]) -> None:
    """Guard against a vacuous comparison: the script must reach errors and revisions."""
    ours, _ = transcripts
    joined = "\n".join(ours)
    assert "Error: etcdserver: key is not provided" in joined
    assert "Error: etcdserver: mvcc: required revision has been compacted" in joined
    assert '"mod_revision":3' in joined
    assert "is healthy: successfully committed proposal" in joined
    assert json.loads(ours[3].split("\n", 2)[2])["kvs"][0]["value"] == "YmF6"
