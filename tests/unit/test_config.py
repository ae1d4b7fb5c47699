"""build_config and project_defaults: every input validated once, with messages that say what to do."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from emulators.errors import AgentLoadError, ConfigError
from harness.config import DeployConfig, build_config, project_defaults

ECHO = "fixtures/agents/echo.py:agent"


def test_build_config_defaults(root: Path) -> None:
    """A bare build_config is the serverless pattern on aws-lambda on the virtual clock."""
    cfg = build_config(ECHO)
    assert isinstance(cfg, DeployConfig)
    assert cfg.pattern == "serverless"
    assert cfg.profile.name == "aws-lambda"
    assert cfg.time_scale is None
    scaled = build_config(ECHO, time_scale=1).time_scale
    assert scaled == 1.0 and isinstance(scaled, float)
    assert cfg.agent.attr == "agent"
    assert cfg.adapter == "auto"


def test_build_config_is_frozen(root: Path) -> None:
    """The config is frozen: it is built once and passed down, never mutated."""
    cfg = build_config(ECHO)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.time_scale = 2.0  # type: ignore[misc]


def test_build_config_applies_overrides(root: Path) -> None:
    """Keyword overrides replace profile fields."""
    cfg = build_config(ECHO, profile="vercel-functions", time_scale=0.01, timeout_s=10, memory_mb=1024)
    assert cfg.profile.name == "vercel-functions"
    assert (cfg.profile.timeout_s, cfg.profile.memory_mb) == (10.0, 1024.0)
    assert cfg.time_scale == 0.01


def test_unknown_pattern_lists_valid_ones(root: Path) -> None:
    """An unknown pattern ('lamda') is a ConfigError naming it and listing every valid pattern."""
    with pytest.raises(ConfigError) as exc:
        build_config(ECHO, pattern="lamda")
    msg = str(exc.value)
    assert "'lamda'" in msg
    assert "expected one of: serverless, container, daemon, edge" in msg


def test_misspelt_pattern_names_close_match(root: Path) -> None:
    """A misspelt pattern gets a 'did you mean' naming the close match."""
    with pytest.raises(ConfigError, match="did you mean 'serverless'"):
        build_config(ECHO, pattern="serverles")


@pytest.mark.parametrize("pattern", ["serverless", "container", "daemon", "edge"])
def test_every_pattern_of_the_design_is_implemented(pattern: str, root: Path) -> None:
    """Each of the four patterns builds a config with its default profile."""
    cfg = build_config(ECHO, pattern=pattern)
    assert cfg.pattern == pattern and cfg.profile.pattern == pattern


@pytest.mark.parametrize("scale", [0, -1, "fast", True, float("nan")])
def test_bad_time_scale_is_config_error(scale: Any, root: Path) -> None:
    """A time_scale that is zero, negative, not a number or a bool is a ConfigError (None is virtual time)."""
    expected = r"time_scale must be None \(virtual time, the default\) or a positive number"
    with pytest.raises(ConfigError, match=expected):
        build_config(ECHO, time_scale=scale)


def test_unknown_override_is_config_error(root: Path) -> None:
    """An unknown override is a ConfigError naming the close match."""
    with pytest.raises(ConfigError, match="did you mean 'timeout_s'"):
        build_config(ECHO, timout_s=10)


def test_out_of_range_override_is_config_error(root: Path) -> None:
    """An override beyond the platform maximum is a ConfigError."""
    with pytest.raises(ConfigError, match="900"):
        build_config(ECHO, timeout_s=1000)


def test_unknown_adapter_is_config_error(root: Path) -> None:
    """An unknown adapter is a ConfigError."""
    with pytest.raises(ConfigError, match="unknown adapter"):
        build_config(ECHO, adapter="wsgi")


def test_bad_agent_is_agent_load_error(root: Path) -> None:
    """A bad agent spec surfaces at build time as an AgentLoadError."""
    with pytest.raises(AgentLoadError):
        build_config("fixtures/agents/missing.py:agent")


def test_unknown_profile_is_config_error(root: Path) -> None:
    """An unknown profile name is a ConfigError suggesting the close match."""
    with pytest.raises(ConfigError, match="did you mean 'aws-lambda'"):
        build_config(ECHO, profile="aws_lambda")


# --- project_defaults -----------------------------------------------------------------------------------


def test_project_defaults_reads_tool_harness(tmp_path: Path) -> None:
    """[tool.harness] of the pyproject.toml in the start directory is returned as a dict."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.harness]\ntime_scale = 0.01\npatterns = ["serverless"]\n'
    )
    assert project_defaults(tmp_path) == {"time_scale": 0.01, "patterns": ["serverless"]}


def test_project_defaults_searches_upwards(tmp_path: Path) -> None:
    """The nearest pyproject.toml at or above the start directory is used."""
    (tmp_path / "pyproject.toml").write_text("[tool.harness]\nrequests = 50\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert project_defaults(sub) == {"requests": 50}


def test_project_defaults_without_table(tmp_path: Path) -> None:
    """A pyproject.toml without [tool.harness] gives no defaults."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert project_defaults(tmp_path) == {}


def test_project_defaults_uses_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no start directory the current directory is searched."""
    (tmp_path / "pyproject.toml").write_text("[tool.harness]\nconcurrency = 4\n")
    monkeypatch.chdir(tmp_path)
    assert project_defaults() == {"concurrency": 4}


def test_project_defaults_rejects_unknown_keys(tmp_path: Path) -> None:
    """An unknown key in [tool.harness] is a ConfigError naming the file, the key and a close match."""
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.harness]\ntime_scal = 0.01\n")
    with pytest.raises(ConfigError) as exc:
        project_defaults(tmp_path)
    msg = str(exc.value)
    assert str(path) in msg and "'time_scal'" in msg and "did you mean 'time_scale'" in msg


def test_project_defaults_invalid_toml(tmp_path: Path) -> None:
    """An invalid pyproject.toml is a ConfigError naming it."""
    (tmp_path / "pyproject.toml").write_text("[tool.harness\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        project_defaults(tmp_path)


def test_project_defaults_table_must_be_a_table(tmp_path: Path) -> None:
    """tool.harness that is not a table is a ConfigError."""
    (tmp_path / "pyproject.toml").write_text("[tool]\nharness = 3\n")
    with pytest.raises(ConfigError, match="must be a table"):
        project_defaults(tmp_path)


@pytest.mark.parametrize("runtime", ["docker", "docker:python:3.11-slim"])
def test_an_asgi_app_on_container_in_docker_is_refused_with_what_to_use(root: Path, runtime: str) -> None:
    """runtime='docker' cannot forward to a replica's uvicorn yet: the error names runtime='process' and serverless."""
    app = "fixtures/deployments/fastapi/app.py:app"
    with pytest.raises(ConfigError, match=r"runtime='process'.*pattern='serverless'"):
        build_config(app, "container", adapter="asgi", runtime=runtime)
    assert build_config(app, "serverless", adapter="asgi", runtime=runtime).runtime == runtime
    assert build_config(ECHO, "container", runtime=runtime).runtime == runtime  # a plain agent still runs there
