"""The frozen configuration of one deployment, built once and passed down (no process-global state).

Sources, later wins: the pattern's default profile, a named profile or ``.toml`` path, ``[tool.harness]``
in the project's ``pyproject.toml`` (for the CLI), then keyword overrides / CLI flags.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError, close_matches_hint
from emulators.profiles import IMPLEMENTED_PATTERNS, Profile, check_pattern, load_profile, profile_pattern
from emulators.runtime.agent import ADAPTERS, AgentRef, resolve_agent
from emulators.runtime.docker import parse_runtime

__all__ = ["DeployConfig", "build_config", "check_memory_url", "project_defaults"]

IMPLEMENTED = IMPLEMENTED_PATTERNS


@dataclass(frozen=True)
class DeployConfig:
    """Everything one deployment needs, validated."""

    agent: AgentRef
    pattern: str
    profile: Profile
    time_scale: float | None = None  # None: the virtual clock; a number: wall seconds per platform second
    adapter: str = "auto"
    state: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    keep_logs: bool = False
    function_name: str | None = None
    llm: str = "sim"  # "sim": the built-in simulator; "off": no LLM endpoint; a URL: proxy to that upstream
    llm_script: str | None = None
    runtime: str = "process"  # "process" (forked from a zygote) | "docker" | "docker:IMAGE" (a container each)
    records_dir: str | None = None  # where the record store is kept (None: a temporary file, gone with the deployment)
    app_path: str = "/invoke"  # an HTTP-app agent: where d.invoke(task) POSTs the task as JSON
    memory: str | None = None  # ctx.memory's store URL (None: memory.sqlite3 in the run dir, gone with the deployment)
    source: str | None = None  # the deployment file the limits came from (harness/sources), if any


def build_config(agent: str | Path | Callable[..., Any] | None, pattern: str | None = None,
                 profile: str | Path | Profile | None = None, time_scale: float | None = None, *,
                 adapter: str = "auto", state: str | None = None, env: Mapping[str, str] | None = None,
                 keep_logs: bool = False, function_name: str | None = None, llm: str = "sim",
                 llm_script: str | Path | None = None, runtime: str = "process",
                 records_dir: str | Path | None = None, app_path: str = "/invoke", memory: str | None = None,
                 source: str | Path | None = None, function: str | None = None, **overrides: Any) -> DeployConfig:
    """Validate every input and return the frozen config; raises ConfigError naming what is wrong.

    ``pattern=None``: the pattern the profile is written for (serverless when no profile is named).
    ``source``: a deployment file (template.yaml, serverless.yml, wrangler.toml, Kubernetes manifests ...)
    whose function ``function`` (None: its only one) supplies the agent, pattern, profile, limits and env;
    anything passed explicitly wins over the file.
    """
    if source is not None:
        from .sources.apply import deploy_arguments

        args = deploy_arguments(source, function, agent, pattern, profile, adapter, env, function_name, overrides)
        agent, pattern, profile, adapter = args["agent"], args["pattern"], args["profile"], args["adapter"]
        env, function_name, overrides = args["env"], args["function_name"], args["overrides"]
    elif function is not None:
        raise ConfigError("function= picks a function of a deployment file; pass source= too")
    if agent is None:
        raise ConfigError("no agent to deploy: pass 'module:callable', 'path/to/file.py:callable' or a callable, "
                          "or source= a deployment file that names its handler")
    if pattern is None:
        pattern = "serverless" if profile is None else profile_pattern(profile)
    check_pattern(pattern)
    if time_scale is not None and (isinstance(time_scale, bool) or not isinstance(time_scale, int | float)
                                   or not time_scale > 0):
        raise ConfigError(
            f"time_scale must be None (virtual time, the default) or a positive number (wall seconds per platform "
            f"second), got {time_scale!r}"
        )
    if adapter not in ADAPTERS:
        raise ConfigError(f"unknown adapter {adapter!r}; expected one of: {', '.join(ADAPTERS)}")
    if not isinstance(llm, str) or (llm not in ("sim", "off") and not llm.startswith(("http://", "https://"))):
        raise ConfigError(f"unknown llm mode {llm!r}; expected 'sim' (the built-in simulator), 'off', or an "
                          f"http(s) base URL of a real OpenAI/Anthropic-compatible provider (metering proxy)")
    if llm_script is not None and not Path(llm_script).is_file():
        raise ConfigError(f"LLM script {str(llm_script)!r} does not exist; check the path")
    if parse_runtime(runtime)[0] != "process" and pattern == "container" and adapter == "asgi":
        # The gateway forwards HTTP to a uvicorn in each replica over a unix socket in the run directory;
        # a Docker container's socket is not reachable that way yet.
        raise ConfigError(f"runtime={runtime!r} does not serve an ASGI app on the container pattern yet (the "
                          f"gateway forwards HTTP to each replica's uvicorn over a local socket); use "
                          f"runtime='process' (the default) for container, or pattern='serverless' to run the "
                          f"app in Docker behind API Gateway events")
    if not isinstance(app_path, str) or not app_path.startswith("/"):
        raise ConfigError(f"app_path must be a path starting with '/', e.g. '/chat', got {app_path!r}")
    check_memory_url(memory)
    prof = load_profile(profile, pattern)
    if overrides:
        prof = prof.replace(**overrides)
    return DeployConfig(
        agent=resolve_agent(agent), pattern=pattern, profile=prof,
        time_scale=None if time_scale is None else float(time_scale),
        adapter=adapter, state=state, env=dict(env or {}), keep_logs=keep_logs, function_name=function_name,
        llm=llm, llm_script=None if llm_script is None else str(llm_script), runtime=runtime,
        records_dir=None if records_dir is None else str(records_dir), app_path=app_path, memory=memory,
        source=None if source is None else str(source),
    )


def check_memory_url(memory: object) -> None:
    """A ``ctx.memory`` store URL (None: the per-deployment default), or ConfigError saying what is accepted.

    One check for ``deploy(memory=)`` and every entry point that takes the URL (``--memory``,
    ``--harness-memory``), so a bad URL reads the same everywhere, and the CLIs can check it before they
    start anything.
    """
    if memory is not None and (not isinstance(memory, str)
                               or not memory.startswith(("sqlite:", "postgresql://", "postgres://"))):
        raise ConfigError(f"memory store {memory!r}: expected sqlite:// (the default), sqlite:///path/to/file or "
                          f"postgresql://user@host:port/db")


def parse_time_scale(value: object) -> float | None:
    """A time scale as users write it: ``virtual`` (or None, empty) for the virtual clock, else a positive number.

    Raises ConfigError naming the value.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "virtual", "none")):
        return None
    try:
        scale = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        scale = float("nan")
    if isinstance(value, bool) or not (scale > 0) or scale == float("inf"):
        raise ConfigError(f"time scale {value!r}: expected 'virtual' (the default: emulated waits cost no wall "
                          f"time) or a positive number of wall seconds per platform second, e.g. 0.01")
    return scale


def project_defaults(start: Path | None = None) -> dict[str, Any]:
    """``[tool.harness]`` from the nearest ``pyproject.toml`` at or above ``start`` (cwd), or {}."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        path = d / "pyproject.toml"
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
            table = data.get("tool", {}).get("harness", {})
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [tool.harness] must be a table")
            known = {"time_scale", "patterns", "profile", "state", "requests", "concurrency"}
            for key in table:
                if key not in known:
                    raise ConfigError(
                        f"{path}: unknown key {key!r} in [tool.harness]{close_matches_hint(key, known)}; "
                        f"expected: {', '.join(sorted(known))}"
                    )
            return dict(table)
    return {}
