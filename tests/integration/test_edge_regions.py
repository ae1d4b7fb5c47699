"""Edge geography against a central serverless function, the summary by caller region, and the wiring
(``harness.deploy(pattern="edge")``, ``harness run --patterns edge``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import harness
from emulators.edge_geo import load_rtt_table, region_comparison
from harness.cli.main import cli

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SUBREQUESTER = str(FIXTURES / "agents" / "subrequester.py") + ":agent"
ECHO = str(FIXTURES / "agents" / "echo.py") + ":agent"
FAST_LLM = FIXTURES / "llm" / "constant_300ms.toml"


def _side_by_side(llm_calls: int, llm_region: str) -> tuple[harness.Summary, harness.Summary]:
    """The same LLM-calling agent, called from eu-west: on the edge, and on serverless in us-east."""
    common: dict[str, Any] = {"time_scale": 0.01, "llm_script": FAST_LLM, "caller_region": "eu-west",
                              "llm_region": llm_region}
    summaries = []
    for pattern, extra in (("edge", {"profile": "cloudflare-workers-paid"}),
                           ("serverless", {"region": "us-east", "timeout_s": 30})):
        with harness.deploy(SUBREQUESTER, pattern=pattern, **common, **extra) as d:
            for _ in range(3):
                r = d.invoke({"llm": llm_calls})
                assert r.ok, r.error
            summaries.append(d.summary())
    return summaries[0], summaries[1]


def test_edge_beats_central_serverless_when_the_llm_is_near_the_caller() -> None:
    """Caller and LLM in eu-west: the edge (in eu-west) is faster than serverless in us-east, by the round trips."""
    edge, central = _side_by_side(llm_calls=2, llm_region="eu-west")
    e, c = edge.latency_by_region["eu-west"], central.latency_by_region["eu-west"]
    rtt = load_rtt_table()

    assert e["p50_ms"] < c["p50_ms"]
    assert e["client_rtt_ms"] == pytest.approx(rtt.same_region_ms)
    assert c["client_rtt_ms"] == pytest.approx(rtt.rtt_ms("eu-west", "us-east"))
    assert c["network_ms"] == pytest.approx(2 * rtt.rtt_ms("us-east", "eu-west"))
    # the gap is the network: 3 round trips eu-west <-> us-east against 3 within eu-west
    assert c["p50_ms"] - e["p50_ms"] > 2 * rtt.rtt_ms("eu-west", "us-east")


def test_edge_loses_when_many_llm_calls_go_to_a_far_llm_region() -> None:
    """Caller in eu-west, LLM in us-east, 8 calls: each pays the ocean on the edge, once on central serverless."""
    edge, central = _side_by_side(llm_calls=8, llm_region="us-east")
    e, c = edge.latency_by_region["eu-west"], central.latency_by_region["eu-west"]
    rtt = load_rtt_table()

    assert e["p50_ms"] > c["p50_ms"]
    assert e["network_ms"] == pytest.approx(8 * rtt.rtt_ms("eu-west", "us-east"))
    assert c["network_ms"] == pytest.approx(8 * rtt.same_region_ms)
    rows = region_comparison([edge, central])
    assert [row["pattern"] for row in rows] == ["serverless", "edge"]  # fastest first
    assert "8.0 LLM calls" in str(rows[1]["why"]) and "isolate" in str(rows[1]["why"])


def test_calls_rotate_among_caller_regions_and_the_summary_groups_by_them() -> None:
    """caller_region="us-east,ap-northeast" alternates callers; each runs in its own region's isolate."""
    with harness.deploy(ECHO, pattern="edge", time_scale=0.01, caller_region="us-east,ap-northeast") as d:
        records = [d.invoke({"n": i}) for i in range(4)]
        s = d.summary()

    assert [r.caller_region for r in records] == ["us-east", "ap-northeast"] * 2
    assert [r.region for r in records] == ["us-east", "ap-northeast"] * 2
    assert records[2].instance_id == records[0].instance_id and not records[2].cold_start
    assert records[1].instance_id != records[0].instance_id  # one isolate per region
    assert set(s.latency_by_region) == {"us-east", "ap-northeast"}
    assert s.latency_by_region["us-east"]["calls"] == 2


def test_unknown_region_is_a_config_error_naming_the_close_match() -> None:
    """A misspelt region is refused at deploy time with the close match and the known regions."""
    with pytest.raises(harness.ConfigError, match="did you mean 'eu-west'"):
        harness.deploy(ECHO, pattern="edge", caller_region="eu-wset")


def test_harness_run_with_patterns_edge(tmp_path: Path) -> None:
    """`harness run --patterns edge` runs the calls on cloudflare-workers-free and writes their records."""
    out = tmp_path / "out.json"
    result = CliRunner().invoke(cli, ["run", ECHO, "--patterns", "edge", "-n", "3", "-q", "--time-scale", "0.01",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "cloudflare-workers-free" in result.output
    [dep] = json.loads(out.read_text())["deployments"]
    assert dep["summary"]["outcomes"] == {"ok": 3}
    assert all(r["pattern"] == "edge" and r["cpu_limit_ms"] == 10 for r in dep["records"])
