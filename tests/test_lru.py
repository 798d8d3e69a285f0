"""nas.lru: a bounded mapping that drops its least recently used entry."""
import copy
import json

import pytest
from hypothesis import given, strategies as st

from nas.errors import NasError
from nas.lru import LRU


def test_item15_keeps_the_most_recently_used():
    c = LRU(2)
    c["a"], c["b"] = 1, 2
    assert c["a"] == 1  # a read makes 'a' the most recent
    c["c"] = 3
    assert list(c) == ["a", "c"] and c.evicted == 1
    assert c.get("a") == 1 and c.get("b", "gone") == "gone"
    c.setdefault("d", {})["x"] = 1  # the inserted default itself is stored
    assert dict(c) == {"a": 1, "d": {"x": 1}} and c.evicted == 2
    assert c.setdefault("a", 9) == 1 and list(c) == ["d", "a"]
    c.update({"e": 5, "f": 6})
    assert list(c) == ["e", "f"] and json.loads(json.dumps(c)) == {"e": 5, "f": 6}
    assert copy.deepcopy(c).size == 2 and copy.copy(c) == c


@pytest.mark.parametrize("size", [0, -1, 1.5, True, None])
def test_item15_size_is_checked(size):
    with pytest.raises(NasError, match="cache size must be a whole number"):
        LRU(size)


@given(size=st.integers(1, 6), ops=st.lists(st.tuples(st.booleans(), st.integers(0, 9)), max_size=60))
def test_item15_matches_a_reference_lru(size, ops):
    """Against a list-based reference: the same keys, in the same order, never more than ``size``."""
    c, ref = LRU(size), []
    for write, key in ops:
        if write:
            c[key] = key
        elif key in c:
            c[key]
        if write or key in ref:
            ref = [k for k in ref if k != key] + [key]
            ref = ref[-size:]
        assert list(c) == ref and len(c) <= size
