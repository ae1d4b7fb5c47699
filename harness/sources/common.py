"""What every format shares: a builder that records each key as taken or not mapped, and agent lookup.

``Builder.build`` checks every override against the profile it lands on (``Profile.replace``: types,
ranges, the platform maximum), so a Lambda ``Timeout: 1000`` is a ConfigError naming ``template.yaml:12``
and the key, not a bare ``timeout_s``. ``limit`` checks what profiles do not (platform ranges cited from
platform-facts.md).
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from emulators.distributions import Distribution
from emulators.errors import ConfigError
from emulators.profiles import load_profile
from emulators.profiles.fidelity import read_fidelity

from .model import Knob, Mapped, NotMapped, Taken, Where
from .parse import Doc

__all__ = ["LAMBDA_CONSUMER_FIELDS", "Builder", "agent_from_command", "agent_from_file", "agent_from_handler", "dig",
           "dockerfile_cmd", "lambda_on_daemon", "number"]

# A Lambda function consuming a queue runs on the daemon pattern but stays a Lambda, so these fields come
# from the aws-lambda profile (read from it, not copied): CPU follows memory (1,769 MB = 1 vCPU, A4; at most
# 6 vCPUs, A5), the runtime's boot (A21), and the bill: per invocation, the billed duration at MemorySize
# plus the request price (A13), init billed like invoke (A26).
_FROM_LAMBDA = ("mb_per_vcpu", "max_vcpus", "cold_start_overhead_ms", "price_per_million_requests_usd",
                "price_gb_s_usd", "billing_granularity_ms", "bill_init")
# The queue stands for the template's SQS queue, so its requests are priced as the daemon-sqs profile prices
# SQS: $0.40 per 1M requests (sec. A58), one per started 64 KB of a message (A57).
_FROM_SQS = ("price_per_million_queue_requests_usd", "queue_request_chunk_bytes")
# Every field lambda_on_daemon sets: the platform's numbers for a consumer, none of them the file's own.
LAMBDA_CONSUMER_FIELDS = frozenset((*_FROM_LAMBDA, *_FROM_SQS, "price_worker_hour_usd", "vcpus"))
_NOT_FIELDS = {"env", "agent", "pattern", "profile", "adapter", "runtime", "function_name", "billing"}
AGENT_NAMES = ("agent", "handler", "lambda_handler", "main")  # the callables looked for in a named file


def dig(data: Any, *path: str | int) -> Any:
    """``data[p0][p1]...`` or None when any step is missing."""
    for p in path:
        if isinstance(p, int):
            if not isinstance(data, list) or p >= len(data):
                return None
        elif not isinstance(data, Mapping) or p not in data:
            return None
        data = data[p]
    return data


def lambda_on_daemon(b: Builder, path: tuple[str | int, ...], value: Any) -> None:
    """A Lambda queue consumer on the daemon pattern: priced and sized as Lambda, its queue priced as SQS."""
    lam, sqs = load_profile("aws-lambda"), load_profile("daemon-sqs")
    for prof, names in ((lam, _FROM_LAMBDA), (sqs, _FROM_SQS)):
        cited = {f.field: f.note for f in read_fidelity(Path(prof.source)).fields}  # the file's own citations
        for name in names:
            v = getattr(prof, name)
            mapped = v.to_json() if isinstance(v, Distribution) else v  # a table, as a profile file has it
            b.take(path, name, value, mapped, f"{prof.name}.toml: {cited.get(name, 'its value')}")
    b.take(path, "price_worker_hour_usd", value, 0.0, "no worker kept up: Lambda bills invocations only")
    b.overrides["vcpus"] = None  # CPU follows memory (mb_per_vcpu), not a worker's fixed share
    b.take(path, "billing", value, "per invocation",
           f"as Lambda bills it: billed ms (rounded to {lam.billing_granularity_ms:g} ms) x MemorySize GB x "
           f"${lam.price_gb_s_usd:.10f}/GB-s + ${lam.price_per_million_requests_usd:.2f}/1M requests (A13), init "
           f"billed (A26); SQS requests ${sqs.price_per_million_queue_requests_usd:.2f}/1M (sec. A58), one per "
           f"{sqs.queue_request_chunk_bytes or 0:,} bytes (A57); no worker-hours")


def number(value: Any, where: Where, key: str, *, integer: bool = False) -> float:
    """A number as written (a numeric string too); anything else is a ConfigError naming the key and line."""
    if isinstance(value, bool):
        raise ConfigError(f"{where.full}: {key} must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(f"{where.full}: {key} must be a number, got {value!r}") from None
    if not isinstance(value, int | float):
        raise ConfigError(f"{where.full}: {key} must be a number, got {value!r}; an intrinsic function or "
                          f"variable that is not resolved here must be replaced by its value")
    if integer and float(value) != int(value):
        raise ConfigError(f"{where.full}: {key} must be a whole number, got {value!r}")
    return float(value)


class Builder:
    """Collects one function's mapping: overrides, env, taken and not-mapped keys, knobs."""

    def __init__(self, doc: Doc, fmt: str, name: str, pattern: str, profile: str) -> None:
        self.doc = doc
        self.fmt = fmt
        self.name = name
        self.pattern = pattern
        self.profile = profile
        self.overrides: dict[str, Any] = {}
        self.env: dict[str, str] = {}
        self.taken: list[Taken] = []
        self.skipped: list[NotMapped] = []
        self.knobs: dict[str, Knob] = {}
        self.adapter = "auto"

    def where(self, path: Iterable[str | int]) -> Where:
        """Where ``path`` is in the file."""
        return self.doc.where(*path)

    def take(self, path: tuple[str | int, ...], field: str, value: Any, mapped: Any, note: str = "", *,
             knob: tuple[float, str] | None = None, label: str | None = None) -> None:
        """``path`` (value ``value``) sets ``field`` to ``mapped``; ``knob=(factor, unit)`` records the way back."""
        where = self.where(path)
        key = ".".join(str(p) for p in path)
        if field not in _NOT_FIELDS:
            self.overrides[field] = mapped
        self.taken.append(Taken(key, value, field, mapped, where, note))
        if knob is not None:
            self.knobs[field] = Knob(field, label or str(path[-1]), where, value, knob[0], knob[1])

    def knob_unset(self, field: str, label: str, path: tuple[str | int, ...], factor: float = 1.0,
                   unit: str = "") -> None:
        """Where ``field`` would be set (the file does not set it)."""
        if field not in self.knobs:
            self.knobs[field] = Knob(field, label, self.where(path), None, factor, unit)

    def skip(self, path: tuple[str | int, ...], why: str) -> None:
        """``path`` is not emulated: a warning naming it, its line and why."""
        self.skipped.append(NotMapped(".".join(str(p) for p in path), self.where(path), why))

    def limit(self, path: tuple[str | int, ...], value: float, low: float | None, high: float | None,
              what: str) -> None:
        """A ConfigError naming the file, line and key when ``value`` is outside [low, high]."""
        if (low is not None and value < low) or (high is not None and value > high):
            where = self.where(path)
            key = ".".join(str(p) for p in path)
            raise ConfigError(f"{where.full}: {key} = {value:g} is outside {what}; change it in {where}")

    def add_env(self, path: tuple[str | int, ...], variables: Any) -> None:
        """Environment variables from a name -> value mapping; non-string values that are not plain are skipped."""
        if variables is None:
            return
        if not isinstance(variables, Mapping):
            self.skip(path, f"expected a mapping of names to values, got {type(variables).__name__}")
            return
        for k, v in variables.items():
            if isinstance(v, str | int | float) and not isinstance(v, bool):
                self.env[str(k)] = str(v)
            elif isinstance(v, bool):
                self.env[str(k)] = "true" if v else "false"
            else:
                self.skip((*path, k), f"the value {v!r} is resolved only on deploy (an intrinsic or a reference); "
                                      f"set {k} in the env yourself")
                continue
            self.taken.append(Taken(".".join(str(p) for p in (*path, k)), "…", "env", str(k), self.where((*path, k))))

    def container_agent(self, cp: tuple[str | int, ...], container: Mapping[str, Any]) -> str | None:
        """The agent a Kubernetes-style container's command/args (else the Dockerfile's CMD beside the file) runs."""
        words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])] \
            or dockerfile_cmd(self.doc.file.parent)
        agent, how, app = agent_from_command(words, self.doc.file.parent)
        if agent is not None:
            self.command_agent((*cp, "command" if "command" in container else "args"), " ".join(words), agent, how,
                               app)
        else:
            self.skip(cp, how + "; pass the agent yourself")
        return agent

    def command_agent(self, path: tuple[str | int, ...], command: str, agent: str, how: str, app: bool) -> None:
        """Take the agent a command runs; an app an ASGI server serves also sets ``adapter="asgi"``."""
        self.take(path, "agent", command, agent, how)
        if app:
            self.adapter = "asgi"
            self.take(path, "adapter", command, "asgi", "an ASGI server's command: the app gets HTTP requests")

    def container_env(self, cp: tuple[str | int, ...], container: Mapping[str, Any], unresolved: str) -> None:
        """A Kubernetes-style container's ``env`` list: plain values taken, ``valueFrom`` ones skipped (why)."""
        for i, e in enumerate(container.get("env") or []):
            if isinstance(e, Mapping) and "value" in e:
                self.add_env((*cp, "env", i), {str(e["name"]): e["value"]})
            else:
                self.skip((*cp, "env", i), unresolved)

    def container_keys(self, cp: tuple[str | int, ...], container: Mapping[str, Any], known: tuple[str, ...]) -> None:
        """Warn about a container's keys that are not emulated (the image: the local code runs instead)."""
        for k in container:
            if k == "image":
                self.skip((*cp, k), "the image is not run: the local code its command names is")
            elif k not in known:
                self.skip((*cp, k), "not emulated")

    def build(self, agent: str | None) -> Mapped:
        """The Mapped function; every override checked against its profile, errors naming the file and line."""
        base = load_profile(self.profile, self.pattern)
        by_field = {t.field: t for t in self.taken}
        for fname, value in self.overrides.items():
            try:
                base.replace(**{fname: value})
            except ConfigError as exc:
                t = by_field.get(fname)
                where = t.where.full if t else str(self.doc.file)
                key = f"{t.key} = {t.value!r}" if t else fname
                raise ConfigError(f"{where}: {key} (-> {fname} on {self.profile}): {exc}; change it in the file"
                                  ) from None
        try:
            base.replace(**self.overrides)
        except ConfigError as exc:
            raise ConfigError(f"{self.doc.file}: function {self.name!r}: {exc}") from None
        return Mapped(self.name, agent, self.pattern, self.profile, dict(self.overrides), dict(self.env),
                      self.doc.file, self.fmt, self.adapter, tuple(self.taken), tuple(self.skipped),
                      dict(self.knobs))


