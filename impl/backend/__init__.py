"""The persisted keyspace: spec.mvcc's view over LMDB (`keyspace.py`), its on-disk layout
(`records.py`) and the HashKV hash (`hash.py`)."""
