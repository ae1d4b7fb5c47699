"""The Docker runtime from a user's install: venvs, agents anywhere on disk, and start errors that say why.

Skipped, with the reason, where no Docker engine is reachable (``.ci/run`` starts one, from a fresh venv).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import harness
from emulators.errors import InstanceStartError
from emulators.runtime.docker import engine_problem, interp

pytestmark = pytest.mark.integration

_PROBLEM = engine_problem()
needs_engine = pytest.mark.skipif(_PROBLEM is not None, reason=f"Docker tests skipped: {_PROBLEM}")
IN_VENV = sys.prefix != sys.base_prefix

_AGENT = """
import sys
import psutil  # a dependency of the harness, installed where the harness is (a venv's site-packages)

def agent(task, ctx):
    return {"echo": task, "python": sys.executable, "prefix": sys.prefix, "psutil": psutil.__file__}
"""


@needs_engine
def test_an_agent_outside_the_project_runs_with_the_callers_interpreter(tmp_path: Path) -> None:
    """An agent in a temporary folder runs in a container with this interpreter and its packages."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "my_agent.py").write_text(_AGENT)
    with harness.deploy(f"{folder / 'my_agent.py'}:agent", runtime="docker", gateway=False) as d:
        r = d.invoke({"q": 1})
    assert r.ok, r.error
    assert r.output["echo"] == {"q": 1}
    assert r.output["python"] == sys.executable  # the venv's own python, not the base interpreter behind it
    assert r.output["prefix"] == sys.prefix
    import psutil

    assert r.output["psutil"] == psutil.__file__


@needs_engine
def test_a_broken_agent_shows_its_traceback(tmp_path: Path) -> None:
    """An agent that raises at import is init_error with its own traceback line."""
    (tmp_path / "broken.py").write_text("def helper():\n    raise RuntimeError('no config file')\n\nhelper()\n"
                                        "def agent(task, ctx):\n    return {}\n")
    with harness.deploy(f"{tmp_path / 'broken.py'}:agent", runtime="docker", gateway=False) as d:
        r = d.invoke({})
    assert r.outcome == "init_error"
    assert "RuntimeError: no config file" in (r.error or "")
    assert "broken.py\", line 2, in helper" in (r.error or "")


@needs_engine
def test_a_missing_package_is_named_with_what_to_do(tmp_path: Path) -> None:
    """An agent importing an uninstalled package gets the package named and the pip command for this python."""
    (tmp_path / "needs.py").write_text("import harness_no_such_pkg\n\ndef agent(task, ctx):\n    return {}\n")
    with harness.deploy(f"{tmp_path / 'needs.py'}:agent", runtime="docker", gateway=False) as d:
        r = d.invoke({})
    assert r.outcome == "init_error"
    assert "'harness_no_such_pkg' is not installed for this interpreter" in (r.error or "")
    assert f"{sys.executable} -m pip install harness_no_such_pkg" in (r.error or "")


@needs_engine
@pytest.mark.skipif(not IN_VENV, reason="needs a venv whose packages are not in the base interpreter "
                                        "(.ci/run runs from one) [allowed in CI]")
def test_a_container_without_the_venv_says_which_package_it_could_not_import(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old bug (base interpreter mounted, venv not): the start error carries the traceback and the fix."""
    base = Path(sys.base_prefix)

    def base_only() -> interp.Layout:
        return interp.Layout(executable=str(Path(sys.executable).resolve()), paths={base, base.resolve()})

    monkeypatch.setattr("emulators.runtime.docker.spawner.interpreter_layout", base_only)
    (tmp_path / "ok.py").write_text("def agent(task, ctx):\n    return {}\n")
    with pytest.raises(InstanceStartError) as info, \
            harness.deploy(f"{tmp_path / 'ok.py'}:agent", runtime="docker", gateway=False,
                           min_replicas=1, pattern="container") as d:
        d.invoke({})
    message = str(info.value)
    assert "exited with code 1 before connecting" in message
    assert "ModuleNotFoundError: No module named" in message  # the container's own traceback
    assert "is importable here but not inside the container" in message


def test_the_layout_comes_from_the_running_interpreter() -> None:
    """The layout runs sys.executable as is and mounts the prefixes and every sys.path directory."""
    layout = interp.interpreter_layout()
    assert layout.executable == str(Path(sys.executable).absolute())
    assert Path(sys.prefix) in layout.paths and Path(sys.base_prefix) in layout.paths
    for entry in sys.path:
        if entry and Path(entry).is_dir() and Path(entry) != Path("/"):
            assert Path(entry) in layout.paths, entry


def test_user_installs_and_editable_sources_are_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user site on sys.path sets PYTHONUSERBASE; an editable finder's source directory is mounted."""
    user_base = tmp_path / "userbase"
    user_site = user_base / "lib" / "site-packages"
    user_site.mkdir(parents=True)
    monkeypatch.setattr(interp.site, "ENABLE_USER_SITE", True)
    monkeypatch.setattr(interp.site, "USER_BASE", str(user_base))
    monkeypatch.setattr(interp.site, "USER_SITE", str(user_site))
    monkeypatch.setattr(sys, "path", [*sys.path, str(user_site)])
    src = tmp_path / "src" / "demo"
    src.mkdir(parents=True)
    finder: Any = type(sys)("__editable___demo_0_1_finder")
    finder.MAPPING = {"demo": str(src)}
    monkeypatch.setitem(sys.modules, finder.__name__, finder)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "extra"))
    layout = interp.interpreter_layout()
    assert layout.env["PYTHONUSERBASE"] == str(user_base)
    assert user_site in layout.paths
    assert src in layout.paths
    assert layout.python_path == [str(tmp_path / "extra")]


@needs_engine
def test_docker_build_without_its_base_image_says_how_to_provide_it(tmp_path: Path) -> None:
    """Where the base image is absent and no registry answers, the error names the base and the choices."""
    base = "harness-test-no-such-base:0"
    (tmp_path / "ok.py").write_text("def agent(task, ctx):\n    return {}\n")
    with pytest.raises(InstanceStartError) as info, \
            harness.deploy(f"{tmp_path / 'ok.py'}:agent", runtime=f"docker:build={base}", gateway=False) as d:
        d.invoke({})
    message = str(info.value)
    assert f"builds on the base image {base!r}" in message
    assert "runtime='docker'" in message  # the registry-free default is offered


_BASE = "python:{}.{}-slim".format(*sys.version_info[:2])


def _has_image(name: str) -> bool:
    import docker

    client = docker.from_env()
    try:
        return bool(client.images.list(name=name))
    finally:
        client.close()


@needs_engine
@pytest.mark.skipif(_PROBLEM is None and not _has_image(_BASE),
                    reason=f"docker:build needs the base image {_BASE} and no registry is reachable here to pull "
                           f"it [allowed in CI]")
def test_docker_build_runs_the_agent_from_its_own_image(tmp_path: Path) -> None:
    """With the base image present, the built image runs the agent with nothing of the host mounted."""
    (tmp_path / "ok.py").write_text("import sys\n\ndef agent(task, ctx):\n    return {'file': __file__}\n")
    with harness.deploy(f"{tmp_path / 'ok.py'}:agent", runtime="docker:build", gateway=False) as d:
        r = d.invoke({})
    assert r.ok, r.error
    assert r.output["file"] == "/app/ok.py"