def _defines(path: Path, names: Iterable[str]) -> str | None:
    """The first of ``names`` defined at module level in ``path`` (None if none, or it does not parse)."""
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError):
        return None
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Assign):
            bound.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return next((n for n in names if n in bound), None)


def agent_from_handler(code_dir: Path, handler: str, where: Where) -> str:
    """A Lambda-style ``module.function`` handler under ``code_dir`` as ``/abs/module.py:function``."""
    module, sep, func = handler.rpartition(".")
    if not sep or not module or not func:
        raise ConfigError(f"{where.full}: Handler {handler!r} is not of the form 'module.function' "
                          f"(e.g. 'app.lambda_handler'); fix it in the file")
    file = code_dir / (module.replace(".", "/") + ".py")
    if not file.is_file():
        raise ConfigError(f"{where.full}: Handler {handler!r}: {file} does not exist; check the handler and the "
                          f"code folder (CodeUri / the file's folder)")
    return f"{file.resolve()}:{func}"


def agent_from_file(file: Path, where: Where, names: Iterable[str] = AGENT_NAMES) -> str:
    """``file``'s agent callable (``agent``, else ``handler``...) as ``/abs/file.py:name``."""
    if not file.is_file():
        raise ConfigError(f"{where.full}: {file} does not exist; check the path in the file")
    name = _defines(file, names)
    if name is None:
        raise ConfigError(f"{where.full}: {file} defines none of {', '.join(names)}; the harness runs "
                          f"agent(task, ctx) or handler(event, context) (an ASGI app or a fetch handler needs "
                          f"the app support of issue 21 part 2)")
    return f"{file.resolve()}:{name}"


