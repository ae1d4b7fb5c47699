"""JSON on the hot path: orjson where it is installed, and the standard library's results for any JSON value.

A warm call encodes or decodes JSON about ten times between the gateway, the engine and the instance (the
task, the invoke and result frames, the store row, the response). With the standard library those were
the largest single share of a call's CPU (``docs/performance.md``); orjson does each in a tenth of the
time. Where orjson refuses what the standard library accepts (``NaN`` in the input, a lone surrogate,
nesting deeper than 1024, an integer beyond 64 bits to encode, a subclass, a dataclass or datetime it would
encode its own way) or would read it otherwise (an integer beyond 64 bits, which it makes a float), the call
is made with the standard library, so callers get its values and its errors. Two differences remain, both
for values that are not JSON: encoding writes ``null`` where ``json.dumps`` writes ``NaN``, and a UUID or an
Enum is encoded where ``json.dumps`` raises. So code that must refuse what is not JSON checks with the
standard library first: an agent's output and a task from the Python API (``json.dumps(allow_nan=False)``),
``ctx.state``, ``ctx.emit`` and ``ctx.checkpoint`` (``json.dumps``, as before).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["ENGINE", "dumps", "loads"]

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; a platform without its wheel still works
    orjson = None  # type: ignore[assignment]

ENGINE = "orjson" if orjson is not None else "json"
# Types orjson encodes its own way go to ``default`` or, without one, to the stdlib (which decides as always).
_OPTIONS = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
            | orjson.OPT_PASSTHROUGH_SUBCLASS) if orjson is not None else 0
# orjson reads an integer beyond 64 bits as a float, silently: an input with a run of 20 digits (in a number
# or a string alike) goes to the stdlib, which keeps it exact. The run is found in C by mapping every digit to
# "0" and everything else to " " (0.4 us for a result frame; a regex search took 2.5, four times the parse).
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_RUN = b"0" * 20


def dumps(obj: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> bytes:
    """``obj`` as compact JSON bytes (``json.dumps(obj, separators=(",", ":"))``, UTF-8, no NaN)."""
    if orjson is not None:
        option = _OPTIONS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
        try:
            return orjson.dumps(obj, default=default, option=option)
        except TypeError:
            pass  # a type or value orjson does not take (a 65-bit int, a surrogate): the stdlib decides
    # ASCII with escapes: a lone surrogate stays valid JSON (UTF-8 cannot carry it).
    return json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys, default=default).encode()


def _long_digits(data: bytes | str) -> bool:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return _RUN in raw.translate(_DIGITS)


def loads(data: bytes | str, *, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """``json.loads(data)``: the same value, or the same error."""
    if orjson is not None and not _long_digits(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # something orjson is stricter about: the stdlib's answer (or error) stands
    if parse_constant is not None:
        return json.loads(data, parse_constant=parse_constant)
    return json.loads(data)
