"""Scenario files (``fixtures/scenarios/*.toml``): which agent a load test drives and what its users send.

A scenario is data, not code, so the same traffic can be replayed by Locust, ``harness load`` and CI::

    name = "chat"
    agent = "fixtures/agents/chat_state.py:agent"   # a path is relative to the cwd, else to the file's folders
    think_time = { min_s = 0.2, max_s = 1.0 }       # wall seconds a user waits between two tasks
    session = { mode = "sticky", rotate_after = 0 }  # none | sticky (one per user) | per-task
    poll = { interval_s = 0.05, timeout_s = 30 }      # async mode: how often and how long to poll /tasks/{id}

    [[tasks]]
    name = "ask"
    mode = "invoke"                                  # invoke (POST /invoke) | tasks (POST /tasks + poll) | stream (SSE)
    weight = 8
    payload = { message = "hello" }

Nothing here imports Locust: the CLI validates a scenario before it starts any process.
"""

from __future__ import annotations

import random
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError

__all__ = ["MODES", "SESSION_MODES", "Scenario", "ScenarioTask", "SessionIds", "default_scenario", "load_scenario",
           "parse_scenario", "resolve_agent"]

MODES = ("invoke", "tasks", "stream")
SESSION_MODES = ("none", "sticky", "per-task")
_TOP_KEYS = {"name", "description", "agent", "think_time", "session", "poll", "tasks"}


@dataclass(frozen=True)
class ScenarioTask:
    """One kind of request a user sends, with its share of the mix."""

    name: str
    mode: str
    payload: Any
    weight: float = 1.0


@dataclass(frozen=True)
class Scenario:
    """An agent and the traffic its users generate."""

    name: str
    tasks: tuple[ScenarioTask, ...]
    agent: str | None = None
    description: str = ""
    think_min_s: float = 0.0
    think_max_s: float = 0.0
    session_mode: str = "none"
    rotate_after: int = 0  # sticky sessions: a new session id after this many tasks (0: never)
    poll_interval_s: float = 0.05
    poll_timeout_s: float = 30.0
    source: str = ""
    modes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modes", tuple(sorted({t.mode for t in self.tasks})))

    def pick(self, rng: random.Random) -> ScenarioTask:
        """One task drawn by weight."""
        return rng.choices(self.tasks, weights=[t.weight for t in self.tasks])[0]

    def think(self, rng: random.Random) -> float:
        """Wall seconds to wait before the next task."""
        return rng.uniform(self.think_min_s, self.think_max_s) if self.think_max_s > 0 else 0.0


class SessionIds:
    """The session ids one user sends, following the scenario's session behaviour."""

    def __init__(self, scenario: Scenario, user_key: str) -> None:
        self.scenario, self.user_key = scenario, user_key
        self._sent = 0
        self._current = self._fresh()

    def _fresh(self) -> str:
        return f"{self.user_key}-{uuid.uuid4().hex[:8]}"

    def next(self) -> str | None:
        """The session id for the next task, or None."""
        mode = self.scenario.session_mode
        if mode == "none":
            return None
        if mode == "per-task":
            return self._fresh()
        if self.scenario.rotate_after and self._sent >= self.scenario.rotate_after:
            self._current, self._sent = self._fresh(), 0
        self._sent += 1
        return self._current


def _number(data: dict[str, Any], key: str, default: float, where: str) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: {key} must be a number >= 0, got {value!r}")
    return float(value)


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a table, e.g. {key} = {{ ... }}, got {value!r}")
    return value


def _task(raw: Any, i: int, where: str) -> ScenarioTask:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: tasks[{i}] must be a table ([[tasks]])")
    mode = raw.get("mode", "invoke")
    if mode not in MODES:
        raise ConfigError(f"{where}: tasks[{i}] has unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    weight = _number(raw, "weight", 1.0, f"{where}: tasks[{i}]")
    return ScenarioTask(name=str(raw.get("name", f"{mode}-{i}")), mode=mode, payload=raw.get("payload", {}),
                        weight=weight)


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """A Scenario from the parsed TOML; ConfigError names the file and the bad key."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"expected some of: {', '.join(sorted(_TOP_KEYS))}")
    raw_tasks = data.get("tasks", [])
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise ConfigError(f"{source}: a scenario needs at least one [[tasks]] entry")
    tasks = tuple(_task(t, i, source) for i, t in enumerate(raw_tasks))
    if sum(t.weight for t in tasks) <= 0:
        raise ConfigError(f"{source}: the task weights add up to 0; give at least one task a weight > 0")
    think = _table(data, "think_time", source)
    session = _table(data, "session", source)
    poll = _table(data, "poll", source)
    mode = session.get("mode", "none")
    if mode not in SESSION_MODES:
        raise ConfigError(f"{source}: session mode {mode!r} is unknown; expected one of: {', '.join(SESSION_MODES)}")
    think_min = _number(think, "min_s", 0.0, source)
    think_max = _number(think, "max_s", think_min, source)
    if think_max < think_min:
        raise ConfigError(f"{source}: think_time max_s ({think_max:g}) is below min_s ({think_min:g})")
    agent = data.get("agent")
    return Scenario(name=str(data.get("name", Path(source).stem)), tasks=tasks,
                    agent=None if agent is None else str(agent), description=str(data.get("description", "")),
                    think_min_s=think_min, think_max_s=think_max, session_mode=mode,
                    rotate_after=int(_number(session, "rotate_after", 0, source)),
                    poll_interval_s=_number(poll, "interval_s", 0.05, source) or 0.05,
                    poll_timeout_s=_number(poll, "timeout_s", 30.0, source), source=source)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"scenario file {str(p)!r} not found; see fixtures/scenarios/ for examples") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"scenario file {str(p)!r} is not valid TOML: {exc}") from None
    return parse_scenario(data, str(p))


def default_scenario() -> Scenario:
    """Without a scenario file: one sync invocation with an empty task, no think time."""
    return Scenario(name="default", tasks=(ScenarioTask("invoke", "invoke", {}),))


def resolve_agent(agent: str, scenario_source: str = "") -> str:
    """A scenario's ``path.py:callable`` made absolute: the cwd first, then the scenario file's folders upwards.

    Scenario files live in ``fixtures/scenarios/`` but name agents relative to the project root, and the
    engine host may run in another directory, so the path is fixed here once.
    """
    target, sep, attr = agent.rpartition(":")
    if not sep or not target.endswith(".py"):
        return agent  # a module:callable is imported, not opened
    path = Path(target)
    if path.is_absolute():
        return agent
    candidates = [Path.cwd()]
    if scenario_source:
        candidates += list(Path(scenario_source).resolve().parents)
    for base in candidates:
        if (base / path).is_file():
            return f"{(base / path).resolve()}:{attr}"
    return agent  # let the harness say what is wrong with it
