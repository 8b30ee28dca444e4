"""The nesting check on the request bytes gives the answer a walk of the decoded value gives, whatever the
strings hold (brackets, quotes, backslashes, escapes) and however the JSON is written."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.web.bodies import nesting_within

TRICKY_TEXT = st.text(alphabet=st.sampled_from(list('[]{}"\\/ab\n\t\u00e9\u2028')), max_size=12)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TRICKY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TRICKY_TEXT, children, max_size=4),
    max_leaves=60,
)


def depth(value: Any) -> int:
    """The oracle: the deepest nesting of objects and arrays, by walking the decoded value."""
    if isinstance(value, dict):
        return 1 + max((depth(child) for child in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(child) for child in value), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(value=JSON, limit=st.integers(1, 8))
def test_the_byte_check_agrees_with_a_walk_of_the_value(value: Any, limit: int) -> None:
    expected = depth(value) <= limit
    for text in (
        orjson.dumps(value),
        json.dumps(value).encode(),  # \\uXXXX escapes
        json.dumps(value, ensure_ascii=False, indent=2).encode(),
    ):
        assert nesting_within(text, limit) is expected, text


def test_a_chain_one_level_too_deep_is_refused_and_the_limit_is_not() -> None:
    assert nesting_within(b"[" * 64 + b"]" * 64, 64)
    assert not nesting_within(b"[" * 65 + b"]" * 65, 64)
    assert not nesting_within(b'{"a":' * 65 + b"1" + b"}" * 65, 64)
    assert nesting_within(b'["' + b"[" * 500 + b'"]', 1)  # brackets in a string are text
    assert nesting_within(b'["\\\\", "\\"[[[", {}]', 2)
