"""Edge limits enforced on real isolate processes: CPU time (not wall time), the memory cap, the subrequest
budget, the startup CPU budget, the code size, Vercel's first-byte rule; warm reuse and headroom."""

from __future__ import annotations

import http.server
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import harness

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CPU_BURNER = str(FIXTURES / "agents" / "cpu_burner.py") + ":agent"
MEMORY_HOG = str(FIXTURES / "agents" / "memory_hog.py") + ":agent"
HEAVY_INIT = str(FIXTURES / "agents" / "heavy_init.py") + ":agent"
SLEEPER = str(FIXTURES / "agents" / "sleeper.py") + ":agent"
SUBREQUESTER = str(FIXTURES / "agents" / "subrequester.py") + ":agent"
SLOW_LLM = FIXTURES / "llm" / "slow_20s.toml"
FAST_LLM = FIXTURES / "llm" / "constant_300ms.toml"


# ---- CPU time ------------------------------------------------------------------------------------------

def test_cpu_burner_over_the_cpu_limit_is_cpu_limit_and_the_isolate_is_replaced() -> None:
    """100 ms of CPU under a 50 ms limit is "cpu_limit", stopped near 50 ms; the next call cold-starts anew."""
    with harness.deploy(CPU_BURNER, pattern="edge", time_scale=0.01, cpu_limit_ms=50) as d:
        r = d.invoke({"cpu_ms": 100})
        after = d.invoke({"cpu_ms": 5})

    assert r.outcome == "cpu_limit" and not r.ok, r.error
    assert r.error is not None and "50 ms" in r.error
    assert 50 <= r.cpu_ms < 70  # measured on the process; stopped within a few ms of the budget
    assert r.cpu_limit_ms == 50
    assert after.ok, after.error
    assert after.cold_start and after.instance_id != r.instance_id


def test_llm_wait_of_20_s_with_little_cpu_passes_a_50_ms_cpu_limit() -> None:
    """An agent waiting 20 platform seconds on the LLM uses a few ms of CPU: "ok" under a 50 ms CPU limit."""
    with harness.deploy(SUBREQUESTER, pattern="edge", time_scale=0.01, cpu_limit_ms=50, llm_script=SLOW_LLM) as d:
        d.invoke({"llm": 1})  # the cold start (its import is startup CPU, not request CPU)
        r = d.invoke({"llm": 1})

    assert r.ok, r.error
    assert r.duration_ms >= 20_000  # 20 s on the platform clock
    assert r.cpu_ms < 10
    assert 0.8 < r.headroom()["cpu"] <= 1.0


# ---- memory --------------------------------------------------------------------------------------------

def test_memory_over_the_128_mb_cap_is_oom_and_30_mb_is_ok() -> None:
    """200 MB under the 128 MB isolate cap is "oom"; 30 MB is "ok" with its peak and the cap recorded."""
    with harness.deploy(MEMORY_HOG, pattern="edge", time_scale=0.01, cpu_limit_ms=2000) as d:
        big = d.invoke({"mb": 200})
        small = d.invoke({"mb": 30})

    assert big.outcome == "oom" and not big.ok, big.error
    assert big.error is not None and "128 MB" in big.error
    assert small.ok, small.error
    assert small.memory_cap_mb == 128 and 30 <= small.peak_memory_mb < 128
    assert 0 < small.headroom()["memory"] < 1


# ---- subrequests ---------------------------------------------------------------------------------------

def test_51_llm_subrequests_on_the_free_profile_is_subrequest_limit_and_49_is_ok() -> None:
    """On cloudflare-workers-free (50 subrequests) 49 LLM calls are "ok"; 51 are "subrequest_limit", the 51st refused.

    The CPU limit is raised here: 50 requests take ~10 ms of CPU, which the free plan's 10 ms would stop first.
    """
    with harness.deploy(SUBREQUESTER, pattern="edge", profile="cloudflare-workers-free", time_scale=0.001,
                        cpu_limit_ms=2000, llm_script=FAST_LLM) as d:
        ok = d.invoke({"llm": 49})
        over = d.invoke({"llm": 51})

    assert ok.ok, ok.error
    assert ok.subrequests == 49 and ok.subrequest_limit == 50
    assert ok.headroom()["subrequests"] == pytest.approx(0.02)
    assert over.outcome == "subrequest_limit", over.error
    assert over.subrequests == 51 and over.llm_errors == 1  # the 51st was refused by the endpoint
    assert over.error is not None and "51" in over.error and "50" in over.error


