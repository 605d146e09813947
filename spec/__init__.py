"""The executable specification of etcd: pure, typed functions with no I/O.

`spec.raft` is the consensus protocol, `spec.mvcc` the multi-version key-value store,
`spec.lease` and `spec.watch` the lease and watch rules, `spec.errors` etcd's error table,
and `spec.constants` every limit. Imports: the standard library and attrs only.
"""
