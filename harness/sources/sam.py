"""AWS SAM ``template.yaml`` / CloudFormation: each ``AWS::Serverless::Function`` (or ``AWS::Lambda::Function``).

Properties (``Globals.Function`` first, the function's own win; Environment variables merge): Handler +
CodeUri -> the agent (``CodeUri/module.py:function``, the Lambda adapter); Runtime checked (python3.x);
Timeout -> ``timeout_s`` (max 900 s, A1); MemorySize -> ``memory_mb`` (128-10,240 MB, A4);
Environment.Variables -> env; ReservedConcurrentExecutions -> ``max_concurrency``;
ProvisionedConcurrencyConfig -> ``provisioned_concurrency``. Events: ``Api`` keeps API Gateway's 29 s
(A16) and gives the handler REST proxy events (payload 1.0), ``HttpApi`` likewise with 2.0 events; no
HTTP event drops the gateway limit (a direct invoke or a Function URL has none: sec. A18); an ``SQS``
event alone makes it the daemon pattern, with the queue's VisibilityTimeout (0 s-12 h, Q1) and
RedrivePolicy maxReceiveCount (1-1,000, Q5) and the function's Timeout as the task deadline; the handler
gets SQS event batches of BatchSize (at most 10 here) and FunctionResponseTypes: ReportBatchItemFailures
returns only the failed messages; each invocation is priced as Lambda bills it, the queue's requests as SQS's
(``common.lambda_on_daemon``). ``!Ref`` to a Parameter with a Default resolves to the default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError, close_matches_hint

from .common import Builder, agent_from_handler, dig, lambda_on_daemon, number
from .model import Mapped, NotMapped
from .parse import Doc, load_yaml_docs

__all__ = ["batch_size", "is_sam", "load_sam", "map_queue", "no_batch_size", "sqs_shape"]

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
PYTHON_RUNTIMES = tuple(f"python3.{n}" for n in range(8, 15))
OTHER_RUNTIMES = ("nodejs18.x", "nodejs20.x", "nodejs22.x", "java11", "java17", "java21", "dotnet8", "ruby3.2",
                  "ruby3.3", "provided.al2", "provided.al2023", "go1.x")


def sqs_shape(b: Builder, path: tuple[str | int, ...], value: Any) -> None:
    """An SQS-triggered handler: Lambda's {"Records": [...]} events, one batch per invocation (sqsbatch.py)."""
    b.adapter = "sqs"
    b.take(path, "adapter", value, "sqs", "the handler gets SQS events ({'Records': [...]})")
    b.take(path, "event_source", value, "sqs", "one invocation per batch of messages")


def no_batch_size(b: Builder, path: tuple[str | int, ...], props: Mapping[str, Any]) -> None:
    """Without BatchSize the platform's own default applies, which platform-facts.md does not hold."""
    if "BatchSize" not in props and "batchSize" not in props:
        b.skip(path, "no BatchSize: Lambda's default is not in platform-facts.md, so batches of 1 here; set "
                     "BatchSize to test batches")


def batch_size(b: Builder, path: tuple[str | int, ...], value: Any, n: int) -> None:
    """BatchSize, capped at the 10 messages one receive returns (larger ones need a batching window)."""
    b.take(path, "batch_size", value, min(n, 10), "messages per invocation")
    if n > 10:
        b.skip(path, f"batches of {n} need a batching window, which is not emulated: batches of 10 here")


_HANDLED = {"Handler", "CodeUri", "Code", "Runtime", "Timeout", "MemorySize", "Environment", "Events",
            "ReservedConcurrentExecutions", "ProvisionedConcurrencyConfig", "FunctionName", "FunctionUrlConfig"}
