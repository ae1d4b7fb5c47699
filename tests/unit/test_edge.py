"""Edge pure parts: the code-size measure, the round-trip table and geography, headroom, CPU-ms pricing, profiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulators.billing import invocation_cost
from emulators.edge import code_size_error
from emulators.edge_geo import (
    CENTRAL_REGION,
    Geography,
    geography_for,
    load_rtt_table,
    parse_rtt_table,
    region_comparison,
)
from emulators.errors import ConfigError
from emulators.profiles import Profile, default_profile_name, load_profile
from emulators.records import Record, headroom, summarize
from emulators.runtime.agent import AgentRef, CodeSize, code_size

EDGE_PROFILES = ["cloudflare-workers-free", "cloudflare-workers-paid", "vercel-edge", "netlify-edge", "fastly-compute"]


def _ref(path: Path, module: str | None = None) -> AgentRef:
    return AgentRef(module=module, path=str(path), attr="agent", spec=f"{path}:agent")


# ---- code size -----------------------------------------------------------------------------------------

def test_code_size_of_a_lone_agent_is_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An agent importing only the standard library and installed packages measures its own file alone."""
    monkeypatch.chdir(tmp_path)
    agent = tmp_path / "a.py"
    agent.write_text("import json, os\nimport httpx\n\ndef agent(task, ctx):\n    return 1\n")
    size = code_size(_ref(agent))
    assert size.files == (str(agent),)
    assert size.raw_bytes == agent.stat().st_size
    assert size.gzip_bytes > 0


