"""The waits a 429 imposes: a client told to retry after ``retry-after`` sleeps the scaled ``retry-after-ms``.

That sleep is an emulated wait like a model's latency: without counting it so, the instance would take
it for real time, and a 1 s backoff at ``time_scale=0.01`` would cost 10 ms of platform time instead of
1 s. The endpoint announces the wait when it refuses a call, and ends it when the same invocation retries.
On the virtual clock the client is told to retry at once (``retry-after-ms`` of a microsecond) and the
endpoint holds the retry until the back-off's platform deadline (``left``): the wait is then a deadline
on the clock like any other, and time can jump over it.
The openai and anthropic SDKs number their attempts (``x-stainless-retry-count``), so a first attempt made
in parallel does not end a backoff; a request without that header is taken for a retry. Which backoff a
retry ends cannot be known from the request (retries of identical calls look alike): it is the one due
soonest.
"""

from __future__ import annotations

from ..clock import Clock

__all__ = ["Backoffs"]

Key = tuple[str | None, str | None]  # (caller, invocation)


class Backoffs:
    """Pending retry-after waits per caller and invocation."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._pending: dict[Key, list[tuple[float, float]]] = {}  # (platform start, platform seconds)

    def begin(self, key: Key, platform_s: float) -> None:
        """A call of ``key`` was refused with a wait of ``platform_s``."""
        self._pending.setdefault(key, []).append((self.clock.now(), platform_s))

    def _pop(self, key: Key, retry_count: str | None) -> tuple[float, float] | None:
        pending = self._pending.get(key)
        if not pending or retry_count == "0":
            return None
        due = [began + length for began, length in pending]
        began, platform_s = pending.pop(due.index(min(due)))
        if not pending:
            del self._pending[key]
        return began, platform_s

    def end(self, key: Key, retry_count: str | None) -> float | None:
        """A request of ``key`` arrived: the platform seconds the backoff it ends lasted, or None."""
        got = self._pop(key, retry_count)
        if got is None:
            return None
        began, platform_s = got
        return min(platform_s, self.clock.now() - began)

    def left(self, key: Key, retry_count: str | None) -> float | None:
        """Virtual clock: a retry of ``key`` arrived; the platform seconds of its back-off still to wait, or None."""
        got = self._pop(key, retry_count)
        if got is None:
            return None
        began, platform_s = got
        return max(0.0, began + platform_s - self.clock.now())