_WHY = {
    "Policies": "IAM is not emulated", "Role": "IAM is not emulated", "Layers": "layers are not emulated",
    "Architectures": "the aws-lambda profile's prices are x86 (A13); arm64 prices are in platform-facts (A14)",
    "Tracing": "X-Ray is not emulated (every call has an OpenTelemetry trace)",
    "VpcConfig": "networking is not emulated", "EphemeralStorage": "/tmp size is not enforced",
    "SnapStart": "SnapStart is not emulated", "DeadLetterQueue": "async invoke DLQs are not emulated",
    "EventInvokeConfig": "async invoke retries follow the gateway's defaults",
    "AutoPublishAlias": "aliases and versions are not emulated (provisioned concurrency applies to the function)",
    "Description": "metadata only",
}


def is_sam(data: Any) -> bool:
    """Whether a parsed YAML/JSON document is a SAM or CloudFormation template with a Lambda function."""
    if not isinstance(data, Mapping):
        return False
    res = data.get("Resources")
    return (("AWSTemplateFormatVersion" in data or "Transform" in data) and isinstance(res, Mapping)) or (
        isinstance(res, Mapping) and any(isinstance(r, Mapping) and r.get("Type") in FUNCTION_TYPES
                                         for r in res.values()))


def load_sam(file: Path) -> tuple[list[Mapped], list[NotMapped]]:
    """Every function of a SAM/CloudFormation template."""
    docs = load_yaml_docs(file)
    if len(docs) != 1 or not is_sam(docs[0].data):
        raise ConfigError(f"{file}: not a SAM/CloudFormation template with an AWS::Serverless::Function")
    return _Template(docs[0]).functions(), _Template(docs[0]).others()


