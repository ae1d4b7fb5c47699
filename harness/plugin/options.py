"""The plugin's command-line options and ini keys, validated once into a frozen ``Settings``.

Precedence, later wins: built-in defaults, ``[tool.harness]`` in the project's pyproject.toml, the ini
file (``harness_*`` keys), the command line (``--harness-*``). Invalid values are a ``pytest.UsageError``
that says what is wrong and what is accepted, before any test runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from emulators.errors import ConfigError
from emulators.profiles import IMPLEMENTED_PATTERNS, PATTERNS

from ..config import check_memory_url, parse_time_scale, project_defaults
from ..reports.compare import DEFAULT_FAIL_ON, Rule, parse_fail_on

__all__ = ["SCOPES", "Settings", "add_options", "read_settings"]

SCOPES = ("function", "module", "session")
DEFAULT_TIME_SCALE: float | None = None  # the virtual clock

# (name, help, ini type) for every option; the ini key is the option name with "_" for "-".
_OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("agent", "AGENT", "The agent to deploy: 'module:callable' or 'path/to/file.py:callable'.", "string"),
    ("from", "PATH", "A deployment file (template.yaml, serverless.yml, wrangler.toml, vercel.json, Kubernetes "
                     "manifests or a folder of them, fly.toml, Cloud Run service.yaml): the agent, pattern, limits "
                     "and env come from it.",
     "string"),
    ("function", "NAME", "With --harness-from: the function or service of the file to deploy (needed when it "
                         "declares several).", "string"),
    ("patterns", "LIST", "Comma-separated patterns the `deployment` fixture runs under, or 'all' (every "
                         "implemented pattern). [default: all]", "string"),
    ("profile", "[PATTERN=]NAME", "Profile name or .toml path, for one pattern or all (repeatable).", "linelist"),
    ("time-scale", "SCALE", "'virtual' (emulated waits cost no wall time) or wall seconds per platform second. "
                            "[default: virtual]", "string"),
    ("scope", "SCOPE", "How long one deployment lives: function, module or session (one per agent, pattern, "
                       "profile and overrides). [default: module]", "string"),
    ("report", "PATH", "Write the JSON report (summaries, records, run metadata) to PATH.", "string"),
    ("html", "PATH", "Write the self-contained HTML report with charts to PATH.", "string"),
    ("markdown", "PATH", "Write the Markdown summary to PATH (e.g. \"$GITHUB_STEP_SUMMARY\").", "string"),
    ("baseline", "PATH", "A JSON report to compare this run against; a regression fails the session.", "string"),
    ("traces", "PATH", "Write every call's OpenTelemetry trace to PATH as OTLP/JSON lines (rewritten per session).",
     "string"),
    ("fail-on", "RULES", f"Regression thresholds and SLOs, e.g. p95:+20%,cost:+10%,failures:+0 or p95<2s. "
                         f"[default with a baseline: {DEFAULT_FAIL_ON}]", "string"),
    ("runtime", "RUNTIME", "Instance runtime: process, docker (a container per instance), or docker:IMAGE. "
                           "[default: process]", "string"),
    ("memory", "URL", "ctx.memory's store for every deployment: sqlite:///path or postgresql://... "
                      "[default: a SQLite file per deployment]", "string"),
    ("backend", "NAME=container|URL", "A queue/state backend for the run: redis, rabbitmq, postgres or sqs, "
                                      "started in a container (testcontainers) or at a URL (repeatable).", "linelist"),
)


def add_options(parser: pytest.Parser) -> None:
    """Register every ``--harness-*`` option and its ``harness_*`` ini key."""
    group = parser.getgroup("harness", "agent deployment harness")
    for name, metavar, ini_help, ini_type in _OPTIONS:
        dest = f"harness_{name.replace('-', '_')}"
        help_text = ini_help.replace("%", "%%")  # argparse %-formats option help; "+20%" would break --help
        if ini_type == "linelist":
            group.addoption(f"--harness-{name}", dest=dest, action="append", metavar=metavar, default=None,
                            help=help_text)
        else:
            group.addoption(f"--harness-{name}", dest=dest, metavar=metavar, default=None, help=help_text)
        parser.addini(dest, ini_help, type=ini_type, default=None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Settings:
    """The plugin's validated configuration for this session."""

    agent: str | None = None
    patterns: tuple[str, ...] = IMPLEMENTED_PATTERNS
    profiles: Mapping[str, str] = field(default_factory=dict)  # pattern -> profile name or path
    time_scale: float | None = DEFAULT_TIME_SCALE
    scope: str = "module"
    report: Path | None = None
    html: Path | None = None
    markdown: Path | None = None
    baseline: Path | None = None
    fail_on: tuple[Rule, ...] = ()
    runtime: str = "process"
    backends: Mapping[str, str] = field(default_factory=dict)  # backend name -> "container" or a URL
    traces: Path | None = None
    memory: str | None = None  # ctx.memory's store URL for every deployment (None: a SQLite file per deployment)
    source: Path | None = None  # --harness-from: a deployment file
    functions: tuple[tuple[str, str], ...] = ()  # its functions (all, or --harness-function's) and their patterns

    @property
    def function(self) -> str | None:
        """The one function of ``--harness-from`` (None when it declares several and none was picked)."""
        return self.functions[0][0] if len(self.functions) == 1 else None

    def profile_for(self, pattern: str) -> str | None:
        """The profile configured for ``pattern`` (None: the pattern's default)."""
        return self.profiles.get(pattern, self.profiles.get("*"))


