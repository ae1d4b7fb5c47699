"""PlatformTimer: real time 1:1, CPU stretched by the CPU factor, emulated waits at their platform length."""

from __future__ import annotations

import pytest

from emulators.runtime.ptime import PlatformTimer


class Fake:
    """A settable clock: call it to read, assign ``.t`` to move it."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(cpu_factor: float = 1.0, time_scale: float = 0.01) -> tuple[PlatformTimer, Fake, Fake]:
    wall, cpu = Fake(1000.0), Fake(50.0)
    return PlatformTimer(cpu_factor=cpu_factor, time_scale=time_scale, cpu=cpu, wall=wall), wall, cpu


def test_starts_at_zero() -> None:
    """A fresh timer reads zero platform and wall seconds."""
    timer, _, _ = make()
    assert timer.elapsed() == 0.0
    assert timer.wall_elapsed() == 0.0
    assert not timer.waiting


def test_real_time_counts_one_to_one() -> None:
    """Real time outside waits, with no CPU used, counts 1:1 whatever the CPU factor."""
    timer, wall, _ = make(cpu_factor=13.8)
    wall.t += 1.5
    assert timer.elapsed() == pytest.approx(1.5)
    assert timer.wall_elapsed() == pytest.approx(1.5)


def test_cpu_time_is_stretched() -> None:
    """A real second of CPU at factor 4 counts as 4 platform seconds (1 real + 3 stretched)."""
    timer, wall, cpu = make(cpu_factor=4.0)
    wall.t += 1.0
    cpu.t += 1.0
    assert timer.elapsed() == pytest.approx(4.0)


def test_cpu_now_argument_overrides_the_counter() -> None:
    """elapsed(cpu_now) uses the CPU reading given (as the control process passes from /proc)."""
    timer, wall, _ = make(cpu_factor=2.0)
    wall.t += 1.0
    assert timer.elapsed(cpu_now=50.5) == pytest.approx(1.5)


def test_in_progress_wait_counts_at_scaled_rate() -> None:
    """During a wait, wall time counts at 1/time_scale: 0.5 wall s at 0.01 is 50 platform s."""
    timer, wall, _ = make(time_scale=0.01)
    wall.t += 1.0
    timer.begin_wait()
    assert timer.waiting
    wall.t += 0.5
    assert timer.elapsed() == pytest.approx(1.0 + 50.0)


def test_finished_wait_counts_its_nominal_length() -> None:
    """A finished wait counts its nominal platform length, not the wall time it actually took."""
    timer, wall, _ = make(time_scale=0.01)
    wall.t += 1.0
    timer.begin_wait()
    wall.t += 0.5  # slower than the 0.2 wall s that 20 platform s should take
    timer.end_wait(20.0)
    assert not timer.waiting
    wall.t += 0.5
    assert timer.elapsed() == pytest.approx(1.0 + 20.0 + 0.5)
    assert timer.wall_elapsed() == pytest.approx(2.0)


def test_several_waits_add_up() -> None:
    """Several finished waits add their platform lengths."""
    timer, wall, _ = make()
    for _ in range(3):
        timer.begin_wait()
        wall.t += 0.1
        timer.end_wait(10.0)
    assert timer.elapsed() == pytest.approx(30.0)


def test_end_wait_without_begin_is_ignored() -> None:
    """end_wait without a matching begin_wait changes nothing."""
    timer, wall, _ = make()
    timer.end_wait(99.0)
    wall.t += 1.0
    assert timer.elapsed() == pytest.approx(1.0)


def test_cpu_during_a_wait_is_still_stretched() -> None:
    """CPU used while a wait is in progress is stretched too (the counter is process-wide)."""
    timer, wall, cpu = make(cpu_factor=3.0, time_scale=1.0)
    timer.begin_wait()
    wall.t += 1.0
    cpu.t += 0.5
    assert timer.elapsed() == pytest.approx(1.0 + 0.5 * 2.0)


def test_run_queue_wait_is_not_platform_time() -> None:
    """Wall time the thread spent waiting for a host core is subtracted from platform time."""
    now = [0.0]
    queued = [5.0]
    timer = PlatformTimer(cpu_factor=1.0, time_scale=0.01, cpu=lambda: 0.0, wall=lambda: now[0],
                          queued=lambda: queued[0])
    now[0] = 2.0
    queued[0] = 5.5  # half a second of the two was spent runnable but not running
    assert timer.elapsed() == pytest.approx(1.5)


def test_a_wait_in_progress_counts_no_more_than_its_announced_length() -> None:
    """A late end-of-wait notice does not inflate platform time past the wait's announced length."""
    now = [0.0]
    timer = PlatformTimer(cpu_factor=1.0, time_scale=0.001, cpu=lambda: 0.0, wall=lambda: now[0])
    timer.begin_wait(0.1)
    now[0] = 0.003  # 3 ms of wall = 3 platform s at this scale, but the wait was announced as 0.1 s
    assert timer.elapsed() == pytest.approx(0.1)
    assert timer.wait_left() == 0.0
    timer.end_wait(0.1)
    assert timer.elapsed() == pytest.approx(0.1)


def test_a_given_start_of_the_run_queue_clock_is_not_read_again() -> None:
    """start_queued (the instance's own last reading) replaces the first read; later reads count from it."""
    reads: list[float] = []

    def queued() -> float:
        reads.append(5.0)
        return 5.0

    t = PlatformTimer(cpu_factor=1.0, time_scale=1.0, cpu=lambda: 0.0, queued=queued, start_queued=4.5)
    assert reads == [] and t.start_queued == 4.5
    # 0.5 s in the run queue since the given start: not platform time (the elapsed wall is under it)
    assert t.elapsed() == 0.0 and t.last_queued == 5.0 and reads == [5.0]
