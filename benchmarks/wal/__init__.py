"""WAL benchmarks: raw fdatasync, WAL appends with fsync at several batch sizes, replay speed.

Run: `.venv/bin/python -m benchmarks.wal` (see README.md beside this file for figures).
"""
