"""LLM scripts: scripted answers, per-model latency, rate limits and fault rates, loaded from TOML.

A script is optional; without one every request gets the deterministic default answer (see ``generate``).
Example (``fixtures/llm/*.toml`` has more)::

    [defaults]                       # latency of every model without its own table (platform seconds)
    ttft_s = { dist = "lognormal", median = 0.5, sigma = 0.3 }
    tokens_per_s = { dist = "normal", mean = 60, sd = 6 }

    [models."gpt-4o-mini"]           # exact name or a glob ("claude-*"); missing keys fall back to [defaults]
    ttft_s = 0.3
    tokens_per_s = 90

    [limits]                         # per API key; burst_s = seconds of refill a bucket holds
    rpm = 60
    tpm = 100000
    burst_s = 1.0

    [faults]                         # probabilities per admitted request, seeded
    error = 0.01                     # HTTP 500
    overloaded = 0.01                # OpenAI 503 / Anthropic 529
    hang = 0.0                       # no answer until the client gives up (or hang_s platform seconds)
    cut = 0.0                        # the body stops half-way and the connection closes
    hang_s = 86400

    [[rules]]                        # first match wins; every condition given must hold
    model = "gpt-*"                  # glob on the model name
    api = "chat.completions"         # chat.completions | responses | messages
    last_user = "(?i)weather"        # regex searched in the last user message
    turn = 1                         # model turn in the conversation (1 + assistant messages), or a list
    times = 1                        # only the first N matching requests
    probability = 0.5                # seeded
    reply = "It is sunny in {last_user}"   # placeholders: {last_user} {tool_result} {turn} {model}
    tool_calls = [{ name = "get_weather", arguments = { city = "Paris" } }]  # arguments omitted: from schema
    error = 503                      # answer this status in the provider's error format (message = "...")
    fault = "cut"                    # or "hang"
    output_tokens = 200              # the text answer is cut or padded to exactly this many tokens

Without a script's own table or ``[defaults]``, a model listed in ``profiles/llm/speeds.toml`` gets its
cited median time to first token and tokens per second (platform-facts.md L10-L18; exact name, else the
longest listed prefix); any other model gets the illustrative default above (0.5 s, 60 tokens/s).
"""

from __future__ import annotations

import fnmatch
import functools
import random
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..distributions import Distribution, parse_distribution
from ..errors import ConfigError, close_matches_hint
from . import generate, tokens
from .dialog import Prompt, Reply, ToolSpec

__all__ = ["APIS", "Faults", "Limits", "ModelLatency", "Rule", "Script", "cited_latency", "load_script"]

APIS = ("chat.completions", "responses", "messages")
_TOP = ("defaults", "models", "limits", "faults", "rules")
_LATENCY_KEYS = ("ttft_s", "tokens_per_s")
_LIMIT_KEYS = ("rpm", "tpm", "burst_s")
_FAULT_KEYS = ("error", "overloaded", "hang", "cut", "hang_s")
_RULE_KEYS = ("name", "model", "api", "last_user", "turn", "times", "probability", "reply", "tool_calls",
              "error", "message", "fault", "output_tokens")
_DEFAULT_TTFT = Distribution("lognormal", (("median", 0.5), ("sigma", 0.3)))
_DEFAULT_TPS = Distribution("normal", (("mean", 60.0), ("sd", 6.0)))
_MIN_TPS = 1.0
_SPEEDS = Path(__file__).resolve().parent.parent / "profiles" / "llm" / "speeds.toml"


@dataclass(frozen=True)
class ModelLatency:
    """Time to first token and tokens per second of one model, in platform seconds, as distributions."""

    ttft_s: Distribution = _DEFAULT_TTFT
    tokens_per_s: Distribution = _DEFAULT_TPS

    def sample(self, rng: random.Random) -> tuple[float, float]:
        """One draw: (time to first token, tokens per second)."""
        return self.ttft_s.sample(rng), max(_MIN_TPS, self.tokens_per_s.sample(rng))


