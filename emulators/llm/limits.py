"""Rate limits: requests-per-minute and tokens-per-minute token buckets per API key, in platform seconds.

Providers enforce a per-minute limit over shorter intervals ("60 RPM may be enforced as 1 request per
second"), so a bucket holds ``burst_s`` seconds of refill (default 1 s): at RPM 60, ten calls within one
platform second get one answer and nine 429s. A request admitted by both buckets pays one request and its
tokens (prompt + completion); a request larger than a whole bucket is admitted when the bucket is full and
leaves it in debt, so it is never refused forever.

A refused request is told when its turn comes (``retry-after``) and that turn is held for it: the refusal
books the next free slot (the bucket goes into debt), and the first request that arrives after the slot
time claims it. So a burst that retries as told drains one by one, as a fair queue would, instead of
retrying in lockstep; a slot nobody claims within ``CLAIM_WINDOW_S`` is forfeited (its tokens stay spent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["CLAIM_WINDOW_S", "Admission", "Bucket", "RateLimiter", "limit_headers"]

CLAIM_WINDOW_S = 60.0


@dataclass
class Bucket:
    """A token bucket: ``rate`` tokens per platform second, holding at most ``capacity``."""

    rate: float
    capacity: float
    tokens: float = field(default=-1.0)
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def refill(self, now: float) -> None:
        """Add what accrued since the last update."""
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def need(self, cost: float) -> float:
        """Tokens that must be present to admit ``cost`` (a request bigger than the bucket needs a full one)."""
        return min(cost, self.capacity)

    def wait(self, cost: float) -> float:
        """Platform seconds until ``cost`` could be admitted (0: now)."""
        missing = self.need(cost) - self.tokens
        return max(0.0, missing / self.rate)

    def remaining(self) -> int:
        """Whole tokens available now."""
        return max(0, math.floor(self.tokens))


@dataclass(frozen=True)
class Admission:
    """The limiter's answer: admitted, or refused with the platform seconds to wait and what ran out."""

    admitted: bool
    retry_after_s: float = 0.0
    limit: str | None = None  # "requests" | "tokens" when refused
    rpm: int | None = None
    tpm: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float = 0.0
    reset_tokens_s: float = 0.0


@dataclass
class _Key:
    requests: Bucket | None
    tokens: Bucket | None
    slots: list[tuple[float, float]] = field(default_factory=list)  # booked (time, tokens) for refused calls


class RateLimiter:
    """Per-key RPM/TPM buckets; ``admit`` is called once per request with the platform time ``now``."""

    def __init__(self, rpm: int | None = None, tpm: int | None = None, burst_s: float = 1.0) -> None:
        self.rpm, self.tpm, self.burst_s = rpm, tpm, burst_s
        self._keys: dict[str, _Key] = {}

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return self.rpm is not None or self.tpm is not None

    def _key(self, key: str, now: float) -> _Key:
        k = self._keys.get(key)
        if k is None:
            req = Bucket(self.rpm / 60.0, max(1.0, self.rpm / 60.0 * self.burst_s), updated=now) if self.rpm else None
            tok = Bucket(self.tpm / 60.0, max(1.0, self.tpm / 60.0 * self.burst_s), updated=now) if self.tpm else None
            k = self._keys[key] = _Key(req, tok)
        return k

    def admit(self, key: str, cost_tokens: int, now: float) -> Admission:
        """Admit one request of ``cost_tokens`` tokens for ``key`` at platform time ``now``, or refuse it."""
        if not self.enabled:
            return Admission(True)
        k = self._key(key, now)
        buckets = [b for b in (k.requests, k.tokens) if b is not None]
        for b in buckets:
            b.refill(now)
        k.slots = [s for s in k.slots if s[0] + CLAIM_WINDOW_S >= now]
        due = next((s for s in k.slots if s[0] <= now + 1e-9), None)
        if due is not None:
            # A booked slot: its request token (and its tokens) were paid when it was booked.
            k.slots.remove(due)
            if k.tokens is not None:
                k.tokens.tokens -= cost_tokens - due[1]
            return self._answer(k, True)
        waits = {"requests": k.requests.wait(1) if k.requests else 0.0,
                 "tokens": k.tokens.wait(cost_tokens) if k.tokens else 0.0}
        if max(waits.values()) <= 0 and not k.slots:
            if k.requests:
                k.requests.tokens -= 1
            if k.tokens:
                k.tokens.tokens -= cost_tokens
            return self._answer(k, True)
        # Refused: book the slot when the buckets (after the slots already booked) can pay for it.
        limit = max(waits, key=lambda n: waits[n])
        if k.requests:
            k.requests.tokens -= 1
        if k.tokens:
            k.tokens.tokens -= cost_tokens
        at = now + max((-(b.tokens) / b.rate for b in buckets), default=0.0)
        at = max(at, *(s[0] for s in k.slots)) if k.slots else at
        k.slots.append((at, float(cost_tokens)))
        k.slots.sort()
        if waits[limit] <= 0:
            limit = "requests" if k.requests else "tokens"
        return self._answer(k, False, retry_after=at - now, limit=limit)

    def _answer(self, k: _Key, admitted: bool, retry_after: float = 0.0, limit: str | None = None) -> Admission:
        req, tok = k.requests, k.tokens
        return Admission(
            admitted, retry_after, limit, self.rpm, self.tpm,
            req.remaining() if req else None, tok.remaining() if tok else None,
            max(0.0, (req.capacity - req.tokens) / req.rate) if req else 0.0,
            max(0.0, (tok.capacity - tok.tokens) / tok.rate) if tok else 0.0,
        )


def limit_headers(provider: str, adm: Admission) -> dict[str, str]:
    """The rate-limit headers a provider sends with every answer (none when no limit is set).

    OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``; Anthropic:
    ``anthropic-ratelimit-{requests,tokens}-{limit,remaining}``. Reset times are platform seconds.
    """
    out: dict[str, str] = {}
    for dim, limit, remaining, reset in (("requests", adm.rpm, adm.remaining_requests, adm.reset_requests_s),
                                         ("tokens", adm.tpm, adm.remaining_tokens, adm.reset_tokens_s)):
        if limit is None or remaining is None:
            continue
        if provider == "anthropic":
            out[f"anthropic-ratelimit-{dim}-limit"] = str(limit)
            out[f"anthropic-ratelimit-{dim}-remaining"] = str(remaining)
        else:
            out[f"x-ratelimit-limit-{dim}"] = str(limit)
            out[f"x-ratelimit-remaining-{dim}"] = str(remaining)
            out[f"x-ratelimit-reset-{dim}"] = _duration(reset)
    return out


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}m{secs:.0f}s" if minutes >= 1 else f"{secs:.3g}s"