_SPEC = re.compile(r"^([\w./-]+\.py|[A-Za-z_][\w.]*):([A-Za-z_][\w.]*)$")


def agent_from_command(words: Iterable[str], base: Path) -> tuple[str | None, str, bool]:
    """The agent a container's command names, how it was found (or why not), and whether it is an ASGI app.

    Recognised: a ``file.py:callable`` or ``module:callable`` word whose file is under ``base``;
    ``python file.py`` and ``python -m module`` (the file's ``agent``/``handler``). A ``module:app`` that an
    ASGI server (uvicorn, gunicorn, hypercorn, fastapi) serves is an app: it deploys with ``adapter="asgi"``
    (on container, a real uvicorn per replica, as the image's own command would run it).
    """
    tokens: list[str] = []
    for w in words:
        tokens += shlex.split(w) if " " in w else [w]
    servers = {"uvicorn", "gunicorn", "hypercorn", "fastapi"}
    asgi = any(Path(t).name in servers for t in tokens)
    for i, t in enumerate(tokens):
        m = _SPEC.match(t)
        if m is not None:
            target, attr = m.groups()
            file = base / (target if target.endswith(".py") else target.replace(".", "/") + ".py")
            if file.is_file():
                if asgi:
                    return f"{file.resolve()}:{attr}", f"{tokens[0]} serves the ASGI app {t!r}", True
                return f"{file.resolve()}:{attr}", f"the command names {t!r}", False
        if t.endswith(".py") and (base / t).is_file() and i > 0 and Path(tokens[i - 1]).name.startswith("python"):
            name = _defines(base / t, AGENT_NAMES)
            if name is not None:
                return f"{(base / t).resolve()}:{name}", f"'python {t}' runs {name}", False
        if t == "-m" and i + 1 < len(tokens):
            file = base / (tokens[i + 1].replace(".", "/") + ".py")
            name = _defines(file, AGENT_NAMES) if file.is_file() else None
            if name is not None:
                return f"{file.resolve()}:{name}", f"'python -m {tokens[i + 1]}' runs {name}", False
    return None, "no agent file:callable found in the command" + (f" {' '.join(tokens)!r}" if tokens else ""), False


def dockerfile_cmd(folder: Path) -> list[str]:
    """The ENTRYPOINT + CMD words of a ``Dockerfile`` in ``folder`` (exec or shell form), or []."""
    path = folder / "Dockerfile"
    if not path.is_file():
        return []
    import json

    words: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^\s*(CMD|ENTRYPOINT)\s+(.*)$", line, re.I)
        if m:
            rest = m.group(2).strip()
            try:
                parsed = json.loads(rest)
                words[m.group(1).upper()] = [str(x) for x in parsed] if isinstance(parsed, list) else [rest]
            except json.JSONDecodeError:
                words[m.group(1).upper()] = shlex.split(rest)
    return words.get("ENTRYPOINT", []) + words.get("CMD", [])