@dataclass(frozen=True)
class Limits:
    """Requests and tokens per minute per API key (None: unlimited); buckets hold ``burst_s`` of refill."""

    rpm: int | None = None
    tpm: int | None = None
    burst_s: float = 1.0


@dataclass(frozen=True)
class Faults:
    """Probabilities of injected faults per admitted request, and how long a hang lasts at most."""

    error: float = 0.0
    overloaded: float = 0.0
    hang: float = 0.0
    cut: float = 0.0
    hang_s: float = 86400.0


@dataclass(frozen=True)
class Rule:
    """One scripted behaviour: conditions, then an answer (text, tool calls), an error, or a fault."""

    name: str = ""
    model: str | None = None
    api: str | None = None
    last_user: re.Pattern[str] | None = None
    turn: tuple[int, ...] | None = None
    times: int | None = None
    probability: float = 1.0
    reply: str | None = None
    tool_calls: tuple[tuple[str, Any], ...] = ()  # (name, arguments or None for schema-generated)
    error: int | None = None
    message: str | None = None
    fault: str | None = None
    output_tokens: int | None = None

    def matches(self, prompt: Prompt) -> bool:
        """Whether every condition of the rule holds for this request (``times``/``probability`` aside)."""
        if self.model is not None and not fnmatch.fnmatchcase(prompt.model, self.model):
            return False
        if self.api is not None and prompt.api != self.api:
            return False
        if self.last_user is not None and not self.last_user.search(prompt.last_user):
            return False
        return self.turn is None or prompt.turn in self.turn

    def answer(self, prompt: Prompt, rng: random.Random) -> Reply:
        """The reply this rule gives (for an error rule: unused)."""
        calls = tuple(generate.tool_call(prompt.tool(n) or ToolSpec(n), prompt, rng, args)
                      for n, args in self.tool_calls)
        if self.reply is not None:
            text = self._fill(self.reply, prompt)
        elif calls:
            text = ""
        else:
            default = generate.default_reply(prompt, rng)
            text, calls = default.text, default.tool_calls
        if self.output_tokens is not None:
            text = tokens.fit_text(text or generate.default_text(prompt, rng), self.output_tokens)
        return Reply(text, calls).capped(prompt.max_tokens)

    @staticmethod
    def _fill(template: str, prompt: Prompt) -> str:
        values = {"{last_user}": prompt.last_user, "{turn}": str(prompt.turn), "{model}": prompt.model,
                  "{tool_result}": "; ".join(m.text for m in prompt.tool_results())}
        for key, value in values.items():
            template = template.replace(key, value)
        return template


@dataclass(frozen=True)
class Script:
    """A whole script: rules in order, per-model latency, limits and fault rates."""

    rules: tuple[Rule, ...] = ()
    models: tuple[tuple[str, ModelLatency], ...] = ()
    defaults: ModelLatency = field(default_factory=ModelLatency)
    limits: Limits = field(default_factory=Limits)
    faults: Faults = field(default_factory=Faults)
    source: str = "<default>"
    defaults_given: bool = False  # the script set [defaults]: they apply to every model it does not list

    def latency_for(self, model: str) -> ModelLatency:
        """The latency of a model: its exact table, else the first matching glob, else the script's
        [defaults] if it has them, else the cited speed of the model (``speeds.toml``), else the defaults."""
        for name, latency in self.models:
            if name == model:
                return latency
        for name, latency in self.models:
            if fnmatch.fnmatchcase(model, name):
                return latency
        if not self.defaults_given:
            cited = cited_latency(model)
            if cited is not None:
                return cited
        return self.defaults

    def model_names(self) -> list[str]:
        """Models the script names exactly (globs left out), for ``GET /v1/models``."""
        return [n for n, _ in self.models if not any(c in n for c in "*?[")]

    def match(self, prompt: Prompt, rng: random.Random, used: Mapping[int, int]) -> int | None:
        """Index of the first rule that applies (``used`` counts earlier uses per rule), or None."""
        for i, rule in enumerate(self.rules):
            if not rule.matches(prompt):
                continue
            if rule.times is not None and used.get(i, 0) >= rule.times:
                continue
            if rule.probability < 1.0 and rng.random() >= rule.probability:
                continue
            return i
        return None