def parse_patterns(value: str | list[str] | tuple[str, ...], where: str) -> tuple[str, ...]:
    """'all' or a comma-separated list (or a list) of patterns; unknown names are a UsageError."""
    items = [value] if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        for name in (n.strip() for n in str(item).split(",")):
            if name == "all":
                names += IMPLEMENTED_PATTERNS
            elif name:
                names.append(name)
    for name in names:
        if name not in PATTERNS:
            raise pytest.UsageError(f"{where}: unknown pattern {name!r}; expected one of: {', '.join(PATTERNS)} "
                                    f"(or 'all')")
    if not names:
        raise pytest.UsageError(f"{where}: no pattern given; expected one of: {', '.join(PATTERNS)} (or 'all')")
    return tuple(dict.fromkeys(names))


def _raw(config: pytest.Config, name: str, defaults: Mapping[str, Any]) -> Any:
    dest = f"harness_{name.replace('-', '_')}"
    value = config.getoption(dest)
    if value is None:
        value = config.getini(dest)
    if value in (None, "", []):
        value = defaults.get(name.replace("-", "_"))
    return value


def _path(value: Any, base: Path) -> Path | None:
    return None if value in (None, "") else base / Path(str(value)).expanduser()


def read_settings(config: pytest.Config) -> Settings:
    """Validate the options, ini keys and ``[tool.harness]``; raises pytest.UsageError for a bad value."""
    try:
        defaults = project_defaults(config.rootpath)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    base = config.invocation_params.dir
    source, functions, declared = _source(config, base)
    raw_patterns = _raw(config, "patterns", {} if source is not None else defaults)
    patterns = declared if source is not None and not raw_patterns else parse_patterns(
        raw_patterns or "all", "--harness-patterns")
    profiles: dict[str, str] = {}
    raw_profiles = _raw(config, "profile", {}) or []
    if isinstance(defaults.get("profile"), Mapping):
        profiles.update({str(k): str(v) for k, v in defaults["profile"].items()})
    for item in raw_profiles:
        pattern, sep, name = str(item).partition("=")
        if not sep:
            profiles["*"] = item.strip()
            continue
        if pattern.strip() not in PATTERNS:
            raise pytest.UsageError(f"--harness-profile {item!r}: unknown pattern {pattern.strip()!r}; "
                                    f"expected PATTERN=NAME with PATTERN one of: {', '.join(PATTERNS)}")
        profiles[pattern.strip()] = name.strip()
    ts_raw = _raw(config, "time-scale", defaults)
    try:
        time_scale = parse_time_scale(ts_raw)
    except ConfigError:
        raise pytest.UsageError(f"--harness-time-scale {ts_raw!r}: expected 'virtual' (the default) or a positive "
                                f"number (wall seconds per platform second), e.g. 0.01") from None
    scope = str(_raw(config, "scope", {}) or "module")
    if scope not in SCOPES:
        raise pytest.UsageError(f"--harness-scope {scope!r}: expected one of: {', '.join(SCOPES)}")
    baseline = _path(_raw(config, "baseline", {}), base)
    if baseline is not None:
        from ..reports import load_report

        try:
            load_report(baseline)  # read now: a bad baseline is a usage error, not a surprise at the end
        except ConfigError as exc:
            raise pytest.UsageError(f"--harness-baseline: {exc}") from None
    fail_text = _raw(config, "fail-on", {})
    try:
        rules = parse_fail_on(fail_text or DEFAULT_FAIL_ON) if (fail_text or baseline is not None) else []
    except ConfigError as exc:
        raise pytest.UsageError(str(exc).replace("--fail-on", "--harness-fail-on")) from None
    if baseline is None and any(r.needs_baseline for r in rules):
        raise pytest.UsageError(f"--harness-fail-on {fail_text!r} compares against a baseline; add "
                                f"--harness-baseline PATH, or use absolute SLOs such as p95<2s,failures=0")
    agent = _raw(config, "agent", {})
    runtime, backends = _runtime_and_backends(config)
    memory = str(_raw(config, "memory", {}) or "") or None
    try:
        check_memory_url(memory)
    except ConfigError as exc:
        raise pytest.UsageError(f"--harness-memory: {exc}") from None
    return Settings(runtime=runtime, backends=backends, memory=memory,
                    agent=str(agent) if agent else None, patterns=patterns, profiles=profiles,
                    time_scale=time_scale, scope=scope, report=_path(_raw(config, "report", {}), base),
                    html=_path(_raw(config, "html", {}), base), markdown=_path(_raw(config, "markdown", {}), base),
                    baseline=baseline, fail_on=tuple(rules), traces=_path(_raw(config, "traces", {}), base),
                    source=source, functions=functions)