def test_code_size_follows_project_imports_transitively(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Absolute, relative, package and in-function imports of project modules all count, each file once."""
    monkeypatch.chdir(tmp_path)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tools.py").write_text("from . import util\n")
    (pkg / "util.py").write_text("X = 1\n")
    (tmp_path / "lazy.py").write_text("Y = 2\n")
    agent = tmp_path / "a.py"
    agent.write_text("from pkg import tools\nimport pkg.util\n\ndef agent(task, ctx):\n    import lazy\n")
    size = code_size(_ref(agent))
    names = sorted(Path(f).relative_to(tmp_path).as_posix() for f in size.files)
    assert names == ["a.py", "lazy.py", "pkg/__init__.py", "pkg/tools.py", "pkg/util.py"]
    assert size.raw_bytes == sum((tmp_path / n).stat().st_size for n in names)


def test_code_size_of_a_module_agent_starts_at_its_top_package(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """For 'pkg.agent:agent' the project root is the directory holding pkg, so sibling packages resolve."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "shared" / "__init__.py").write_text("Z = 3\n")
    agent = tmp_path / "pkg" / "agent.py"
    agent.write_text("import shared\n")
    monkeypatch.chdir("/")
    size = code_size(_ref(agent, module="pkg.agent"))
    assert str(tmp_path / "shared" / "__init__.py") in size.files


def test_code_size_error_compares_raw_or_gzip_size_as_the_profile_says() -> None:
    """Over the limit is an error naming the size, the limit and the largest file; under it is None."""
    size = CodeSize((__file__,), raw_bytes=5000, gzip_bytes=1200)
    raw = Profile(pattern="edge", name="p", code_size_limit_bytes=2000)
    gz = Profile(pattern="edge", name="p", code_size_limit_bytes=2000, code_size_compressed=True)
    message = code_size_error(size, raw)
    assert message is not None and "5,000 bytes" in message and "2,000-byte" in message and "test_edge.py" in message
    assert code_size_error(size, gz) is None
    assert code_size_error(size, Profile(pattern="edge")) is None


# ---- round trips and geography -------------------------------------------------------------------------

def test_rtt_table_is_symmetric_and_complete() -> None:
    """Every pair of shipped regions has one figure either way round; within a region it is the same-region RTT."""
    t = load_rtt_table()
    regions = list(t.regions)
    for a in regions:
        for b in regions:
            assert t.rtt_ms(a, b) == t.rtt_ms(b, a) > 0
    assert t.rtt_ms("eu-west", "eu-west") == t.same_region_ms
    assert t.rtt_ms("us-east", "eu-west") == 80.55
    assert t.rtt_ms("eu-west", "eu-central") < t.rtt_ms("eu-west", "ap-sydney")


def test_unknown_region_names_the_close_match() -> None:
    """A misspelt region is a ConfigError with the close match and the known regions."""
    with pytest.raises(ConfigError, match=r"did you mean 'ap-northeast'.*known regions: us-east"):
        load_rtt_table().rtt_ms("ap-northest", "us-east")


def test_rtt_table_keys_must_name_listed_regions() -> None:
    """A table whose pair key is not 'a|b' of listed regions is refused."""
    text = 'same_region_ms = 1\n[regions]\na = "A"\n[rtt_ms]\n"a|b" = 5\n'
    with pytest.raises(ConfigError, match=re.escape('must be "a|b"')):
        parse_rtt_table(text)
    assert parse_rtt_table(text.replace('"a|b" = 5', '"a|a" = 5')).rtt_ms("a", "a") == 1


def test_edge_runs_near_each_caller_and_serverless_in_one_region() -> None:
    """The edge follows the caller unless pinned; serverless with geography runs centrally; without, none."""
    edge = geography_for("edge", Profile(pattern="edge", caller_region="eu-west,ap-northeast"))
    assert edge is not None
    assert [edge.next_caller() for _ in range(3)] == ["eu-west", "ap-northeast", "eu-west"]
    assert edge.instance_region("ap-northeast") == "ap-northeast"
    pinned = Geography(Profile(pattern="edge", region="us-west"), follow_caller=True)
    assert pinned.instance_region("eu-west") == "us-west"
    central = geography_for("serverless", Profile(caller_region="eu-west"))
    assert central is not None and central.instance_region("eu-west") == CENTRAL_REGION
    assert geography_for("serverless", Profile()) is None
    assert geography_for("edge", Profile(pattern="edge")) is not None


def test_apply_adds_the_client_round_trip_and_counts_the_llm_round_trips() -> None:
    """The caller's latency gains its round trip to the instance; network_ms is subrequests x the LLM round trip."""
    geo = Geography(Profile(pattern="edge", llm_region="us-east"), follow_caller=True)
    rec = Record(ok=True, outcome="ok", latency_ms=1000.0, instance_id="i-1", duration_ms=990.0, llm_calls=2)
    out = geo.apply(rec, "eu-west", "eu-west", subrequests=3)
    t = load_rtt_table()
    assert out.latency_ms == pytest.approx(1000.0 + t.same_region_ms)
    assert out.network_ms == pytest.approx(3 * t.rtt_ms("eu-west", "us-east"))
    assert (out.caller_region, out.region) == ("eu-west", "eu-west")


# ---- headroom and the summary --------------------------------------------------------------------------

def test_headroom_is_the_share_of_each_limit_left() -> None:
    """Headroom is (allowed - used) / allowed for each limit that applied; negative when over."""
    assert headroom(44, 50) == pytest.approx(0.12)
    assert headroom(51, 50) == pytest.approx(-0.02)
    rec = Record(ok=True, outcome="ok", cpu_ms=8.8, cpu_limit_ms=10, peak_memory_mb=64, memory_cap_mb=128,
                 subrequests=5)
    assert rec.headroom() == pytest.approx({"cpu": 0.12, "memory": 0.5})
    assert Record(ok=True, outcome="ok").headroom() == {}


def test_summary_groups_latency_by_caller_region_and_keeps_the_least_headroom() -> None:
    """summarize() reports per caller region calls, p50 and round trips, and the minimum headroom of ok calls."""
    def rec(region: str, latency: float, cpu: float, ok: bool = True) -> Record:
        return Record(ok=ok, outcome="ok" if ok else "cpu_limit", latency_ms=latency, caller_region=region,
                      client_rtt_ms=3.0, network_ms=10.0, cpu_ms=cpu, cpu_limit_ms=10.0, llm_calls=1,
                      pattern="edge", profile="p")
    s = summarize([rec("us-east", 100, 5), rec("us-east", 200, 8), rec("eu-west", 300, 2),
                   rec("eu-west", 9, 12, False)])
    assert s.latency_by_region["us-east"] == {"calls": 2.0, "p50_ms": 100, "p95_ms": 200, "client_rtt_ms": 3.0,
                                              "network_ms": 10.0, "llm_calls": 1.0}
    assert s.latency_by_region["eu-west"]["calls"] == 2
    assert s.min_headroom == pytest.approx({"cpu": 0.2})
    rows = region_comparison([s])
    assert [r["caller_region"] for r in rows] == ["eu-west", "us-east"]
    assert summarize([Record(ok=True, outcome="ok")]).latency_by_region == {}


# ---- pricing and profiles ------------------------------------------------------------------------------

def test_cpu_ms_price_bills_cpu_not_duration() -> None:
    """With only a per-CPU-ms and a per-request price, cost follows CPU time whatever the duration."""
    p = load_profile("cloudflare-workers-paid")
    short, long = invocation_cost(10, 5.0, p), invocation_cost(60_000, 5.0, p)
    assert short == long
    assert short.compute_usd == pytest.approx(5.0 * 0.02 / 1e6)
    assert short.requests_usd == pytest.approx(0.30 / 1e6)


@pytest.mark.parametrize("name", EDGE_PROFILES)
def test_edge_profiles_load_as_edge(name: str) -> None:
    """Every shipped edge profile loads for the edge pattern and caps isolate memory."""
    p = load_profile(name, "edge")
    assert p.pattern == "edge" and p.memory_mb > 0 and p.timeout_s > 0


def test_edge_profile_values_follow_platform_facts() -> None:
    """Free: 10 ms CPU, 50 subrequests, 1 s startup (C1, C3); paid: 30 s, 10,000; Vercel: 25 s first byte, gzip."""
    free, paid, vercel = (load_profile(n) for n in EDGE_PROFILES[:3])
    assert (free.cpu_limit_ms, free.subrequest_limit, free.startup_cpu_ms, free.memory_mb) == (10, 50, 1000, 128)
    assert (paid.cpu_limit_ms, paid.subrequest_limit, paid.price_per_million_cpu_ms_usd) == (30_000, 10_000, 0.02)
    assert (vercel.gateway_timeout_s, vercel.code_size_compressed, vercel.cpu_limit_ms) == (25, True, None)
    assert default_profile_name("edge") == "cloudflare-workers-free"
