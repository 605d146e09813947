"""spec.mvcc, spec.lease and spec.watch against the naive full-history model (models.kv).

The state machine is in harness.py; here it runs over the in-memory keyspace. Each step
compares whole responses, events and watch deliveries; see tests/quality/test_mvcc_bugs.py for
the seeded bugs this comparison catches.
"""

from tests.spec.mvcc.harness import MvccComparison

TestMvccAgainstModel = MvccComparison.TestCase
