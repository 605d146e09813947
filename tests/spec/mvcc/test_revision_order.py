"""Revision pairs order as etcd's revisions do: by main revision, then by sub revision."""

from __future__ import annotations

import operator
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spec.mvcc import Revision, RevisionPair

pairs = st.builds(RevisionPair, st.integers(0, 5).map(Revision), st.integers(0, 5))


@pytest.mark.parametrize("compare", [operator.lt, operator.le, operator.gt, operator.ge, operator.eq])
@given(pairs, pairs)
def test_pairs_compare_as_main_then_sub(
    compare: Callable[[object, object], bool], first: RevisionPair, second: RevisionPair
) -> None:
    assert compare(first, second) == compare((first.main, first.sub), (second.main, second.sub))