def load_script(source: str | Path | Script | Mapping[str, Any] | None) -> Script:
    """A Script from a TOML file path, an already-parsed mapping, a Script, or None (the empty script)."""
    if source is None:
        return Script()
    if isinstance(source, Script):
        return source
    if isinstance(source, Mapping):
        return _parse(source, "LLM script")
    path = Path(source)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"LLM script {str(path)!r} does not exist; give the path of a .toml script "
                          f"(see fixtures/llm/ for examples)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"LLM script {str(path)!r} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"LLM script {str(path)!r} is not valid TOML: {exc}") from None
    return _parse(data, f"LLM script {str(path)!r}")


def _keys(table: Any, allowed: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}{close_matches_hint(key, allowed)}; "
                              f"expected one of: {', '.join(allowed)}")
    return table


def _number(value: Any, where: str, *, integer: bool = False, low: float = 0.0, high: float | None = None,
            positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not float(value).is_integer()):
        raise ConfigError(f"{where}: expected {'a whole number' if integer else 'a number'}, got {value!r}")
    if value < low or (high is not None and value > high) or (positive and value <= 0):
        bound = f"between {low:g} and {high:g}" if high is not None else ("positive" if positive else f">= {low:g}")
        raise ConfigError(f"{where}: must be {bound}, got {value!r}")
    return float(value)


def _latency(table: Any, where: str, base: ModelLatency) -> ModelLatency:
    t = _keys(table, _LATENCY_KEYS, where)
    ttft = parse_distribution(t["ttft_s"], f"{where}: ttft_s") if "ttft_s" in t else base.ttft_s
    tps = parse_distribution(t["tokens_per_s"], f"{where}: tokens_per_s") if "tokens_per_s" in t else base.tokens_per_s
    if tps.mean() <= 0:
        raise ConfigError(f"{where}: tokens_per_s must be positive, got {t['tokens_per_s']!r}")
    return ModelLatency(ttft, tps)


def _parse(data: Mapping[str, Any], where: str) -> Script:
    _keys(data, _TOP, where)
    defaults = _latency(data.get("defaults", {}), f"{where}: [defaults]", ModelLatency())
    models_table = data.get("models", {})
    if not isinstance(models_table, Mapping):
        raise ConfigError(f"{where}: [models] must be a table of model tables, got {models_table!r}")
    models = tuple((str(name), _latency(t, f"{where}: [models.{name!r}]", defaults))
                   for name, t in models_table.items())
    lt = _keys(data.get("limits", {}), _LIMIT_KEYS, f"{where}: [limits]")
    limits = Limits(
        rpm=int(_number(lt["rpm"], f"{where}: [limits] rpm", integer=True, positive=True)) if "rpm" in lt else None,
        tpm=int(_number(lt["tpm"], f"{where}: [limits] tpm", integer=True, positive=True)) if "tpm" in lt else None,
        burst_s=_number(lt.get("burst_s", 1.0), f"{where}: [limits] burst_s", positive=True, high=60.0),
    )
    ft = _keys(data.get("faults", {}), _FAULT_KEYS, f"{where}: [faults]")
    rates = {k: _number(ft.get(k, 0.0), f"{where}: [faults] {k}", high=1.0) for k in _FAULT_KEYS if k != "hang_s"}
    if sum(rates.values()) > 1.0:
        raise ConfigError(f"{where}: [faults] probabilities add up to {sum(rates.values()):g}, above 1")
    faults = Faults(**rates, hang_s=_number(ft.get("hang_s", 86400.0), f"{where}: [faults] hang_s", positive=True))
    rules_list = data.get("rules", [])
    if not isinstance(rules_list, list):
        raise ConfigError(f"{where}: rules must be an array of tables ([[rules]]), got {rules_list!r}")
    rules = tuple(_rule(r, f"{where}: rule {i + 1}") for i, r in enumerate(rules_list))
    return Script(rules, models, defaults, limits, faults, source=where, defaults_given="defaults" in data)


