"""The docker:build context: what goes into the image, its content-hash tag, and the runtime spelling."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.errors import ConfigError
from emulators.runtime.agent import resolve_agent
from emulators.runtime.docker import parse_runtime
from emulators.runtime.docker.build import build_context, default_base, in_image_path


def _agent_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "support_bot"
    (folder / "lib").mkdir(parents=True)
    (folder / "bot.py").write_text("from lib.tools import tool\n\ndef agent(task, ctx):\n    return tool(task)\n")
    (folder / "lib" / "tools.py").write_text("def tool(task):\n    return task\n")
    (folder / "requirements.txt").write_text("# pinned\nhttpx==0.27.0\n\nrich>=13\n")
    for junk in (".venv/lib/x.py", ".git/HEAD", "__pycache__/bot.cpython-311.pyc"):
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_text("junk")
    return folder


def test_the_context_holds_the_agent_folder_its_requirements_and_the_harness(tmp_path: Path) -> None:
    """The agent's files (no venv, VCS or caches), its requirements and the harness packages go in."""
    folder = _agent_folder(tmp_path)
    ctx = build_context(resolve_agent(f"{folder / 'bot.py'}:agent"), "python:3.12-slim")
    assert {"app/bot.py", "app/lib/tools.py", "app/requirements.txt"} <= set(ctx.files)
    assert not [n for n in ctx.files if n.startswith(("app/.venv", "app/.git", "app/__pycache__"))]
    assert ctx.files["agent-requirements.txt"].decode().split() == ["httpx==0.27.0", "rich>=13"]
    assert "harness/emulators/runtime/docker/entry.py" in ctx.files
    assert "psutil>=5.9" in ctx.files["harness-requirements.txt"].decode()
    assert ctx.dockerfile.splitlines()[1] == "FROM python:3.12-slim"
    assert "RUN pip install --no-cache-dir -r /tmp/agent-requirements.txt" in ctx.dockerfile


def test_the_tag_is_a_content_hash(tmp_path: Path) -> None:
    """The same content gives the same tag; an edit to the agent or another base gives a new one."""
    folder = _agent_folder(tmp_path)
    ref = resolve_agent(f"{folder / 'bot.py'}:agent")
    first, again = build_context(ref), build_context(ref)
    assert first.tag == again.tag and first.tag.startswith("agent-deploy-harness-agent:")
    assert build_context(ref, "python:3.13-slim").tag != first.tag
    (folder / "lib" / "tools.py").write_text("def tool(task):\n    return {'changed': task}\n")
    assert build_context(ref).tag != first.tag


def test_project_dependencies_are_used_without_a_requirements_file(tmp_path: Path) -> None:
    """A pyproject.toml's [project].dependencies stand in for requirements.txt."""
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "agent.py").write_text("def agent(task, ctx):\n    return task\n")
    (folder / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["pydantic>=2"]\n')
    ctx = build_context(resolve_agent(f"{folder / 'agent.py'}:agent"))
    assert ctx.files["agent-requirements.txt"].decode().split() == ["pydantic>=2"]
    assert ctx.dockerfile.splitlines()[1] == f"FROM {default_base()}"
    assert in_image_path(resolve_agent(f"{folder / 'agent.py'}:agent")) == "/app/agent.py"


def test_the_runtime_spellings() -> None:
    """docker:build and docker:build=BASE parse; an empty base is a ConfigError naming the spellings."""
    assert parse_runtime("docker:build") == ("docker", "build")
    assert parse_runtime("docker:build=python:3.12-slim") == ("docker", "build=python:3.12-slim")
    with pytest.raises(ConfigError, match="docker:build=BASE"):
        parse_runtime("docker:build=")


def test_the_fastapi_sample_builds_with_its_own_requirements() -> None:
    """The FastAPI sample's folder (app, Dockerfile, requirements.txt) is what docker:build copies and installs."""
    sample = Path(__file__).resolve().parents[2] / "fixtures" / "deployments" / "fastapi"
    ctx = build_context(resolve_agent(f"{sample / 'app.py'}:app"))
    assert {"app/app.py", "app/Dockerfile", "app/requirements.txt"} <= set(ctx.files)
    assert ctx.files["agent-requirements.txt"].decode().split() == ["fastapi>=0.110", "uvicorn>=0.29"]
