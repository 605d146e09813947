"""Benchmarks of the Raft specification: spec steps per second and explorer states per second."""
