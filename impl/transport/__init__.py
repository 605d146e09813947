"""Peer transport: Raft messages between members over TCP (see `peer` and `codec`)."""