class _Template:
    def __init__(self, doc: Doc, prefix: tuple[str, ...] = ()) -> None:
        self.doc = doc
        self.data: Mapping[str, Any] = doc.data
        self.prefix = prefix  # where the CloudFormation part sits (serverless.yml: under "resources")
        self.resources: Mapping[str, Any] = dig(self.data, *prefix, "Resources") or {}
        self.params: Mapping[str, Any] = self.data.get("Parameters") or {}

    def resolve(self, value: Any, path: tuple[str | int, ...]) -> Any:
        """``!Ref Param`` and ``!Sub`` over parameters, to the parameter's Default; anything else as is."""
        if isinstance(value, Mapping) and set(value) == {"Ref"}:
            p = self.params.get(value["Ref"])
            if isinstance(p, Mapping) and "Default" in p:
                return self.resolve(p["Default"], ("Parameters", value["Ref"], "Default"))
        if isinstance(value, Mapping) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            text = value["Fn::Sub"]
            names = re.findall(r"\$\{([^}!]+)\}", text)
            if all(isinstance(self.params.get(n), Mapping) and "Default" in self.params[n] for n in names):
                for n in names:
                    text = text.replace("${" + n + "}", str(self.params[n]["Default"]))
                return text
        return value

    def origin(self, value: Any, path: tuple[str | int, ...]) -> tuple[Any, tuple[str | int, ...]]:
        """The value and where to change it: a parameter's Default for ``!Ref Param``, else the key itself."""
        if isinstance(value, Mapping) and set(value) == {"Ref"} and isinstance(self.params.get(value["Ref"]), Mapping) \
                and "Default" in self.params[value["Ref"]]:
            return self.params[value["Ref"]]["Default"], ("Parameters", value["Ref"], "Default")
        return value, path

    def functions(self) -> list[Mapped]:
        out = []
        for name, res in self.resources.items():
            if isinstance(res, Mapping) and res.get("Type") in FUNCTION_TYPES:
                out.append(self._function(name, res))
        if not out:
            raise ConfigError(f"{self.doc.file}: declares no AWS::Serverless::Function or AWS::Lambda::Function; "
                              f"nothing to deploy")
        return out

    def others(self) -> list[NotMapped]:
        """Resources that are neither functions nor queues a function consumes: reported, not emulated."""
        used = {str(dig(e, "Properties", "Queue", "Fn::GetAtt", 0)) for r in self.resources.values()
                if isinstance(r, Mapping) for e in (dig(r, "Properties", "Events") or {}).values()}
        used |= {str(dig(r, "Properties", "EventSourceArn", "Fn::GetAtt", 0)) for r in self.resources.values()
                 if dig(r, "Type") == "AWS::Lambda::EventSourceMapping"}
        dlqs = {str(dig(self.resources.get(q), "Properties", "RedrivePolicy", "deadLetterTargetArn", "Fn::GetAtt", 0))
                for q in used}
        out = []
        for name, res in self.resources.items():
            kind = dig(res, "Type")
            if kind in FUNCTION_TYPES or name in used or kind == "AWS::Lambda::EventSourceMapping":
                continue
            why = ("the dead-letter queue: the harness keeps dead letters itself (dead_lettered outcome)"
                   if name in dlqs else f"{kind} is not emulated")
            out.append(NotMapped(f"Resources.{name}", self.doc.where("Resources", name), why))
        for key in ("Conditions", "Mappings", "Outputs"):
            if key in self.data:
                out.append(NotMapped(key, self.doc.where(key), "not read"))
        return out

    def _props(self, name: str, res: Mapping[str, Any]) -> dict[str, tuple[Any, tuple[str | int, ...]]]:
        """Each property's value and where it came from: the function's own, else Globals.Function."""
        merged: dict[str, tuple[Any, tuple[str | int, ...]]] = {}
        serverless = res.get("Type") == "AWS::Serverless::Function"
        glob = dig(self.data, "Globals", "Function") if serverless else None
        for k, v in (glob or {}).items():
            merged[k] = (v, ("Globals", "Function", k))
        for k, v in (res.get("Properties") or {}).items():
            if k == "Environment" and k in merged and isinstance(v, Mapping):
                g = dig(merged[k][0], "Variables") or {}
                merged["Environment.Globals"] = (g, ("Globals", "Function", "Environment", "Variables"))
            merged[k] = (v, ("Resources", name, "Properties", k))
        return merged

    def _function(self, name: str, res: Mapping[str, Any]) -> Mapped:
        props = self._props(name, res)
        b = Builder(self.doc, "sam", name, "serverless", "aws-lambda")
        b.adapter = "lambda"
        base = ("Resources", name, "Properties")
        events = (res.get("Properties") or {}).get("Events") or {}
        kinds = {n: dig(e, "Type") for n, e in events.items()} if isinstance(events, Mapping) else {}
        http = [n for n, t in kinds.items() if t in ("Api", "HttpApi")]
        sqs = [n for n, t in kinds.items() if t == "SQS"]
        esms = self._mappings(name)
        if esms and not http and not sqs:  # plain CloudFormation: an EventSourceMapping from a queue
            b.pattern, b.profile = "daemon", "daemon-local"
            b.take(("Resources", esms[0], "Type"), "pattern", "AWS::Lambda::EventSourceMapping", "daemon",
                   "a queue's event source mapping makes it a queue consumer: the daemon pattern")
            lambda_on_daemon(b, ("Resources", esms[0], "Type"), "AWS::Lambda::EventSourceMapping")
            sqs_shape(b, ("Resources", esms[0], "Type"), "AWS::Lambda::EventSourceMapping")
            self._esm(b, esms[0])
        elif sqs and not http:
            b.pattern, b.profile = "daemon", "daemon-local"
            b.take((*base, "Events", sqs[0], "Type"), "pattern", "SQS", "daemon",
                   "an SQS-triggered function is a queue consumer: the daemon pattern (in-memory queue; "
                   "--profile daemon=daemon-sqs for SQS through moto)")
            lambda_on_daemon(b, (*base, "Events", sqs[0], "Type"), "SQS")
        self._runtime(b, props)
        agent = self._agent(b, props)
        self._limits(b, props)
        self._events(b, name, events, http, sqs)
        for k, (v, path) in props.items():
            if k == "Environment":
                b.add_env((*path, "Variables"), dig(self.resolve(v, path), "Variables"))
                for extra in set(v) - {"Variables"} if isinstance(v, Mapping) else ():
                    b.skip((*path, extra), "only Environment.Variables is read")
            elif k == "Environment.Globals":
                for gk, gv in v.items():
                    if gk not in b.env:
                        b.add_env((*path,), {gk: gv})
            elif k == "FunctionName":
                b.take(path, "function_name", v, name, "the logical id names the function here")
            elif k == "FunctionUrlConfig":
                if http:
                    b.skip(path, "the function also has an API event, whose gateway limit applies here; a Function "
                                 "URL has none (sec. A18): deploy a copy without the API event to test the URL")
                else:
                    b.take(path, "gateway_timeout_s", v, None, "a Function URL has no 29 s cap (sec. A18)")
            elif k not in _HANDLED:
                b.skip(path, _WHY.get(k, "not emulated by the harness"))
        for k in res or {}:
            if k not in ("Type", "Properties"):
                b.skip(("Resources", name, k), "resource attributes are not emulated")
        b.knob_unset("timeout_s", "Timeout", base)
        b.knob_unset("memory_mb", "MemorySize", base)
        return b.build(agent)

    def _mappings(self, name: str) -> list[str]:
        """The EventSourceMappings (from an SQS queue of this template) whose FunctionName is this function."""
        out = []
        for key, res in self.resources.items():
            fn = dig(res, "Properties", "FunctionName")
            target = dig(fn, "Ref") or dig(fn, "Fn::GetAtt", 0)
            if dig(res, "Type") == "AWS::Lambda::EventSourceMapping" and target == name:
                out.append(key)
        return out

    def _esm(self, b: Builder, key: str) -> None:
        props = dig(self.resources, key, "Properties") or {}
        path = ("Resources", key, "Properties")
        for k, v in props.items():
            if k == "EventSourceArn":
                self._queue(b, (*path, k), v)
            elif k in ("BatchSize", "FunctionResponseTypes"):
                self._sqs(b, ("Resources", key), {k: v})
            elif k != "FunctionName":
                b.skip((*path, k), "not emulated")
        no_batch_size(b, path, props)

    def _runtime(self, b: Builder, props: Mapping[str, Any]) -> None:
        if "Runtime" not in props:
            return
        value, path = props["Runtime"]
        runtime = self.resolve(value, path)
        where = b.where(path)
        if runtime in PYTHON_RUNTIMES:
            b.take(path, "runtime", runtime, "python", "runs on the local Python interpreter")
            b.overrides.pop("runtime", None)
            return
        if runtime in OTHER_RUNTIMES or (isinstance(runtime, str) and runtime.startswith(("nodejs", "java",
                                                                                         "dotnet", "ruby", "go"))):
            raise ConfigError(f"{where.full}: Runtime {runtime!r} is not Python; the harness runs Python agents "
                              f"only (python3.8-python3.14)")
        raise ConfigError(f"{where.full}: unknown Runtime {runtime!r}"
                          f"{close_matches_hint(str(runtime), PYTHON_RUNTIMES + OTHER_RUNTIMES)}; "
                          f"expected one of: {', '.join(PYTHON_RUNTIMES)}")

    def _agent(self, b: Builder, props: Mapping[str, Any]) -> str | None:
        if "Handler" not in props:
            b.skip(("Resources", b.name, "Properties"), "no Handler: pass the agent yourself")
            return None
        handler, hpath = props["Handler"]
        handler = self.resolve(handler, hpath)
        code_dir = self.doc.file.parent
        for key in ("CodeUri", "Code"):
            if key in props:
                code, cpath = props[key]
                code = self.resolve(code, cpath)
                if isinstance(code, str) and not code.startswith("s3://"):
                    code_dir = code_dir / code
                    b.take(cpath, "agent", code, str(code_dir), "the code folder")
                else:
                    b.skip(cpath, "code in S3 or inline is not read: the template's folder is used")
        if not isinstance(handler, str):
            raise ConfigError(f"{b.where(hpath).full}: Handler must be a string, got {handler!r}")
        agent = agent_from_handler(code_dir, handler, b.where(hpath))
        b.take(hpath, "agent", handler, agent, "Lambda handler(event, context)")
        return agent

    def _limits(self, b: Builder, props: Mapping[str, Any]) -> None:
        if "Timeout" in props:
            v, path = self.origin(*props["Timeout"])
            t = number(v, b.where(path), "Timeout", integer=True)
            b.limit(path, t, 1, 900, "Lambda's 1-900 s (A1)")
            b.take(path, "timeout_s", v, t, "A1: max 900 s", knob=(1.0, ""), label="Timeout")
            if b.pattern == "daemon":
                b.overrides["task_deadline_s"] = t  # the consumer function still stops at its timeout
        if "MemorySize" in props:
            v, path = self.origin(*props["MemorySize"])
            m = number(v, b.where(path), "MemorySize", integer=True)
            b.limit(path, m, 128, 10240, "Lambda's 128-10,240 MB (A4)")
            b.take(path, "memory_mb", v, m, "A4: 128-10,240 MB", knob=(1.0, ""), label="MemorySize")
        if "ReservedConcurrentExecutions" in props:
            v, path = props["ReservedConcurrentExecutions"]
            n = number(self.resolve(v, path), b.where(path), "ReservedConcurrentExecutions", integer=True)
            b.limit(path, n, 1, None, "1 or more (0 throttles every call)")
            if b.pattern == "daemon":
                b.take(path, "workers", v, int(n), "reserved concurrency: this many consumers at once")
            else:
                b.take(path, "max_concurrency", v, int(n), "reserved concurrency caps the function")
        if "ProvisionedConcurrencyConfig" in props:
            v, path = props["ProvisionedConcurrencyConfig"]
            n = dig(self.resolve(v, path), "ProvisionedConcurrentExecutions")
            if n is None or b.pattern == "daemon":
                b.skip(path, "needs ProvisionedConcurrentExecutions on a serverless function")
            else:
                pc = number(self.resolve(n, path), b.where(path), "ProvisionedConcurrentExecutions", integer=True)
                b.take((*path, "ProvisionedConcurrentExecutions"), "provisioned_concurrency", n, int(pc),
                       "A11: kept warm, billed from enable")

    def _events(self, b: Builder, name: str, events: Any, http: list[str], sqs: list[str]) -> None:
        base = ("Resources", name, "Properties", "Events")
        if not isinstance(events, Mapping):
            return
        if not http and b.pattern == "serverless":
            b.overrides["gateway_timeout_s"] = None  # invoked directly: no API Gateway in front (sec. A18)
        for ev, spec in events.items():
            kind = dig(spec, "Type")
            path = (*base, ev)
            if kind in ("Api", "HttpApi") and ev == http[0]:
                b.adapter = "apigw-v1" if kind == "Api" else "apigw-v2"
                b.take((*path, "Type"), "adapter", kind, b.adapter,
                       "the handler gets API Gateway proxy events (REST: payload 1.0; HTTP API: 2.0)")
            if kind == "Api":
                b.take((*path, "Type"), "gateway_timeout_s", "Api", 29.0, "API Gateway REST: 29 s (A16)")
            elif kind == "HttpApi":
                ms = dig(spec, "Properties", "TimeoutInMillis")
                if ms is not None:
                    t = number(ms, b.where((*path, "Properties", "TimeoutInMillis")), "TimeoutInMillis")
                    b.limit((*path, "Properties", "TimeoutInMillis"), t, 50, 29000,
                            "API Gateway's 50 ms-29 s (A16; HTTP APIs cannot be raised, sec. A17)")
                    b.take((*path, "Properties", "TimeoutInMillis"), "gateway_timeout_s", ms, t / 1000.0,
                           "A16", knob=(0.001, ""), label="TimeoutInMillis")
                else:
                    b.take((*path, "Type"), "gateway_timeout_s", "HttpApi", 29.0,
                           "ESTIMATE: HTTP API's own default is not in platform-facts.md; REST's 29 s (A16) "
                           "stands in (HTTP APIs cannot be raised, sec. A17)")
            elif kind == "SQS" and b.pattern == "daemon" and ev == sqs[0]:
                sqs_shape(b, (*path, "Type"), "SQS")
                self._sqs(b, path, dig(spec, "Properties") or {})
            elif kind == "SQS":
                b.skip(path, "a second trigger: the function runs behind its HTTP event here; deploy the "
                             "consumer as its own function to test it on the daemon pattern")
            else:
                b.skip(path, f"event type {kind!r} is not emulated: the function is invoked directly")

    def _sqs(self, b: Builder, path: tuple[str | int, ...], props: Mapping[str, Any]) -> None:
        pp = (*path, "Properties")
        for k, v in props.items():
            if k == "BatchSize":
                n = number(v, b.where((*pp, k)), "BatchSize", integer=True)
                b.limit((*pp, k), n, 1, 10000, "Lambda's SQS BatchSize range")
                batch_size(b, (*pp, k), v, int(n))
            elif k == "FunctionResponseTypes":
                report = isinstance(v, list) and "ReportBatchItemFailures" in v
                b.take((*pp, k), "report_batch_item_failures", v, report,
                       "batchItemFailures answers return only the named messages to the queue")
            elif k == "Queue":
                self._queue(b, (*pp, k), v)
            else:
                b.skip((*pp, k), "not emulated")
        no_batch_size(b, pp, props)

    def _queue(self, b: Builder, path: tuple[str | int, ...], ref: Any) -> None:
        target = None
        if isinstance(ref, Mapping) and "Fn::GetAtt" in ref:
            att = ref["Fn::GetAtt"]
            target = att[0] if isinstance(att, list) and att else None
        elif isinstance(ref, Mapping) and "Ref" in ref:
            target = ref["Ref"]
        queue = self.resources.get(target) if isinstance(target, str) else None
        if not isinstance(queue, Mapping) or queue.get("Type") != "AWS::SQS::Queue":
            b.skip(path, "the queue is not an AWS::SQS::Queue of this template: its VisibilityTimeout and "
                         "redrive are not known; the profile's defaults apply")
            return
        qp = (*self.prefix, "Resources", str(target), "Properties")
        props = queue.get("Properties") or {}
        b.take(path, "queue", target, "memory://", "the in-memory broker stands in for the queue")
        b.overrides.pop("queue", None)
        if "VisibilityTimeout" in props:
            v = number(self.resolve(props["VisibilityTimeout"], (*qp, "VisibilityTimeout")),
                       b.where((*qp, "VisibilityTimeout")), "VisibilityTimeout", integer=True)
            b.limit((*qp, "VisibilityTimeout"), v, 0, 43200, "SQS's 0 s-12 h (Q1)")
            if v == 0:
                b.skip((*qp, "VisibilityTimeout"), "0 s: every message is visible again at once; not emulated")
            else:
                b.take((*qp, "VisibilityTimeout"), "visibility_timeout_s", props["VisibilityTimeout"], v,
                       "Q1", knob=(1.0, ""), label="VisibilityTimeout")
        redrive = props.get("RedrivePolicy")
        if isinstance(redrive, Mapping) and "maxReceiveCount" in redrive:
            rp = (*qp, "RedrivePolicy", "maxReceiveCount")
            n = number(redrive["maxReceiveCount"], b.where(rp), "maxReceiveCount", integer=True)
            b.limit(rp, n, 1, 1000, "SQS's 1-1,000 (Q5)")
            b.take(rp, "max_receives", redrive["maxReceiveCount"], int(n), "Q5", knob=(1.0, ""),
                   label="maxReceiveCount")
        for k in props:
            if k not in ("VisibilityTimeout", "RedrivePolicy"):
                b.skip((*qp, k), "queue property not emulated")


def map_queue(doc: Doc, b: Builder, path: tuple[str | int, ...], ref: Any, prefix: tuple[str, ...] = ()) -> None:
    """An SQS queue referenced at ``path`` (``!GetAtt Q.Arn`` / ``!Ref Q``): its visibility and redrive, if known."""
    _Template(doc, prefix)._queue(b, path, ref)
