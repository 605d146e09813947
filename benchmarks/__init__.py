"""Reproducible benchmarks, run side by side with real etcd where there is a counterpart."""
