"""Deployment files as profiles: every mapping rule, on the samples and on small files written here."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from emulators.errors import ConfigError
from harness.sources import detect_format, load_source

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "deployments"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def taken(m, field: str):  # type: ignore[no-untyped-def]
    return next(t for t in m.taken if t.field == field)


SAM_HEAD = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
"""


def sam(tmp_path: Path, props: str = "", extra: str = "") -> Path:
    write(tmp_path, "app.py", "def handler(event, context):\n    return {}\n")
    body = SAM_HEAD + textwrap.indent(textwrap.dedent(props), " " * 6) + textwrap.dedent(extra)
    return write(tmp_path, "template.yaml", body)


# --- AWS SAM / CloudFormation -------------------------------------------------------------------------


def test_sam_sample_maps_both_functions() -> None:
    """The SAM sample yields the API function on serverless and the SQS consumer on the daemon pattern."""
    src = load_source(SAMPLES / "sam" / "template.yaml")
    assert src.format == "sam" and src.names == ["ApiFunction", "WorkerFunction"]
    api, worker = src.functions
    assert (api.pattern, api.profile, api.adapter) == ("serverless", "aws-lambda", "lambda")
    assert api.agent is not None and api.agent.endswith("sam/src/api.py:handler")
    assert api.overrides["timeout_s"] == 20.0  # !Ref AgentTimeout -> the parameter's Default
    assert api.overrides["memory_mb"] == 256.0 and api.overrides["max_concurrency"] == 5
    assert api.overrides["gateway_timeout_s"] == 29.0
    assert api.env == {"MODEL": "gpt-4o-mini", "LOG_LEVEL": "info"}  # Globals' variables merge
    assert (worker.pattern, worker.overrides["visibility_timeout_s"], worker.overrides["max_receives"]) == (
        "daemon", 120.0, 3)
    assert worker.overrides["memory_mb"] == 128.0 and worker.overrides["task_deadline_s"] == 60.0
    assert any("BatchSize" in w and "template.yaml:48" in w for w in worker.warnings())
    assert any("JobDeadLetters" in w for w in src.warnings())


def test_sam_lines_point_at_the_keys() -> None:
    """Each taken key names its own line in template.yaml."""
    api = load_source(SAMPLES / "sam" / "template.yaml").get("ApiFunction")
    assert str(taken(api, "memory_mb").where) == "template.yaml:25"
    assert str(taken(api, "timeout_s").where) == "template.yaml:8"  # the parameter's Default
    assert api.knobs["memory_mb"].current == 256 and api.knobs["memory_mb"].label == "MemorySize"


def test_sam_timeout_over_900_is_an_error_naming_the_line(tmp_path: Path) -> None:
    """A Lambda Timeout above 900 s is a ConfigError naming file:line and the key."""
    path = sam(tmp_path, "Timeout: 1000\n")
    with pytest.raises(ConfigError, match=r"template.yaml:8: .*Timeout = 1000 .*900"):
        load_source(path)


def test_sam_memory_out_of_range(tmp_path: Path) -> None:
    """MemorySize outside 128-10,240 MB is an error naming the line."""
    with pytest.raises(ConfigError, match=r"template.yaml:8: .*MemorySize = 64"):
        load_source(sam(tmp_path, "MemorySize: 64\n"))


@pytest.mark.parametrize(("runtime", "message"), [("pyhton3.12", "unknown Runtime 'pyhton3.12'.*did you mean"),
                                                  ("nodejs20.x", "Runtime 'nodejs20.x' is not Python")])
def test_sam_runtime_checked(tmp_path: Path, runtime: str, message: str) -> None:
    """An unknown or non-Python runtime is an error naming file:line and the runtime."""
    with pytest.raises(ConfigError, match=r"template.yaml:8: " + message):
        load_source(sam(tmp_path, f"Runtime: {runtime}\n"))


def test_sam_unsupported_keys_are_warnings_with_lines(tmp_path: Path) -> None:
    """Keys the harness does not emulate are reported with file, key and line, not dropped."""
    fn = load_source(sam(tmp_path, "Policies: [AWSLambdaBasicExecutionRole]\nLayers: [arn]\n")).get()
    assert any(w.startswith("not mapped: Resources.Fn.Properties.Policies (template.yaml:8)") for w in fn.warnings())
    assert any("Layers (template.yaml:9)" in w for w in fn.warnings())


