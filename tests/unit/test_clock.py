"""The clock, scaled mode: platform <-> wall conversion, time_scale validation, the memory-tied CPU factor.

The virtual mode has its own file, test_virtual_clock.py."""

from __future__ import annotations

import time

import anyio
import pytest

from emulators.clock import Clock, cpu_factor
from emulators.errors import ConfigError


def test_to_wall_and_to_platform() -> None:
    """At time_scale 0.01 a 10 s platform wait takes 0.1 s of wall time, and back."""
    c = Clock(0.01)
    assert c.to_wall(10) == pytest.approx(0.1)
    assert c.to_platform(0.1) == pytest.approx(10)
    assert c.to_platform(c.to_wall(900)) == pytest.approx(900)


def test_fifteen_minutes_at_a_thousandth() -> None:
    """At time_scale 0.001 a 15-minute limit is 0.9 s of wall time (the DESIGN.md example)."""
    assert Clock(0.001).to_wall(15 * 60) == pytest.approx(0.9)


def test_default_is_real_time() -> None:
    """The default clock runs at real time."""
    assert Clock().to_wall(2.5) == 2.5


@pytest.mark.parametrize("scale", [0, -1, -0.5, float("nan")])
def test_non_positive_time_scale_is_config_error(scale: float) -> None:
    """A time_scale that is not a positive number is a ConfigError suggesting values to use."""
    with pytest.raises(ConfigError, match="time_scale must be a positive number"):
        Clock(scale)


def test_now_counts_platform_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """now() is wall time since the clock was made, converted to platform seconds."""
    monkeypatch.setattr(time, "monotonic", lambda: 100.0)
    c = Clock(0.5)
    monkeypatch.setattr(time, "monotonic", lambda: 101.0)
    assert c.now() == pytest.approx(2.0)


def test_sleep_waits_scaled_wall_time() -> None:
    """sleep(platform_s) waits platform_s x time_scale of wall time."""
    c = Clock(0.001)

    async def main() -> float:
        start = time.monotonic()
        await c.sleep(20)  # 20 ms of wall time
        await c.sleep(0)
        await c.sleep(-1)
        return time.monotonic() - start

    assert 0.015 <= anyio.run(main) < 1.0


def test_cpu_factor_lambda_128mb() -> None:
    """At 128 MB with 1,769 MB per vCPU, CPU work takes about 13.82x as long."""
    assert cpu_factor(128, 1769) == pytest.approx(13.82, abs=0.01)


def test_cpu_factor_never_below_one() -> None:
    """Two vCPUs' worth of memory does not make a single thread faster than real time."""
    assert cpu_factor(3538, 1769) == 1.0
    assert cpu_factor(1769, 1769) == 1.0


def test_cpu_factor_without_memory_tie() -> None:
    """Without mb_per_vcpu the factor is 1.0."""
    assert cpu_factor(128, None) == 1.0
    assert cpu_factor(128, 0) == 1.0


def test_cpu_factor_respects_max_vcpus() -> None:
    """max_vcpus caps the vCPUs memory would buy: capped at half a vCPU, work runs at half speed."""
    assert cpu_factor(1769, 1769, 0.5) == pytest.approx(2.0)
    assert cpu_factor(10240, 1769, 6) == 1.0
    assert cpu_factor(885, 1769, 6) == pytest.approx(1769 / 885)
