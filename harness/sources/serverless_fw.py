"""Serverless Framework ``serverless.yml``: each function under ``functions``, on AWS.

``provider`` gives the defaults (runtime, timeout, memorySize, environment), a function's own keys win
(environment merges). handler ``path/module.function`` -> the agent; timeout -> ``timeout_s`` (max 900 s,
A1); memorySize -> ``memory_mb`` (128-10,240 MB, A4); reservedConcurrency -> ``max_concurrency``;
provisionedConcurrency -> ``provisioned_concurrency``. Events: ``http`` keeps API Gateway REST's 29 s
(A16), ``httpApi`` likewise, and they give the handler API Gateway proxy events (1.0 / 2.0); an ``sqs``
event alone makes the function a daemon consumer of SQS event batches (batchSize, functionResponseType).
Unset timeout and memory: the Framework deploys its own defaults, which platform-facts.md does not hold,
so the profile's Lambda defaults apply and a warning says so. ``${...}`` variables are not resolved (run
``serverless print`` for the resolved file).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError, close_matches_hint

from .common import Builder, agent_from_handler, lambda_on_daemon, number
from .model import Mapped, NotMapped
from .parse import Doc, load_yaml_docs
from .sam import OTHER_RUNTIMES, PYTHON_RUNTIMES, batch_size, map_queue, no_batch_size, sqs_shape

__all__ = ["is_serverless_fw", "load_serverless_fw"]

_FN_KEYS = {"handler", "timeout", "memorySize", "environment", "events", "runtime", "reservedConcurrency",
            "provisionedConcurrency"}
_PROVIDER_KEYS = {"name", "runtime", "timeout", "memorySize", "environment"}
_TOP_WHY = {"plugins": "plugins are not run", "custom": "read only through ${self:custom...} variables, which are "
            "not resolved", "package": "packaging is not emulated: the handler's folder runs as is"}


def is_serverless_fw(data: Any) -> bool:
    """Whether a parsed document looks like a serverless.yml."""
    return isinstance(data, Mapping) and "service" in data and "provider" in data


def load_serverless_fw(file: Path) -> tuple[list[Mapped], list[NotMapped]]:
    """Every function of a serverless.yml."""
    docs = load_yaml_docs(file)
    if len(docs) != 1 or not is_serverless_fw(docs[0].data):
        raise ConfigError(f"{file}: not a Serverless Framework file (needs 'service' and 'provider')")
    doc = docs[0]
    data = doc.data
    provider = data.get("provider") or {}
    if provider.get("name") != "aws":
        raise ConfigError(f"{doc.where('provider', 'name').full}: provider.name {provider.get('name')!r} is not "
                          f"supported; the harness maps the aws provider only")
    functions = data.get("functions")
    if not isinstance(functions, Mapping) or not functions:
        raise ConfigError(f"{file}: declares no functions; nothing to deploy")
    notes = [NotMapped(k, doc.where(k), _TOP_WHY.get(k, "not emulated")) for k in data
             if k not in ("service", "frameworkVersion", "provider", "functions", "resources")]
    return [_function(doc, name, fn or {}, provider) for name, fn in functions.items()], notes


def _check_var(b: Builder, path: tuple[str | int, ...], value: Any) -> bool:
    if isinstance(value, str) and "${" in value:
        b.skip(path, f"{value!r} is a Serverless variable, resolved only on deploy; run 'serverless print' "
                     f"and point --from at its output, or set the value")
        return False
    return True


def _function(doc: Doc, name: str, fn: Mapping[str, Any], provider: Mapping[str, Any]) -> Mapped:
    b = Builder(doc, "serverless", name, "serverless", "aws-lambda")
    b.adapter = "lambda"
    fp: tuple[str | int, ...] = ("functions", name)
    events = fn.get("events") or []
    kinds = [next(iter(e)) for e in events if isinstance(e, Mapping) and e]
    if "sqs" in kinds and not ({"http", "httpApi"} & set(kinds)):
        b.pattern, b.profile = "daemon", "daemon-local"
        b.take((*fp, "events"), "pattern", "sqs", "daemon", "an sqs-triggered function is a queue consumer")
        lambda_on_daemon(b, (*fp, "events"), "sqs")

    def pick(key: str) -> tuple[Any, tuple[str | int, ...]] | None:
        if key in fn:
            return fn[key], (*fp, key)
        if key in provider:
            return provider[key], ("provider", key)
        return None

    runtime = pick("runtime")
    if runtime is not None and _check_var(b, runtime[1], runtime[0]):
        rt, path = runtime
        if rt not in PYTHON_RUNTIMES:
            other = rt in OTHER_RUNTIMES or str(rt).startswith(("nodejs", "java", "go", "ruby", "dotnet"))
            hint = ("is not Python; the harness runs Python agents only" if other
                    else f"is unknown{close_matches_hint(str(rt), PYTHON_RUNTIMES)}")
            raise ConfigError(f"{b.where(path).full}: runtime {rt!r} {hint}; expected one of: "
                              f"{', '.join(PYTHON_RUNTIMES)}")
        b.take(path, "runtime", rt, "python", "runs on the local Python interpreter")
    handler = fn.get("handler")
    agent = None
    if not isinstance(handler, str):
        b.skip(fp, "no handler: pass the agent yourself")
    else:
        folder, _, rest = handler.rpartition("/")
        agent = agent_from_handler(doc.file.parent / folder, rest, b.where((*fp, "handler")))
        b.take((*fp, "handler"), "agent", handler, agent, "Lambda handler(event, context)")
    timeout = pick("timeout")
    if timeout is not None and _check_var(b, timeout[1], timeout[0]):
        t = number(timeout[0], b.where(timeout[1]), "timeout", integer=True)
        b.limit(timeout[1], t, 1, 900, "Lambda's 1-900 s (A1)")
        b.take(timeout[1], "timeout_s", timeout[0], t, "A1", knob=(1.0, ""), label="timeout")
        if b.pattern == "daemon":
            b.overrides["task_deadline_s"] = t
    elif timeout is None:
        b.skip((*fp,), "no timeout: the Framework deploys its own default (not in platform-facts.md); the "
                       "profile's 3 s (sec. A24) applies here: set timeout to be sure")
    memory = pick("memorySize")
    if memory is not None and _check_var(b, memory[1], memory[0]):
        m = number(memory[0], b.where(memory[1]), "memorySize", integer=True)
        b.limit(memory[1], m, 128, 10240, "Lambda's 128-10,240 MB (A4)")
        b.take(memory[1], "memory_mb", memory[0], m, "A4", knob=(1.0, ""), label="memorySize")
    elif memory is None:
        b.skip((*fp,), "no memorySize: the Framework deploys its own default (not in platform-facts.md); the "
                       "profile's 128 MB (A4) applies here: set memorySize to be sure")
    for key, fld in (("reservedConcurrency", "max_concurrency"), ("provisionedConcurrency", "provisioned_concurrency")):
        if key in fn and _check_var(b, (*fp, key), fn[key]):
            n = number(fn[key], b.where((*fp, key)), key, integer=True)
            if b.pattern == "daemon":
                b.skip((*fp, key), "not emulated on a queue consumer")
                continue
            b.limit((*fp, key), n, 1 if key == "reservedConcurrency" else 0, None, "1 or more")
            b.take((*fp, key), fld, fn[key], int(n), "A1" if key == "reservedConcurrency" else "A11")
    for env, path in ((provider.get("environment"), ("provider", "environment")),
                      (fn.get("environment"), (*fp, "environment"))):
        if isinstance(env, Mapping):
            plain = {k: v for k, v in env.items() if _check_var(b, (*path, k), v)}
            b.add_env(path, plain)
        elif env is not None:
            b.skip(path, "expected a mapping of names to values")
    _events(b, fp, events)
    for k in fn:
        if k not in _FN_KEYS:
            b.skip((*fp, k), "not emulated by the harness")
    for k in provider:
        if k not in _PROVIDER_KEYS:
            b.skip(("provider", k), "not emulated by the harness")
    b.knob_unset("timeout_s", "timeout", fp)
    b.knob_unset("memory_mb", "memorySize", fp)
    return b.build(agent)


def _events(b: Builder, fp: tuple[str | int, ...], events: Any) -> None:
    if not isinstance(events, list):
        return
    http = False
    for i, ev in enumerate(events):
        if not isinstance(ev, Mapping) or not ev:
            continue
        kind = next(iter(ev))
        path = (*fp, "events", i, kind)
        if kind in ("http", "httpApi"):
            if not http:  # the first HTTP event sets the event shape the handler gets
                b.adapter = "apigw-v1" if kind == "http" else "apigw-v2"
                b.take(path, "adapter", kind, b.adapter,
                       "the handler gets API Gateway proxy events (REST: payload 1.0; HTTP API: 2.0)")
            http = True
            b.take(path, "gateway_timeout_s", kind, 29.0,
                   "API Gateway REST 29 s (A16)" if kind == "http" else
                   "ESTIMATE: HTTP API's own default is not in platform-facts.md; REST's 29 s (A16) stands in")
        elif kind == "sqs" and b.pattern == "daemon":
            sqs_shape(b, path, kind)
            spec = ev[kind]
            if isinstance(spec, Mapping):
                for k in spec:
                    if k == "arn" and isinstance(spec[k], Mapping):
                        map_queue(b.doc, b, (*path, k), spec[k], prefix=("resources",))
                    elif k == "batchSize":
                        n = number(spec[k], b.where((*path, k)), "batchSize", integer=True)
                        b.limit((*path, k), n, 1, 10000, "Lambda's SQS BatchSize range")
                        batch_size(b, (*path, k), spec[k], int(n))
                    elif k == "functionResponseType":
                        b.take((*path, k), "report_batch_item_failures", spec[k],
                               spec[k] == "ReportBatchItemFailures",
                               "batchItemFailures answers return only the named messages to the queue")
                    else:
                        b.skip((*path, k), "the in-memory broker stands in for the queue; its visibility timeout "
                                           "and redrive come from the profile" if k == "arn" else "not emulated")
                no_batch_size(b, path, spec)
            else:
                b.skip(path, "the in-memory broker stands in for the queue; its visibility timeout and redrive "
                             "come from the profile")
        else:
            b.skip(path, f"event {kind!r} is not emulated: the function is invoked directly")
    if not http and b.pattern == "serverless":
        b.overrides["gateway_timeout_s"] = None
