"""The hot path's JSON (orjson with the standard library's answers): same values, same errors, same edge cases."""

from __future__ import annotations

import json
import math

import pytest

from emulators import jsonfast
from emulators.jsonfast import dumps, loads


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def test_orjson_is_the_engine_where_installed() -> None:
    """The dependency is installed the README's way, so the fast path is the one measured and tested."""
    assert jsonfast.ENGINE == "orjson"


@pytest.mark.parametrize("text", [
    '{"a":1,"b":[1,2.5,"x",null,true,false],"c":{"d":"é"}}',
    '123456789012345678901234567890',  # beyond 64 bits: orjson would make it a float
    '{"a":[1,-18446744073709551616]}',  # just past 64 bits, nested
    '18446744073709551615',  # the largest 64-bit unsigned: orjson keeps it exact
    '"\\ud800"',  # a lone surrogate escape
    'NaN',  # the stdlib's default accepts it; callers that must not pass parse_constant
    '  {"a": 1}  \n',
])
def test_loads_gives_the_standard_librarys_value(text: str) -> None:
    """Every input decodes to what ``json.loads`` gives, including what orjson alone would refuse."""
    got, want = loads(text.encode()), json.loads(text)
    if isinstance(want, float) and math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == want


@pytest.mark.parametrize("text", ["", "{", "[1,]", "{'a': 1}", "Infinity", "[1, NaN]"])
def test_loads_raises_the_standard_librarys_error(text: str) -> None:
    """Bad input raises the same exception with the same message as ``json.loads`` (the gateway's 400 quotes it)."""
    with pytest.raises(ValueError) as want:
        json.loads(text, parse_constant=_no_constant)
    with pytest.raises(ValueError) as got:
        loads(text.encode(), parse_constant=_no_constant)
    assert type(got.value) is type(want.value) and str(got.value) == str(want.value)


def test_loads_of_text_keeps_long_integers_exact() -> None:
    """A str input (a state store's row) with a long integer decodes as the stdlib decodes it."""
    assert loads('{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}


def test_deep_nesting_fails_as_the_standard_librarys_does() -> None:
    """Nesting beyond either library's depth raises the stdlib's RecursionError (the gateway answers 400 for it)."""
    text = ("[" * 5000 + "]" * 5000).encode()
    with pytest.raises(RecursionError):
        json.loads(text)
    with pytest.raises(RecursionError):
        loads(text)


@pytest.mark.parametrize("value", [
    {"a": 1, "b": [1, 2.5, "x", None, True], "c": {"d": "é"}},
    {1: "int key", None: "none key", False: "bool key", 2.5: "float key"},
    2 ** 70,  # orjson refuses: the stdlib encodes it
    {"s": "\ud800"},  # a lone surrogate: valid JSON only escaped
    (1, 2, 3),
    0.1 + 0.2,
])
def test_dumps_round_trips_to_what_the_standard_library_writes(value: object) -> None:
    """The bytes decode (with the stdlib) to the same value ``json.dumps`` would have written."""
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


def test_dumps_is_compact_and_sorts_keys_on_request() -> None:
    """No spaces; ``sort_keys`` orders the keys as the stdlib's does."""
    assert dumps({"b": 1, "a": [1, 2]}) == b'{"b":1,"a":[1,2]}'
    assert dumps({"b": 1, "a": {"d": 1, "c": 2}}, sort_keys=True) == b'{"a":{"c":2,"d":1},"b":1}'


def test_dumps_uses_default_for_unknown_types() -> None:
    """``default`` turns what neither library knows into JSON, as in the store's rows (``default=repr``)."""
    class Odd:
        def __repr__(self) -> str:
            return "Odd()"

    assert json.loads(dumps({"x": Odd()}, default=repr)) == {"x": "Odd()"}
    with pytest.raises(TypeError):
        dumps({"x": Odd()})


def test_types_orjson_encodes_its_own_way_go_to_default_as_in_the_stdlib() -> None:
    """A dataclass, a datetime, a str subclass: encoded as ``json.dumps`` encodes them (``default``, else refused)."""
    import dataclasses
    import datetime

    @dataclasses.dataclass
    class Point:
        x: int

    class Tag(str):
        pass

    when = datetime.datetime(2026, 12, 6, 7, 0)
    for value in (Point(1), when):
        assert json.loads(dumps({"v": value}, default=repr)) == json.loads(json.dumps({"v": value}, default=repr))
        with pytest.raises(TypeError):
            dumps({"v": value})
    assert json.loads(dumps({"t": Tag("x")})) == {"t": "x"}


def test_agent_events_and_checkpoints_are_checked_by_the_stdlib() -> None:
    """ctx.emit and ctx.checkpoint refuse what json.dumps refuses (a UUID), though the frames use orjson."""
    import uuid

    from emulators.runtime.context import AgentContext
    from emulators.runtime.ptime import PlatformTimer

    sent: list[dict[str, object]] = []
    ctx = AgentContext(invocation_id="i", pattern="serverless", instance_id="i-1", session_id=None, timeout_s=3.0,
                       timer=PlatformTimer(cpu_factor=1.0, time_scale=1.0, cpu=lambda: 0.0),
                       send=lambda msg, raw=None: sent.append(msg), block=None, state={}, checkpoints={},
                       function_name="f", memory_mb=128, llm_time=None)
    with pytest.raises(TypeError):
        ctx.emit({"id": uuid.uuid4()})
    with pytest.raises(TypeError):
        ctx.checkpoint("k", uuid.uuid4())
    ctx.emit({"step": 1})
    assert sent == [{"op": "emit", "id": "i", "event": {"step": 1}}] and ctx.restore("k") is None