def test_sam_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    """A YAML syntax error is a ConfigError with the file and line."""
    path = write(tmp_path, "template.yaml", "Resources:\n  Fn:\n    Type: [unclosed\n")
    with pytest.raises(ConfigError, match=r"template.yaml:\d+: not valid YAML"):
        load_source(path)


def test_sam_events(tmp_path: Path) -> None:
    """Api keeps 29 s, HttpApi TimeoutInMillis sets the gateway limit, no HTTP event drops it."""
    api = load_source(sam(tmp_path, "Events:\n  A:\n    Type: Api\n")).get()
    assert api.overrides["gateway_timeout_s"] == 29.0
    http = load_source(sam(tmp_path, "Events:\n  A:\n    Type: HttpApi\n    Properties:\n"
                                     "      TimeoutInMillis: 5000\n")).get()
    assert http.overrides["gateway_timeout_s"] == 5.0
    direct = load_source(sam(tmp_path, "Timeout: 60\n")).get()
    assert direct.overrides["gateway_timeout_s"] is None
    with pytest.raises(ConfigError, match="TimeoutInMillis = 40000"):
        load_source(sam(tmp_path, "Events:\n  A:\n    Type: HttpApi\n    Properties:\n"
                                  "      TimeoutInMillis: 40000\n"))


def test_sam_concurrency_and_globals(tmp_path: Path) -> None:
    """Reserved and provisioned concurrency map; Globals.Function applies where the function is silent."""
    path = sam(tmp_path, "ReservedConcurrentExecutions: 7\nProvisionedConcurrencyConfig:\n"
                         "  ProvisionedConcurrentExecutions: 2\n",
               extra="Globals:\n  Function:\n    Timeout: 30\n    MemorySize: 512\n")
    fn = load_source(path).get()
    assert fn.overrides["max_concurrency"] == 7 and fn.overrides["provisioned_concurrency"] == 2
    assert (fn.overrides["timeout_s"], fn.overrides["memory_mb"]) == (30.0, 512.0)
    assert str(taken(fn, "timeout_s").where).startswith("template.yaml:")


def test_sam_sqs_from_an_arn_is_reported(tmp_path: Path) -> None:
    """A queue that is not a resource of the template keeps the profile's queue settings, with a warning."""
    fn = load_source(sam(tmp_path, "Events:\n  Q:\n    Type: SQS\n    Properties:\n"
                                   "      Queue: arn:aws:sqs:us-east-1:1:q\n")).get()
    assert fn.pattern == "daemon" and "visibility_timeout_s" not in fn.overrides
    assert any("Queue" in w and "VisibilityTimeout" in w for w in fn.warnings())


def test_sam_missing_handler_file(tmp_path: Path) -> None:
    """A Handler whose module does not exist is an error naming the line and the file looked for."""
    path = sam(tmp_path)
    (tmp_path / "app.py").unlink()
    with pytest.raises(ConfigError, match=r"template.yaml:7: Handler 'app.handler': .*app.py does not exist"):
        load_source(path)


# --- Serverless Framework ----------------------------------------------------------------------------


def test_serverless_sample() -> None:
    """provider defaults, function overrides, httpApi and sqs events."""
    src = load_source(SAMPLES / "serverless" / "serverless.yml")
    ask, digest = src.get("ask"), src.get("digest")
    assert (ask.overrides["timeout_s"], ask.overrides["memory_mb"], ask.overrides["gateway_timeout_s"]) == (
        25.0, 512.0, 29.0)
    assert digest.pattern == "daemon" and digest.overrides["memory_mb"] == 256.0
    assert digest.overrides["timeout_s"] == 10.0 and digest.env == {"MODEL": "gpt-4o-mini"}
    assert any("batchSize" in w for w in digest.warnings())


def test_serverless_variables_and_provider(tmp_path: Path) -> None:
    """${...} variables are reported, not guessed; a non-AWS provider is an error naming the line."""
    write(tmp_path, "h.py", "def f(event, context):\n    return {}\n")
    path = write(tmp_path, "serverless.yml", """
        service: s
        provider:
          name: aws
          timeout: ${self:custom.t}
        functions:
          f:
            handler: h.f
            events:
              - http: {path: /, method: post}
        """)
    fn = load_source(path).get()
    assert "timeout_s" not in fn.overrides and any("serverless print" in w for w in fn.warnings())
    assert fn.overrides["gateway_timeout_s"] == 29.0
    bad = write(tmp_path, "x/serverless.yml", "service: s\nprovider:\n  name: azure\nfunctions: {}\n")
    with pytest.raises(ConfigError, match=r"serverless.yml:3: provider.name 'azure'"):
        load_source(bad)


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


