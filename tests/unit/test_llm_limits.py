"""Rate-limit buckets: per-second quantization of RPM/TPM, retry-after slots held for refused callers,
per-key isolation, and oversized requests."""

from __future__ import annotations

import pytest

from emulators.llm.limits import CLAIM_WINDOW_S, Bucket, RateLimiter, limit_headers


def test_bucket_refills_at_its_rate_up_to_capacity() -> None:
    """A bucket gains rate tokens per second and never more than its capacity."""
    b = Bucket(rate=2.0, capacity=4.0)
    b.tokens = 0.0
    b.refill(1.0)
    assert b.tokens == 2.0
    b.refill(10.0)
    assert b.tokens == 4.0 and b.wait(1) == 0.0


def test_rpm_60_admits_one_of_ten_simultaneous_calls() -> None:
    """At RPM 60 (one per second), ten calls at once: one admitted, nine refused with slots 1..9 s ahead."""
    lim = RateLimiter(rpm=60)
    answers = [lim.admit("k", 10, now=0.0) for _ in range(10)]
    assert [a.admitted for a in answers] == [True] + [False] * 9
    assert [a.retry_after_s for a in answers[1:]] == pytest.approx([float(k) for k in range(1, 10)])
    assert all(a.limit == "requests" and a.remaining_requests == 0 for a in answers[1:])


def test_refused_callers_get_their_slot_when_they_come_back() -> None:
    """Each refused caller that returns after its retry-after is admitted, even if they return out of order."""
    lim = RateLimiter(rpm=60)
    waits = [lim.admit("k", 1, 0.0).retry_after_s for _ in range(4)][1:]
    assert lim.admit("k", 1, 2.05).admitted  # the caller told 2 s comes first, a little late
    assert lim.admit("k", 1, 2.06).admitted  # the one told 1 s comes after: its slot is still held
    assert not lim.admit("k", 1, 2.07).admitted  # a newcomer waits behind the last slot
    assert lim.admit("k", 1, waits[2]).admitted


def test_a_newcomer_does_not_jump_the_queue() -> None:
    """While refused callers hold slots, a new caller is refused with a slot after theirs."""
    lim = RateLimiter(rpm=60)
    for _ in range(3):
        lim.admit("k", 1, 0.0)
    late = lim.admit("k", 1, 0.5)
    assert not late.admitted and late.retry_after_s == pytest.approx(2.5)


def test_unclaimed_slots_are_forfeited() -> None:
    """A slot nobody claims within the claim window is dropped; the bucket is usable again afterwards."""
    lim = RateLimiter(rpm=60)
    lim.admit("k", 1, 0.0)
    lim.admit("k", 1, 0.0)
    later = 1.0 + CLAIM_WINDOW_S + 5.0
    assert lim.admit("k", 1, later).admitted
    assert not lim.admit("k", 1, later).admitted


def test_keys_have_separate_buckets() -> None:
    """Another API key is not affected by a drained one."""
    lim = RateLimiter(rpm=60)
    assert lim.admit("a", 1, 0.0).admitted and not lim.admit("a", 1, 0.0).admitted
    assert lim.admit("b", 1, 0.0).admitted


def test_tpm_refuses_by_tokens_and_says_so() -> None:
    """A TPM bucket (tpm/60 per second) refuses a call whose tokens it cannot pay, naming the tokens limit."""
    lim = RateLimiter(tpm=6000)  # 100 tokens per second, bucket of 100
    assert lim.admit("k", 80, 0.0).admitted
    refused = lim.admit("k", 80, 0.0)
    assert not refused.admitted and refused.limit == "tokens"
    assert refused.retry_after_s == pytest.approx(0.6)  # 20 left, 80 more needed -> 60 short at 100/s
    assert refused.remaining_tokens == 0 and refused.tpm == 6000


def test_a_request_larger_than_the_bucket_is_admitted_when_full() -> None:
    """A call that costs more than a full bucket is admitted when the bucket is full (and leaves it in debt)."""
    lim = RateLimiter(tpm=600)  # 10 tokens per second
    assert lim.admit("k", 50, 0.0).admitted
    refused = lim.admit("k", 5, 0.0)
    assert not refused.admitted and refused.retry_after_s == pytest.approx(4.5)  # 40 in debt + its own 5


def test_burst_s_sets_the_bucket_size() -> None:
    """burst_s = 10 at RPM 60 lets ten calls through at once."""
    lim = RateLimiter(rpm=60, burst_s=10.0)
    assert [lim.admit("k", 1, 0.0).admitted for _ in range(11)] == [True] * 10 + [False]


def test_no_limits_admit_everything() -> None:
    """Without rpm or tpm the limiter admits every call and reports no limit."""
    lim = RateLimiter()
    a = lim.admit("k", 10**9, 0.0)
    assert a.admitted and a.rpm is None and a.remaining_requests is None


def test_limit_headers_per_provider() -> None:
    """OpenAI answers carry x-ratelimit-* (with reset durations); Anthropic's carry anthropic-ratelimit-*."""
    lim = RateLimiter(rpm=120, tpm=6000)
    adm = lim.admit("k", 50, 0.0)
    assert limit_headers("openai", adm) == {
        "x-ratelimit-limit-requests": "120", "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "500ms", "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "50", "x-ratelimit-reset-tokens": "500ms"}
    assert limit_headers("anthropic", adm)["anthropic-ratelimit-tokens-remaining"] == "50"
    assert limit_headers("openai", RateLimiter().admit("k", 1, 0.0)) == {}
