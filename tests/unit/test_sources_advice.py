"""The readiness advice in the user's terms: each rule on a real deployment file and records as the runs make them."""

from __future__ import annotations

from pathlib import Path

from emulators.profiles import load_profile
from emulators.records import Record
from harness.sources import load_source
from harness.sources.advice import config_changes

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "deployments"


def _rec(outcome: str = "ok", duration_ms: float = 10.0, cpu_ms: float = 1.0, peak_mb: float = 20.0) -> Record:
    return Record(ok=outcome == "ok", outcome=outcome, duration_ms=duration_ms, cpu_ms=cpu_ms, peak_memory_mb=peak_mb)


def test_memory_headroom_raises_to_the_next_power_of_two() -> None:
    """A peak of 230 MB at MemorySize 256 asks for 512, naming the key and its line."""
    m = load_source(SAMPLES / "sam" / "template.yaml").get("ApiFunction")
    prof = load_profile(m.profile, m.pattern).replace(**m.overrides)
    [line] = config_changes(m, prof, [_rec(peak_mb=230.0)], 10.0, 1.0)
    assert line.startswith("raise MemorySize from 256 to 512 in template.yaml:25")


def test_a_task_longer_than_the_platform_allows_is_sent_to_the_daemon() -> None:
    """A task of 20 minutes cannot fit Lambda's 900 s; the advice says so and names the gateway limit too."""
    m = load_source(SAMPLES / "sam" / "template.yaml").get("ApiFunction")
    prof = load_profile(m.profile, m.pattern).replace(**m.overrides)
    lines = config_changes(m, prof, [_rec("timeout", duration_ms=20_000.0)], 1_200_000.0, 5.0)
    assert any("cannot go past 900 s on aws-lambda" in x and "daemon" in x for x in lines)
    assert any("over the 29 s gateway limit" in x and "Events.Ask" in x for x in lines)


def test_edge_cpu_limit_names_limits_cpu_ms() -> None:
    """A Worker near its CPU limit gets 'raise limits.cpu_ms from 50 to N in wrangler.toml:8'."""
    m = load_source(SAMPLES / "wrangler" / "wrangler.toml").get()
    prof = load_profile(m.profile, m.pattern).replace(**m.overrides)
    [line] = config_changes(m, prof, [_rec("cpu_limit", cpu_ms=50.0)], 10.0, 70.0)
    assert line.startswith("raise limits.cpu_ms from 50 to 90 in wrangler.toml:8")


def test_unset_keys_say_where_to_add_them(tmp_path: Path) -> None:
    """A limit the file does not set is advised as a key to add, with the default that applies now."""
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {}\n")
    (tmp_path / "template.yaml").write_text("Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n"
                                            "    Type: AWS::Serverless::Function\n    Properties:\n"
                                            "      Handler: app.handler\n")
    m = load_source(tmp_path / "template.yaml").get()
    prof = load_profile(m.profile, m.pattern).replace(**m.overrides)
    [line] = config_changes(m, prof, [_rec(duration_ms=2_900.0)], 2_900.0, 5.0)
    assert line.startswith("set Timeout: 5 in template.yaml:5 (not set now: the 3 default applies)")


def test_a_timeout_no_key_of_the_file_sets_points_at_the_proxy() -> None:
    """On Kubernetes the request timeout is the profile's, not the manifest's: the advice says so."""
    m = load_source(SAMPLES / "k8s" / "manifests.yaml").get()
    prof = load_profile(m.profile, m.pattern).replace(**m.overrides)
    [line] = config_changes(m, prof, [_rec(duration_ms=290_000.0)], 290_000.0, 5.0)
    assert "not a key of manifests.yaml" in line and "--set timeout_s=435" in line