def _rule(table: Any, where: str) -> Rule:
    t = _keys(table, _RULE_KEYS, where)
    for key in ("name", "model", "reply", "message", "last_user"):
        if key in t and not isinstance(t[key], str):
            raise ConfigError(f"{where}: {key} must be a string, got {t[key]!r}")
    if "api" in t and t["api"] not in APIS:
        raise ConfigError(f"{where}: unknown api {t['api']!r}; expected one of: {', '.join(APIS)}")
    pattern = None
    if "last_user" in t:
        try:
            pattern = re.compile(t["last_user"])
        except re.error as exc:
            raise ConfigError(f"{where}: last_user is not a valid regular expression: {exc}") from None
    turn = t.get("turn")
    turns = None
    if turn is not None:
        items = turn if isinstance(turn, list) else [turn]
        turns = tuple(int(_number(x, f"{where}: turn", integer=True, positive=True)) for x in items)
    fault = t.get("fault")
    if fault is not None and fault not in ("hang", "cut"):
        raise ConfigError(f"{where}: unknown fault {fault!r}; expected 'hang' or 'cut'")
    error = int(_number(t["error"], f"{where}: error", integer=True, low=400, high=599)) if "error" in t else None
    if error is not None and ({"reply", "tool_calls", "fault", "output_tokens"} & set(t)):
        raise ConfigError(f"{where}: an error rule answers nothing else; drop reply/tool_calls/fault/output_tokens")
    return Rule(
        name=t.get("name", ""), model=t.get("model"), api=t.get("api"), last_user=pattern, turn=turns,
        times=int(_number(t["times"], f"{where}: times", integer=True, positive=True)) if "times" in t else None,
        probability=_number(t.get("probability", 1.0), f"{where}: probability", high=1.0),
        reply=t.get("reply"), tool_calls=_tool_calls(t.get("tool_calls", []), where), error=error,
        message=t.get("message"), fault=fault,
        output_tokens=int(_number(t["output_tokens"], f"{where}: output_tokens", integer=True))
        if "output_tokens" in t else None,
    )


def _tool_calls(value: Any, where: str) -> tuple[tuple[str, Any], ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: tool_calls must be a list like [{{ name = \"add\", arguments = {{ a = 1 }} }}]")
    out: list[tuple[str, Any]] = []
    for i, call in enumerate(value):
        c = _keys(call, ("name", "arguments"), f"{where}: tool_calls[{i}]")
        if not isinstance(c.get("name"), str) or not c["name"]:
            raise ConfigError(f"{where}: tool_calls[{i}] needs a name (the tool to call)")
        args = c.get("arguments")
        if args is not None and not isinstance(args, Mapping):
            raise ConfigError(f"{where}: tool_calls[{i}].arguments must be a table, got {args!r}")
        out.append((c["name"], dict(args) if args is not None else None))
    return tuple(out)


@functools.cache
def _speed_table() -> dict[str, ModelLatency]:
    data = tomllib.loads(_SPEEDS.read_text(encoding="utf-8"))
    out: dict[str, ModelLatency] = {}
    for name, t in data["models"].items():
        ttft, tps = float(t["ttft_s"]), float(t["tokens_per_s"])
        # The medians are cited; the spread is the harness's (lognormal sigma 0.3, sd 10 %), as the defaults'.
        out[name] = ModelLatency(Distribution("lognormal", (("median", ttft), ("sigma", 0.3))),
                                 Distribution("normal", (("mean", tps), ("sd", tps / 10.0))))
    return out


def cited_latency(model: str) -> ModelLatency | None:
    """The cited speed of ``model`` from ``profiles/llm/speeds.toml``: exact name, else the longest prefix."""
    table = _speed_table()
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    return table[max(prefixes, key=len)] if prefixes else None
