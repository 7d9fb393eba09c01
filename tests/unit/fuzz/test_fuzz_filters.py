"""Fuzz: the `filters` query parameter (Request.filters in sampan/api/http.py) and the
events filter (sampan/events/filters.py): any query string gives a dict of string lists or
InvalidParameter."""

from __future__ import annotations

import json
import urllib.parse

from hypothesis import given, settings, strategies as st

from sampan.api.http import Request
from sampan.errors import InvalidParameter
from sampan.events.filters import EventFilter, parse_time_ns, validate_filters

_S = settings(max_examples=300, deadline=None)
_J = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                  lambda i: st.one_of(st.lists(i, max_size=3),
                                      st.dictionaries(st.text(max_size=8), i, max_size=3)),
                  max_leaves=8)


def _req(query: str) -> Request:
    return Request(None, "GET", "/containers/json?" + query, {}, None, None)  # type: ignore[arg-type]


def _filters(raw: str):
    try:
        return _req("filters=" + urllib.parse.quote(raw)).filters()
    except InvalidParameter:
        return None


@_S
@given(st.one_of(st.text(max_size=60), _J.map(json.dumps)))
def test_request_filters(raw):
    f = _filters(raw)
    if f is not None:
        assert isinstance(f, dict)
        assert all(isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
                   for k, v in f.items())


@_S
@given(st.text(max_size=80))
def test_raw_query_strings(q):
    r = _req(q)
    for fn in (lambda: r.filters(), lambda: r.q_bool("all"), lambda: r.q_int("limit")):
        try:
            fn()
        except InvalidParameter:
            pass


@_S
@given(st.dictionaries(st.sampled_from(["type", "event", "container", "image", "label",
                                        "network", "volume", "scope", "daemon", "bogus"]),
                       st.lists(st.text(max_size=12), max_size=3), max_size=4),
       st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3))
def test_event_filters(filters, attrs):
    try:
        validate_filters(filters)
    except InvalidParameter:
        return
    ev = {"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": attrs},
          "scope": "local"}
    assert EventFilter(filters).include(ev) in (True, False)


@_S
@given(st.one_of(st.none(), st.text(max_size=30), st.sampled_from(
    ["1h", "-1h", "10m30s", "1e400", "nan", "inf", "2024-01-01T00:00:00Z", "123.456", "0"])))
def test_event_times(value):
    try:
        v = parse_time_ns(value, now=1_700_000_000.0)
    except InvalidParameter:
        return
    assert isinstance(v, int)
