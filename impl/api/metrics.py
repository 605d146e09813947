"""`GET /metrics`: Prometheus text with a few of etcd's own metric names, types and help texts.

Figures the node already keeps are read at scrape time (a collector, no bookkeeping on the hot
path): whether there is a leader and whether this member is it, leader changes seen, the
committed and applied indexes (etcd reports them as the `proposals_*_total` gauges), the
keyspace file's size and the part in use, and which versions run. Durations are histograms with
etcd's buckets: the WAL's fdatasync (timed at the WAL's one durability seam) and the keyspace
commit. The process collector adds `process_resident_memory_bytes`, which `etcdctl check
datascale` reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from impl.node.node import Node

log = logging.getLogger("etcdref.metrics")

SERVER_VERSION: Final = "3.4.23"
CLUSTER_VERSION: Final = "3.4"
# etcd: prometheus.ExponentialBuckets(0.001, 2, 14) for both histograms.
DURATION_BUCKETS_SECONDS: Final = tuple(0.001 * 2**power for power in range(14))


class _NodeCollector:
    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        yield _gauge(
            "etcd_server_has_leader",
            "Whether or not a leader exists. 1 is existence, 0 is not.",
            1 if node.leader is not None else 0,
        )
        yield _gauge(
            "etcd_server_is_leader",
            "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            1 if node.is_leader else 0,
        )
        yield CounterMetricFamily(
            "etcd_server_leader_changes_seen",
            "The number of leader changes seen.",
            value=node.leader_changes_seen,
        )
        yield _gauge(
            "etcd_server_proposals_committed_total",
            "The total number of consensus proposals committed.",
            node.commit_index,
        )
        yield _gauge(
            "etcd_server_proposals_applied_total",
            "The total number of consensus proposals applied.",
            node.applied_index,
        )
        size, in_use = _sizes(node)
        yield _gauge(
            "etcd_mvcc_db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes.",
            size,
        )
        yield _gauge(
            "etcd_mvcc_db_total_size_in_use_in_bytes",
            "Total size of the underlying database logically in use in bytes.",
            in_use,
        )
        for name, label, value, help_text in (
            ("etcd_server_version", "server_version", SERVER_VERSION, "Which version is running. 1 for 'server_version' label with current version."),
            ("etcd_cluster_version", "cluster_version", CLUSTER_VERSION, "Which version is running. 1 for 'cluster_version' label with current cluster version"),
            ("etcd_server_id", "server_id", f"{node.member_id:x}", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID."),
        ):  # fmt: skip
            family = GaugeMetricFamily(name, help_text, labels=[label])
            family.add_metric([value], 1)
            yield family


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _sizes(node: Node) -> tuple[int, int]:
    try:
        return node.keyspace.size_bytes(), node.keyspace.size_in_use_bytes()
    except Exception:  # the file is being swapped by a defragmentation
        return 0, 0


class NodeMetrics:
    """One member's registry; `instrument()` hooks the duration histograms in."""

    content_type: Final = "text/plain; version=0.0.4; charset=utf-8"  # etcd's (text format 0.0.4)

    def __init__(self, node: Node) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # etcd's Go client exposes no `_created` series
        self.node = node
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_NodeCollector(node))
        ProcessCollector(registry=self.registry)
        self.wal_fsync = Histogram(
            "etcd_disk_wal_fsync_duration_seconds",
            "The latency distributions of fsync called by WAL.",
            buckets=DURATION_BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.backend_commit = Histogram(
            "etcd_disk_backend_commit_duration_seconds",
            "The latency distributions of commit called by backend.",
            buckets=DURATION_BUCKETS_SECONDS,
            registry=self.registry,
        )

    def instrument(self) -> None:
        """Observe the WAL's fdatasync and the keyspace's commit durations, which the WAL and the
        node's keyspace measure and report to their observers."""
        self.node.wal.sync_observer = self.wal_fsync.observe
        self.node.keyspace_commit_observer = self.backend_commit.observe

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