# --- detection and choosing a function ----------------------------------------------------------------


def test_detect_by_content_and_unknown_files(tmp_path: Path) -> None:
    """A template with any name is found by its content; an unrelated file is a clear error."""
    path = sam(tmp_path)
    renamed = path.rename(tmp_path / "stack.yaml")
    assert detect_format(renamed) == "sam"
    other = write(tmp_path, "notes.yaml", "hello: world\n")
    with pytest.raises(ConfigError, match="not a deployment file the harness reads"):
        load_source(other)
    with pytest.raises(ConfigError, match="does not exist"):
        load_source(tmp_path / "missing.yaml")


def test_source_get_names_the_functions() -> None:
    """Picking no function of a multi-function file, or a wrong name, lists the names."""
    src = load_source(SAMPLES / "sam" / "template.yaml")
    with pytest.raises(ConfigError, match="declares 2 functions/services: ApiFunction, WorkerFunction"):
        src.get()
    with pytest.raises(ConfigError, match="did you mean 'ApiFunction'"):
        src.get("ApiFunctoin")


def test_serverless_sqs_queue_resource_and_runtime(tmp_path: Path) -> None:
    """An sqs arn of a queue in resources gives its visibility and redrive; an unknown runtime is an error."""
    write(tmp_path, "h.py", "def f(event, context):\n    return {}\n")
    path = write(tmp_path, "serverless.yml", """
        service: s
        provider:
          name: aws
          runtime: python3.12
        plugins: [serverless-offline]
        functions:
          f:
            handler: h.f
            events:
              - sqs:
                  arn: {Fn::GetAtt: [Jobs, Arn]}
        resources:
          Resources:
            Jobs:
              Type: AWS::SQS::Queue
              Properties:
                VisibilityTimeout: 90
                RedrivePolicy: {maxReceiveCount: 4}
        """)
    src = load_source(path)
    fn = src.get()
    assert (fn.pattern, fn.overrides["visibility_timeout_s"], fn.overrides["max_receives"]) == ("daemon", 90.0, 4)
    assert str(taken(fn, "visibility_timeout_s").where) == "serverless.yml:17"
    assert any("plugins (serverless.yml:5)" in w for w in src.warnings())
    path.write_text(path.read_text().replace("python3.12", "python3.99"))
    with pytest.raises(ConfigError, match=r"serverless.yml:4: runtime 'python3.99' is unknown"):
        load_source(path)


def test_sam_function_url_has_no_gateway_cap(tmp_path: Path) -> None:
    """A Function URL without an API event has no 29 s gateway limit (sec. A18)."""
    fn = load_source(sam(tmp_path, "FunctionUrlConfig:\n  AuthType: NONE\n")).get()
    assert fn.overrides["gateway_timeout_s"] is None and taken(fn, "gateway_timeout_s").where.line == 8


def test_cloudformation_lambda_with_an_event_source_mapping(tmp_path: Path) -> None:
    """Plain CloudFormation: AWS::Lambda::Function with a local Code folder and an SQS EventSourceMapping."""
    write(tmp_path, "code/w.py", "def handler(event, context):\n    return {}\n")
    path = write(tmp_path, "stack.yaml", """
        AWSTemplateFormatVersion: "2010-09-09"
        Resources:
          Worker:
            Type: AWS::Lambda::Function
            Properties:
              Code: code/
              Handler: w.handler
              Runtime: python3.11
              Timeout: 120
          Jobs:
            Type: AWS::SQS::Queue
            Properties:
              VisibilityTimeout: 720
          Mapping:
            Type: AWS::Lambda::EventSourceMapping
            Properties:
              FunctionName: !Ref Worker
              EventSourceArn: !GetAtt Jobs.Arn
              BatchSize: 1
        """)
    src = load_source(path)
    fn = src.get()
    assert src.format == "sam" and fn.agent is not None and fn.agent.endswith("code/w.py:handler")
    assert (fn.pattern, fn.overrides["visibility_timeout_s"], fn.overrides["task_deadline_s"]) == (
        "daemon", 720.0, 120.0)
    assert not src.not_mapped  # the queue and the mapping were both taken
