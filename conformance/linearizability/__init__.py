"""Linearizability checking of recorded etcd histories (Wing–Gong/Lowe search, as porcupine)."""
