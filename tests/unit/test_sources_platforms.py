"""Deployment files as profiles, the platform formats: wrangler, vercel.json, Kubernetes, fly.toml, Cloud Run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from emulators.errors import ConfigError
from harness.sources import load_source

from .sources_files import SAMPLES, taken, write

# --- Cloudflare wrangler ------------------------------------------------------------------------------


def test_wrangler_sample() -> None:
    """limits.cpu_ms maps to the CPU limit on the Paid profile; vars become env."""
    fn = load_source(SAMPLES / "wrangler" / "wrangler.toml").get()
    assert (fn.pattern, fn.profile, fn.overrides["cpu_limit_ms"]) == ("edge", "cloudflare-workers-paid", 50.0)
    assert str(taken(fn, "cpu_limit_ms").where) == "wrangler.toml:8" and fn.env == {"MODEL": "gpt-4o-mini"}


def test_wrangler_jsonc_with_comments(tmp_path: Path) -> None:
    """wrangler.jsonc with comments and a trailing comma parses; lines survive; bindings are reported."""
    write(tmp_path, "w.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "wrangler.jsonc", """
        {
          // the worker
          "name": "w", /* inline */ "main": "w.py",
          "kv_namespaces": [{"binding": "KV", "id": "x"}],
          "limits": {"cpu_ms": 400000},
        }
        """)
    with pytest.raises(ConfigError, match=r"wrangler.jsonc:5: limits.cpu_ms = 400000 .*300,000"):
        load_source(path)
    path.write_text(path.read_text().replace("400000", "100"))
    fn = load_source(path).get()
    assert fn.overrides["cpu_limit_ms"] == 100.0
    assert any("kv_namespaces (wrangler.jsonc:4)" in w for w in fn.warnings())


def test_wrangler_without_paid_settings_is_free(tmp_path: Path) -> None:
    """Without cpu_ms or a Paid usage model the Free profile applies, and a warning says so."""
    write(tmp_path, "w.py", "def agent(task, ctx):\n    return {}\n")
    fn = load_source(write(tmp_path, "wrangler.toml", 'name = "w"\nmain = "w.py"\n')).get()
    assert fn.profile == "cloudflare-workers-free" and any("Free plan" in w for w in fn.warnings())


# --- Vercel -------------------------------------------------------------------------------------------


def test_vercel_sample() -> None:
    """maxDuration bounds the function and its request, memory sets memory_mb, iad1 places it in us-east."""
    fn = load_source(SAMPLES / "vercel" / "vercel.json").get()
    assert (fn.profile, fn.overrides["timeout_s"], fn.overrides["gateway_timeout_s"]) == (
        "vercel-functions", 60.0, 60.0)
    assert fn.overrides["memory_mb"] == 1024.0 and fn.overrides["region"] == "us-east"
    assert str(taken(fn, "timeout_s").where) == "vercel.json:4"


def test_vercel_over_the_maximum(tmp_path: Path) -> None:
    """maxDuration over 800 s is an error naming the line."""
    write(tmp_path, "api/a.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "vercel.json", '{"functions": {\n  "api/*.py": {"maxDuration": 900}\n}}\n')
    with pytest.raises(ConfigError, match=r"vercel.json:2: .*maxDuration = 900"):
        load_source(path)


# --- Kubernetes ---------------------------------------------------------------------------------------


def test_k8s_sample() -> None:
    """Deployment limits, env, the probe's delay and the HPA's replicas, target and behavior all map."""
    src = load_source(SAMPLES / "k8s" / "manifests.yaml")
    fn = src.get("chat-agent")
    o = fn.overrides
    assert (fn.pattern, fn.profile) == ("container", "k8s-hpa")
    assert fn.agent is not None and fn.agent.endswith("k8s/agent.py:agent")
    assert (o["memory_mb"], o["vcpus"], o["min_replicas"], o["max_replicas"]) == (512.0, 0.5, 2, 8)
    assert (o["target_concurrency"], o["scale_up_pods"], o["scale_up_period_s"]) == (20.0, 2, 30.0)
    assert (o["scale_down_stabilization_s"], o["scale_down_percent"], o["scale_down_period_s"]) == (120.0, 50.0, 60.0)
    assert o["cold_start_overhead_ms"] == {"dist": "constant", "value": 5000.0}  # 2 s pod start + 3 s delay
    assert str(taken(fn, "max_replicas").where) == "manifests.yaml:55"
    assert any("Service 'chat-agent'" in w for w in src.warnings())
    from emulators.autoscale import ScalePolicy
    from emulators.profiles import load_profile

    policy = ScalePolicy.from_profile(load_profile("k8s-hpa").replace(**o))
    assert (policy.scale_down_percent, policy.scale_down_period_s, policy.scale_up_stabilization_s) == (50.0, 60.0, 0.0)


def test_k8s_replicas_without_hpa_and_cpu_metric(tmp_path: Path) -> None:
    """Without an HPA replicas fix the count; a request stands in for a missing limit; a CPU target is reported."""
    write(tmp_path, "a.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "deploy.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: a}
        spec:
          replicas: 3
          template:
            spec:
              containers:
                - name: a
                  args: ["a.py:agent"]
                  resources:
                    requests: {memory: 1Gi}
        """)
    fn = load_source(path).get()
    assert (fn.overrides["min_replicas"], fn.overrides["max_replicas"], fn.overrides["memory_mb"]) == (3, 3, 1024.0)
    hpa = path.read_text() + textwrap.dedent("""
        ---
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata: {name: a}
        spec:
          scaleTargetRef: {kind: Deployment, name: a}
          maxReplicas: 4
          metrics:
            - type: Resource
              resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
        """)
    path.write_text(hpa)
    fn = load_source(path).get()
    assert fn.overrides["max_replicas"] == 4 and "min_replicas" not in fn.overrides
    assert any("'cpu' is not emulated" in w and "deploy.yaml:" in w for w in fn.warnings())