def _source(config: pytest.Config, base: Path) -> tuple[Path | None, tuple[tuple[str, str], ...], tuple[str, ...]]:
    """``--harness-from`` and ``--harness-function``, read once: the file, its (function, pattern) pairs, patterns."""
    source = _path(_raw(config, "from", {}), base)
    function = _raw(config, "function", {}) or None
    if source is None:
        if function is not None:
            raise pytest.UsageError("--harness-function picks a function of --harness-from PATH; give the file too")
        return None, (), ()
    from ..sources import load_source

    try:
        src = load_source(source)
        chosen = [src.get(str(function))] if function is not None else list(src.functions)
    except ConfigError as exc:
        raise pytest.UsageError(f"--harness-from: {exc}") from None
    pairs = tuple((m.name, m.pattern) for m in chosen)
    return source, pairs, tuple(dict.fromkeys(p for _, p in pairs))


def _runtime_and_backends(config: pytest.Config) -> tuple[str, dict[str, str]]:
    """``--harness-runtime`` and ``--harness-backend NAME=container|URL``, validated."""
    from emulators.runtime.docker import parse_runtime
    from emulators.runtime.docker.backends import BACKENDS

    runtime = str(_raw(config, "runtime", {}) or "process")
    try:
        parse_runtime(runtime)
    except ConfigError as exc:
        raise pytest.UsageError(f"--harness-runtime: {exc}") from None
    backends: dict[str, str] = {}
    for item in _raw(config, "backend", {}) or []:
        name, sep, value = str(item).partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name not in BACKENDS or not value:
            raise pytest.UsageError(f"--harness-backend {item!r}: expected NAME=container or NAME=URL with NAME "
                                    f"one of: {', '.join(BACKENDS)}")
        backends[name] = value
    return runtime, backends


_BACKEND_URLS = pytest.StashKey[dict[str, str]]()
_BACKEND_ERROR = pytest.StashKey[Exception]()


def deploy_defaults(config: pytest.Config, settings: Settings, pattern: str) -> dict[str, Any]:
    """What ``--harness-runtime``, ``--harness-memory`` and ``--harness-backend`` add to a deployment (the
    test's own values win).

    Container backends start on first use, once per session, and are removed when the session ends.
    """
    out: dict[str, Any] = {}
    if settings.runtime != "process":
        out["runtime"] = settings.runtime
    if settings.memory is not None:
        out["memory"] = settings.memory
    if not settings.backends:
        return out
    from emulators.runtime.docker.backends import ROLES

    for name, url in _backend_urls(config, settings).items():
        if "state" in ROLES[name]:
            out.setdefault("state", url)
        if "queue" in ROLES[name] and pattern == "daemon":
            out.setdefault("queue", url)
    return out


def _backend_urls(config: pytest.Config, settings: Settings) -> dict[str, str]:
    error = config.stash.get(_BACKEND_ERROR, None)
    if error is not None:
        raise error  # the first failure, again: every deployment of the session needs the same backends
    urls = config.stash.get(_BACKEND_URLS, None)
    if urls is not None:
        return urls
    import uuid

    from emulators.runtime.docker import clean
    from emulators.runtime.docker.backends import start_backend

    run_id = f"pytest-{uuid.uuid4().hex[:8]}"
    urls = {}
    try:
        for name, value in settings.backends.items():
            if value != "container":
                urls[name] = value
                continue
            if not urls.get("_cleanup"):
                def sweep() -> None:
                    clean(run_id)

                config.add_cleanup(sweep)  # whatever started, even if a later one fails
                urls["_cleanup"] = "registered"
            backend = start_backend(name, run_id)
            config.add_cleanup(backend.stop)
            urls[name] = backend.url
    except Exception as exc:
        config.stash[_BACKEND_ERROR] = exc
        raise
    urls.pop("_cleanup", None)
    config.stash[_BACKEND_URLS] = urls
    return urls
