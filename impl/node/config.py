"""A member's configuration, in etcd's flag names, and the ids etcd derives from it.

Member ids are etcd's: the first 8 bytes (big-endian) of SHA-1 over the member's sorted peer
URLs joined, then the cluster token (membership/member.go computeMemberId); the cluster id is
the first 8 bytes of SHA-1 over the sorted member ids, 8 bytes each (cluster.go genID).
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from spec import constants


class ConfigError(Exception):
    """The flags cannot describe a working member; the message says which and why."""


def member_id(peer_urls: list[str], cluster_token: str) -> int:
    digest = hashlib.sha1(("".join(sorted(peer_urls)) + cluster_token).encode()).digest()
    value: int = struct.unpack(">Q", digest[:8])[0]
    return value


def cluster_id(member_ids: list[int]) -> int:
    digest = hashlib.sha1(b"".join(struct.pack(">Q", each) for each in sorted(member_ids))).digest()
    value: int = struct.unpack(">Q", digest[:8])[0]
    return value


def host_port(url: str) -> tuple[str, int]:
    """The (host, port) an `http://host:port` URL names."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname is None or parts.port is None:
        raise ConfigError(f"URL {url!r} must look like http://host:port")
    return parts.hostname, parts.port


def parse_initial_cluster(text: str) -> dict[str, list[str]]:
    """`name=url,name=url` -> {name: [urls]} (a name may appear with several URLs, as in etcd)."""
    members: dict[str, list[str]] = {}
    for item in text.split(","):
        name, separator, url = item.strip().partition("=")
        if not separator or not name or not url:
            raise ConfigError(f"--initial-cluster entry {item!r} is not name=url")
        host_port(url)
        members.setdefault(name, []).append(url)
    return members


@attrs.frozen
class MemberInfo:
    member_id: int
    name: str
    peer_urls: tuple[str, ...]


@attrs.frozen
class NodeConfig:
    name: str
    data_dir: Path
    listen_client_urls: tuple[str, ...]
    advertise_client_urls: tuple[str, ...]
    listen_peer_urls: tuple[str, ...]
    initial_advertise_peer_urls: tuple[str, ...]
    initial_cluster: dict[str, list[str]]
    initial_cluster_token: str = "etcd-cluster"
    initial_cluster_state: str = "new"
    heartbeat_interval_ms: int = constants.heartbeat_interval_ms
    election_timeout_ms: int = constants.election_timeout_ms
    snapshot_count: int = constants.snapshot_count
    snapshot_catch_up_entries: int = constants.snapshot_catch_up_entries
    max_request_bytes: int = constants.request_size_bytes_max
    pre_vote: bool = False
    quota_backend_bytes: int = 0  # 0: etcd's default (2 GiB); negative: no quota

    def check(self) -> None:
        """Refuse what etcd refuses at start, with etcd's reasons."""
        if self.heartbeat_interval_ms <= 0:
            raise ConfigError("--heartbeat-interval must be positive")
        if (
            self.election_timeout_ms
            < constants.election_timeout_heartbeats_min * self.heartbeat_interval_ms
        ):
            raise ConfigError(
                f"--election-timeout[{self.election_timeout_ms}ms] should be at least "
                f"{constants.election_timeout_heartbeats_min} times as "
                f"--heartbeat-interval[{self.heartbeat_interval_ms}ms]"
            )
        if self.initial_cluster_state not in ("new", "existing"):
            raise ConfigError("--initial-cluster-state must be 'new' or 'existing'")
        if self.name not in self.initial_cluster:
            raise ConfigError(
                f"couldn't find local name {self.name!r} in the initial cluster configuration"
            )
        if sorted(self.initial_cluster[self.name]) != sorted(self.initial_advertise_peer_urls):
            raise ConfigError(
                "--initial-cluster has "
                f"{self.name}={','.join(self.initial_cluster[self.name])} but "
                f"--initial-advertise-peer-urls has {','.join(self.initial_advertise_peer_urls)}"
            )
        if self.snapshot_count < 1:
            raise ConfigError("--snapshot-count must be at least 1")
        if self.snapshot_catch_up_entries < 1:
            raise ConfigError("--experimental-snapshot-catchup-entries must be at least 1")
        for flag, urls in (
            ("--listen-client-urls", self.listen_client_urls),
            ("--advertise-client-urls", self.advertise_client_urls),
            ("--listen-peer-urls", self.listen_peer_urls),
            ("--initial-advertise-peer-urls", self.initial_advertise_peer_urls),
        ):
            if not urls:
                raise ConfigError(f"{flag} must name at least one URL")
            for url in urls:
                try:
                    host_port(url)
                except ConfigError as error:
                    raise ConfigError(f"{flag}: {error}") from None
        shared = {host_port(url) for url in self.listen_client_urls} & {
            host_port(url) for url in self.listen_peer_urls
        }
        if shared:
            host, port = sorted(shared)[0]
            raise ConfigError(
                f"--listen-client-urls and --listen-peer-urls both name {host}:{port}; "
                "clients and peers need different ports"
            )
        owners: dict[str, str] = {}
        for name, named_urls in self.initial_cluster.items():
            for url in named_urls:
                if url in owners and owners[url] != name:
                    raise ConfigError(
                        f"--initial-cluster gives peer URL {url} to both {owners[url]} and {name}"
                    )
                owners[url] = name

    def members(self) -> list[MemberInfo]:
        return [
            MemberInfo(member_id(urls, self.initial_cluster_token), name, tuple(urls))
            for name, urls in self.initial_cluster.items()
        ]

    @property
    def member_id(self) -> int:
        return member_id(list(self.initial_advertise_peer_urls), self.initial_cluster_token)

    @property
    def cluster_id(self) -> int:
        return cluster_id([member.member_id for member in self.members()])
