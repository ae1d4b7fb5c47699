"""Deployment files as profiles, the AWS formats (SAM/CloudFormation, serverless.yml), detection and picking."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from emulators.billing import bills_invocations
from emulators.errors import ConfigError
from emulators.profiles import load_profile
from harness.sources import detect_format, load_source
from harness.sources.apply import mapped_profile

from .sources_files import SAMPLES, taken, write

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
    assert (api.pattern, api.profile, api.adapter) == ("serverless", "aws-lambda", "apigw-v1")  # REST proxy events
    assert api.agent is not None and api.agent.endswith("sam/src/api.py:handler")
    assert api.overrides["timeout_s"] == 20.0  # !Ref AgentTimeout -> the parameter's Default
    assert api.overrides["memory_mb"] == 256.0 and api.overrides["max_concurrency"] == 5
    assert api.overrides["gateway_timeout_s"] == 29.0
    assert api.env == {"MODEL": "gpt-4o-mini", "LOG_LEVEL": "info"}  # Globals' variables merge
    assert (worker.pattern, worker.overrides["visibility_timeout_s"], worker.overrides["max_receives"]) == (
        "daemon", 120.0, 3)
    assert worker.overrides["memory_mb"] == 128.0 and worker.overrides["task_deadline_s"] == 60.0
    # still a Lambda on the daemon pattern: CPU follows memory (A4), and it is billed per invocation
    assert worker.overrides["mb_per_vcpu"] == 1769.0 and not any("worker-hours" in w for w in worker.warnings())
    assert worker.adapter == "sqs"  # SQS event batches, partial failures reported
    assert (worker.overrides["event_source"], worker.overrides["batch_size"],
            worker.overrides["report_batch_item_failures"]) == ("sqs", 5, True)
    assert any("JobDeadLetters" in w for w in src.warnings())


def test_sam_sqs_consumer_is_priced_from_the_lambda_and_sqs_profiles() -> None:
    """An SQS consumer takes Lambda's per-invocation prices and SQS's request prices from the shipped profiles."""
    worker = load_source(SAMPLES / "sam" / "template.yaml").get("WorkerFunction")
    lam, sqs = load_profile("aws-lambda"), load_profile("daemon-sqs")
    p = mapped_profile(worker)
    assert (p.price_gb_s_usd, p.price_per_million_requests_usd) == (lam.price_gb_s_usd,
                                                                    lam.price_per_million_requests_usd)
    assert (p.billing_granularity_ms, p.bill_init, p.cold_start_overhead_ms) == (
        lam.billing_granularity_ms, True, lam.cold_start_overhead_ms)
    assert (p.price_per_million_queue_requests_usd, p.queue_request_chunk_bytes) == (
        sqs.price_per_million_queue_requests_usd, sqs.queue_request_chunk_bytes) == (0.40, 65536)
    assert p.price_worker_hour_usd == 0 and p.memory_mb == 128 and bills_invocations(p)
    billing = taken(worker, "billing")
    assert str(billing.where) == "template.yaml:45" and "A13" in billing.note and "A57" in billing.note


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
    assert digest.adapter == "sqs" and digest.overrides["batch_size"] == 10
    assert digest.overrides.get("report_batch_item_failures") is None  # not declared: Lambda deletes the batch


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
    """An sqs arn of a queue in resources gives its visibility, redrive and SQS prices; a bad runtime is an error."""
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
    # priced as Lambda bills the consumer, per invocation (the event list's line), not by the worker-hour
    assert bills_invocations(mapped_profile(fn)) and mapped_profile(fn).price_worker_hour_usd == 0
    assert str(taken(fn, "billing").where) == "serverless.yml:9"
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


def test_serverless_concurrency_and_unset_limits(tmp_path: Path) -> None:
    """reservedConcurrency and provisionedConcurrency map; unset timeout and memorySize are reported."""
    write(tmp_path, "h.py", "def f(event, context):\n    return {}\n")
    path = write(tmp_path, "serverless.yml", """
        service: s
        provider: {name: aws}
        functions:
          f:
            handler: h.f
            reservedConcurrency: 3
            provisionedConcurrency: 1
        """)
    fn = load_source(path).get()
    assert (fn.overrides["max_concurrency"], fn.overrides["provisioned_concurrency"]) == (3, 1)
    assert any("no timeout" in w for w in fn.warnings()) and any("no memorySize" in w for w in fn.warnings())
    assert fn.overrides["gateway_timeout_s"] is None  # no http event: invoked directly
