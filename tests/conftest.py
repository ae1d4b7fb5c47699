"""Fixtures shared by every test tier: the event loop a test runs on, and finding (and reaping) the
harness's processes left by a test.

The loop: every test runs on the loop ``HARNESS_LOOP`` selects (``auto``: uvloop where installed), both the
engine's loops and a test's own ``asyncio.run``. Tests marked ``both_loops`` (the gateway, instance runtime
and daemon suites) run twice, ``[asyncio]`` and ``[uvloop]``, so plain ``python -m pytest`` covers both.

Every process a deployment starts (the zygote and the instances forked from it) runs
``python -m emulators.runtime.zygote FD RUN_ID``, so it is found by its command line. To tell this pytest
session's processes from those of another session running on the same machine, the session puts a marker
in its environment, which the zygote inherits and the instances inherit from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psutil
import pytest

from emulators.loops import LOOP_ENV, loop_name

ZYGOTE_MODULE = "emulators.runtime.zygote"
SESSION_MARKER = "ADH_TEST_SESSION"  # not HARNESS_*: that namespace belongs to the harness itself
LEFTOVER_GRACE_S = 2.0

os.environ.setdefault(SESSION_MARKER, uuid.uuid4().hex)
_SESSION = os.environ[SESSION_MARKER]


@dataclass(frozen=True)
class HarnessProcess:
    """One live process of the harness runtime: the zygote or an instance forked from it."""

    pid: int
    ppid: int
    run_id: str
    cmdline: tuple[str, ...]


def harness_processes(run_id: str | None = None, *, this_session: bool = True) -> list[HarnessProcess]:
    """Live (non-zombie) processes whose command line runs the zygote module, optionally of one run."""
    found: list[HarnessProcess] = []
    for p in psutil.process_iter(["pid", "ppid", "cmdline", "status"]):
        try:
            cmdline = tuple(p.info["cmdline"] or ())
            if p.info["status"] == psutil.STATUS_ZOMBIE or not any(ZYGOTE_MODULE in c for c in cmdline):
                continue
            if run_id is not None and run_id not in cmdline:
                continue
            if this_session and p.environ().get(SESSION_MARKER) != _SESSION:
                continue
        except psutil.Error:
            continue  # it ended while we looked
        found.append(HarnessProcess(p.info["pid"], p.info["ppid"], cmdline[-1] if cmdline else "", cmdline))
    return found


def wait_until_gone(pids: Callable[[], list[HarnessProcess]],
                    grace_s: float = LEFTOVER_GRACE_S) -> list[HarnessProcess]:
    """Poll ``pids()`` until it is empty or ``grace_s`` wall seconds passed; return what is left."""
    deadline = time.monotonic() + grace_s
    left = pids()
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = pids()
    return left


def own_zygotes() -> list[HarnessProcess]:
    """Zygotes started by this test process (they are its direct children)."""
    me = os.getpid()
    return [p for p in harness_processes() if p.ppid == me]


class ProcessProbe:
    """What a test can ask about the harness's processes (handed out by the ``harness_procs`` fixture)."""

    def of_run(self, run_id: str) -> list[HarnessProcess]:
        """Every live process carrying ``run_id`` on its command line, from any session."""
        return harness_processes(run_id, this_session=False)

    def own_zygote_pids(self) -> set[int]:
        """Pids of the zygotes this test process has running now."""
        return {p.pid for p in own_zygotes()}

    def new_zygote(self, before: set[int]) -> HarnessProcess:
        """The single zygote this process started since the snapshot ``before`` (from ``own_zygote_pids``)."""
        fresh = [p for p in own_zygotes() if p.pid not in before]
        assert len(fresh) == 1, f"expected exactly one new zygote, found {fresh}"
        return fresh[0]

    def instances(self, zygote: HarnessProcess) -> list[int]:
        """Pids of the live instance processes forked by ``zygote``."""
        try:
            kids = psutil.Process(zygote.pid).children()
        except psutil.Error:
            return []
        out = []
        for k in kids:
            try:
                if k.status() != psutil.STATUS_ZOMBIE:
                    out.append(k.pid)
            except psutil.Error:
                pass
        return out

    def wait_run_gone(self, run_id: str, grace_s: float = LEFTOVER_GRACE_S) -> list[HarnessProcess]:
        """Wait up to ``grace_s`` for every process of ``run_id`` to end; return those still running."""
        return wait_until_gone(lambda: self.of_run(run_id), grace_s)


