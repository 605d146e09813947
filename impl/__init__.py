"""Everything with I/O, wrapped around `spec`: WAL, snapshots, backend, transport, node, API, CLI.

Protocol logic is never written here a second time: impl calls the spec functions.
"""