def test_k8s_bad_quantity(tmp_path: Path) -> None:
    """A memory quantity that is not one is an error naming file:line."""
    path = write(tmp_path, "d.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n"
                                    "  template:\n    spec:\n      containers:\n        - name: a\n"
                                    "          resources:\n            limits:\n              memory: lots\n")
    with pytest.raises(ConfigError, match=r"d.yaml:11: .*'lots' is not a memory quantity"):
        load_source(path)


# --- fly.toml -----------------------------------------------------------------------------------------


def test_fly_sample() -> None:
    """Concurrency soft/hard, autostop with min_machines_running and the [[vm]] size map."""
    fn = load_source(SAMPLES / "fly" / "fly.toml").get()
    o = fn.overrides
    assert (fn.profile, o["replica_concurrency"], o["target_concurrency"], o["min_replicas"]) == (
        "fly-machines", 25, 15.0, 1)
    assert (o["vcpus"], o["memory_mb"]) == (1.0, 512.0)
    assert fn.agent is not None and fn.agent.endswith("fly/agent.py:agent")  # from the Dockerfile's CMD
    assert str(taken(fn, "replica_concurrency").where) == "fly.toml:18"


def test_fly_autostop_off_and_preset_memory(tmp_path: Path) -> None:
    """auto_stop_machines off keeps one Machine running; shared-cpu-2x without memory is 2 x 256 MB."""
    write(tmp_path, "a.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "fly.toml", """
        app = "a"
        [processes]
          app = "python a.py"
        [http_service]
          auto_stop_machines = "off"
        [[vm]]
          size = "shared-cpu-2x"
        """)
    fn = load_source(path).get()
    assert (fn.overrides["min_replicas"], fn.overrides["memory_mb"], fn.overrides["vcpus"]) == (1, 512.0, 2.0)
    path.write_text(path.read_text().replace('"off"', '"sometimes"'))
    with pytest.raises(ConfigError, match=r"fly.toml:5: auto_stop_machines = 'sometimes'"):
        load_source(path)


# --- Cloud Run ----------------------------------------------------------------------------------------


def test_cloudrun_sample() -> None:
    """containerConcurrency, timeoutSeconds, resources and scale annotations map."""
    fn = load_source(SAMPLES / "cloudrun" / "service.yaml").get()
    o = fn.overrides
    assert (o["replica_concurrency"], o["target_concurrency"], o["timeout_s"], o["gateway_timeout_s"]) == (
        40, 24.0, 120.0, 120.0)
    assert (o["memory_mb"], o["vcpus"], o["min_replicas"], o["max_replicas"]) == (1024.0, 1.0, 1, 20)
    assert fn.agent is not None and fn.agent.endswith("cloudrun/agent.py:agent")  # python -m agent


def test_cloudrun_limits_and_billing_warning(tmp_path: Path) -> None:
    """timeoutSeconds over 3,600 is an error; a throttled-CPU service is reported as request-based."""
    text = (SAMPLES / "cloudrun" / "service.yaml").read_text()
    write(tmp_path, "agent.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "service.yaml", text.replace("timeoutSeconds: 120", "timeoutSeconds: 4000"))
    with pytest.raises(ConfigError, match=r"service.yaml:15: .*timeoutSeconds = 4000"):
        load_source(path)
    path.write_text(text.replace('        run.googleapis.com/cpu-throttling: "false"\n', ""))
    assert any("request-based" in w for w in load_source(path).get().warnings())


def test_wrangler_usage_models(tmp_path: Path) -> None:
    """usage_model standard picks the Paid profile; the legacy bundled model is reported."""
    write(tmp_path, "w.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "wrangler.toml", 'name = "w"\nmain = "w.py"\nusage_model = "standard"\n')
    assert load_source(path).get().profile == "cloudflare-workers-paid"
    path.write_text('name = "w"\nmain = "w.py"\nusage_model = "bundled"\n')
    fn = load_source(path).get()
    assert fn.profile == "cloudflare-workers-free" and any("usage_model (wrangler.toml:3)" in w for w in fn.warnings())


def test_jsonc_keeps_slashes_inside_strings(tmp_path: Path) -> None:
    """A // inside a JSON string is not a comment."""
    write(tmp_path, "w.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "wrangler.jsonc", '{\n  "main": "w.py", // entry\n  "vars": {"URL": "https://x.example/a"}\n}\n')
    assert load_source(path).get().env == {"URL": "https://x.example/a"}


def test_vercel_regions(tmp_path: Path) -> None:
    """An unknown region code and extra regions are reported, not guessed."""
    write(tmp_path, "api/a.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "vercel.json", '{"functions": {"api/a.py": {}}, "regions": ["zzz1", "iad1"]}\n')
    fn = load_source(path).get()
    assert "region" not in fn.overrides
    assert any("'zzz1' has no counterpart" in w for w in fn.warnings()) and any("first is used" in w
                                                                                 for w in fn.warnings())


def test_k8s_asgi_command_env_from_and_policies(tmp_path: Path) -> None:
    """An ASGI server's command deploys its app as adapter='asgi'; valueFrom env, sidecars, Pods policy reported."""
    write(tmp_path, "app.py", "app = object()\n")
    path = write(tmp_path, "d.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: a}
        spec:
          template:
            spec:
              containers:
                - name: a
                  command: ["uvicorn", "app:app"]
                  env:
                    - name: KEY
                      valueFrom: {secretKeyRef: {name: s, key: k}}
                - name: sidecar
        ---
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata: {name: a}
        spec:
          scaleTargetRef: {name: a}
          maxReplicas: 3
          behavior:
            scaleDown:
              selectPolicy: Min
              policies:
                - {type: Pods, value: 1, periodSeconds: 60}
        """)
    fn = load_source(path).get()
    text = "\n".join(fn.warnings())
    assert fn.agent == f"{(tmp_path / 'app.py').resolve()}:app" and fn.adapter == "asgi"
    assert [t.where.line for t in fn.taken if t.field == "adapter"] == [9]
    assert "valueFrom" in text and "sidecars" in text and "'Min'" in text and "Pods scale-down" in text


def test_fly_suspend_and_experimental_cmd(tmp_path: Path) -> None:
    """[experimental] cmd names the agent; suspend is reported (a resume is not a cold start)."""
    write(tmp_path, "a.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "fly.toml", """
        app = "a"
        [experimental]
          cmd = ["python", "a.py"]
        [http_service]
          auto_stop_machines = "suspend"
          min_machines_running = 0
        """)
    fn = load_source(path).get()
    assert fn.agent is not None and fn.agent.endswith("a.py:agent") and fn.overrides["min_replicas"] == 0
    assert any("suspend resumes" in w for w in fn.warnings())


def test_cloudrun_concurrency_over_1000(tmp_path: Path) -> None:
    """containerConcurrency above 1,000 is an error naming the line (R14)."""
    text = (SAMPLES / "cloudrun" / "service.yaml").read_text()
    write(tmp_path, "agent.py", "def agent(task, ctx):\n    return {}\n")
    path = write(tmp_path, "service.yaml", text.replace("containerConcurrency: 40", "containerConcurrency: 2000"))
    with pytest.raises(ConfigError, match=r"service.yaml:14: .*containerConcurrency = 2000 .*R14"):
        load_source(path)