LOOPS = ("asyncio", "uvloop")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that runs a test on both event loops."""
    config.addinivalue_line("markers", "both_loops: run once on asyncio's loop and once on uvloop")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A ``both_loops`` test is parametrized over the two loops (through the autouse ``harness_loop``)."""
    if metafunc.definition.get_closest_marker("both_loops") is not None and "harness_loop" in metafunc.fixturenames:
        metafunc.parametrize("harness_loop", LOOPS, indirect=True)


@pytest.fixture(autouse=True)
def harness_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The event loop of this test: its parameter (``both_loops``), else what ``HARNESS_LOOP`` selects.

    Set for the engine (``HARNESS_LOOP``, read wherever the harness makes a loop, inherited by the CLI
    processes a test starts) and as the asyncio policy, so a test's own ``asyncio.run`` uses it too.
    """
    choice = getattr(request, "param", None)
    if choice == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed: the asyncio run covers this test")
    name = loop_name(choice)
    monkeypatch.setenv(LOOP_ENV, name)
    if name == "asyncio":
        yield name
        return
    import uvloop

    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield name
    finally:
        asyncio.set_event_loop_policy(before)


@pytest.fixture
def harness_procs() -> ProcessProbe:
    """A probe for the harness processes (zygote and instances) of this test process."""
    return ProcessProbe()


@pytest.fixture(autouse=True)
def _no_leftover_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Integration tests must leave no process of the harness behind; a leftover fails the test."""
    if request.node.get_closest_marker("integration") is None:
        yield
        return
    before = {p.pid for p in harness_processes()}
    yield
    left = wait_until_gone(lambda: [p for p in harness_processes() if p.pid not in before])
    if left:
        for p in left:  # reap them, by pid, so one leak does not cascade into the next tests
            with contextlib.suppress(psutil.Error):
                psutil.Process(p.pid).kill()
        pytest.fail(
            f"{len(left)} harness process(es) still running {LEFTOVER_GRACE_S:g} s after the test: "
            + "; ".join(f"pid {p.pid} (ppid {p.ppid}, run {p.run_id})" for p in left),
            pytrace=False,
        )


# In CI (.ci/run sets HARNESS_CI_NO_SKIPS=1) the services, Docker and Chromium are there, so a skip means a
# set-up step broke: it fails instead of passing quietly. A skip that is right even in CI says so in its
# reason with ALLOWED_IN_CI (e.g. a server extension no package provides on these machines).
NO_SKIPS_ENV = "HARNESS_CI_NO_SKIPS"
ALLOWED_IN_CI = "[allowed in CI]"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Turn a skip into a failure when HARNESS_CI_NO_SKIPS is set, unless its reason allows it in CI."""
    outcome = yield
    report = outcome.get_result()
    if not os.environ.get(NO_SKIPS_ENV) or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if ALLOWED_IN_CI in reason:
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped in CI ({NO_SKIPS_ENV}=1), where every service this test needs should be "
                       f"running: {reason}")


POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"  # the machine's PostgreSQL (see DESIGN.md)


@pytest.fixture
def postgres_memory_url() -> Iterator[str]:
    """A ``ctx.memory`` URL on the local PostgreSQL in a namespace of its own, dropped after the test."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=0.5).close()
    except OSError:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    import psycopg

    ns = "tm_" + uuid.uuid4().hex[:12]
    yield f"{POSTGRES_URL}?namespace={ns}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "adh_{ns}" CASCADE')