@pytest.fixture
def origin() -> Iterator[str]:
    """A local HTTP origin for ctx.http subrequests (answers 200 to every GET)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the stdlib's name
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/data"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_ctx_http_requests_count_with_llm_calls_against_the_budget(origin: str) -> None:
    """ctx.http requests are subrequests too: 3 LLM calls + 3 GETs under a budget of 5 is "subrequest_limit"."""
    with harness.deploy(SUBREQUESTER, pattern="edge", time_scale=0.001, cpu_limit_ms=2000, subrequest_limit=5,
                        llm_script=FAST_LLM) as d:
        fits = d.invoke({"llm": 2, "http": 3, "url": origin})
        over = d.invoke({"llm": 3, "http": 3, "url": origin})

    assert fits.ok, fits.error
    assert fits.subrequests == 5 and fits.llm_calls == 2
    assert over.outcome == "subrequest_limit", over.error
    assert over.subrequests == 6


# ---- startup and code size -----------------------------------------------------------------------------

def test_import_burning_2_s_of_cpu_exceeds_the_1_s_startup_budget() -> None:
    """A module whose import burns 2 s of CPU is "init_error" naming the CPU it used and the 1 s budget."""
    with harness.deploy(HEAVY_INIT, pattern="edge", time_scale=0.01, env={"HEAVY_INIT_CPU_MS": "2000"}) as d:
        r = d.invoke({})

    assert r.outcome == "init_error", r.error
    assert r.error is not None and "1,000 ms" in r.error
    assert 2000 <= r.cpu_ms < 2600  # the figure: the CPU the global scope used, measured on the process
    assert "2,0" in r.error or "2,1" in r.error or "2,2" in r.error


def test_import_within_the_startup_budget_is_ok_and_the_isolate_is_reused() -> None:
    """A 300 ms import fits the 1 s startup budget; the second call reuses the warm isolate."""
    with harness.deploy(HEAVY_INIT, pattern="edge", time_scale=0.01, cpu_limit_ms=1000) as d:
        first = d.invoke({})
        second = d.invoke({})

    assert first.ok and second.ok, (first.error, second.error)
    assert first.cold_start and not second.cold_start
    assert second.instance_id == first.instance_id
    assert second.output == first.output  # same process: the module-level state survived


def test_code_over_the_size_limit_is_init_error_with_the_size(tmp_path: Path) -> None:
    """The agent plus the project module it imports, over the limit, is "init_error" naming the size found."""
    (tmp_path / "helper.py").write_text("DATA = " + repr("x" * 6000) + "\n")
    (tmp_path / "big_agent.py").write_text("import helper\n\n\ndef agent(task, ctx):\n    return len(helper.DATA)\n")
    with harness.deploy(str(tmp_path / "big_agent.py") + ":agent", pattern="edge", time_scale=0.01,
                        code_size_limit_bytes=5000) as d:
        r = d.invoke({})
        records = d.records()

    assert r.outcome == "init_error", r.error
    assert r.error is not None and "5,000-byte" in r.error and "2 files" in r.error
    assert r.instance_id is None and r.cost.total_usd == 0  # nothing started, nothing billed
    assert len(records) == 1


# ---- Vercel's first-byte rule and cost -----------------------------------------------------------------

def test_vercel_edge_response_not_begun_within_25_s_is_gateway_timeout() -> None:
    """On vercel-edge a 30 s call is "gateway_timeout" at 25 s; a 20 s call is "ok"."""
    with harness.deploy(SLEEPER, pattern="edge", profile="vercel-edge", time_scale=0.001) as d:
        late = d.invoke({"seconds": 30})
        fine = d.invoke({"seconds": 20})

    assert late.outcome == "gateway_timeout", late.error
    assert late.duration_ms == pytest.approx(25_000, rel=0.01)
    assert late.error is not None and "25 s" in late.error
    assert fine.ok, fine.error


def test_paid_profile_prices_requests_and_cpu_ms() -> None:
    """On cloudflare-workers-paid a call costs $0.30/M requests + $0.02/M CPU-ms, and no duration."""
    with harness.deploy(CPU_BURNER, pattern="edge", profile="cloudflare-workers-paid", time_scale=0.01) as d:
        r = d.invoke({"cpu_ms": 20})

    assert r.ok, r.error
    assert r.cost.requests_usd == pytest.approx(0.30 / 1e6)
    assert r.cost.compute_usd == pytest.approx(r.cpu_ms * 0.02 / 1e6)


def test_a_warm_isolates_cpu_budget_counts_from_its_last_calls_closing_reading(
        count_calls: Callable[[type], Counter[type]]) -> None:
    """Each warm call reads the process's CPU counter once (at its end) where it read it twice, and still
    measures its CPU: cpu_ms above zero and within the budget (the burner tests above still stop a burner)."""
    from emulators.runtime import limits

    reads = count_calls(limits.CpuClock)
    with harness.deploy(f"{FIXTURES / 'agents' / 'echo.py'}:agent", pattern="edge", time_scale=0.01,
                        gateway=False) as d:
        d.invoke({})
        reads.clear()
        records = [d.invoke({"n": i}) for i in range(10)]
    assert all(r.ok and r.cpu_limit_ms is not None and 0 < r.cpu_ms < r.cpu_limit_ms for r in records)
    assert reads[limits.CpuClock] == 10
