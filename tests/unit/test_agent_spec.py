"""Agent specs: resolving 'file.py:name', 'module:name' and callables, loading them, choosing the adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulators.errors import AgentLoadError, ConfigError
from emulators.runtime.agent import AgentRef, detect_adapter, load_callable, resolve_agent, uses_ctx_llm

from .conftest import AGENTS


def module_level_agent(task: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return task


# --- resolve_agent: file specs ----------------------------------------------------------------------------


def test_file_spec_resolves(root: Path) -> None:
    """'fixtures/agents/echo.py:agent' resolves to the absolute file and the attribute."""
    ref = resolve_agent("fixtures/agents/echo.py:agent")
    assert ref == AgentRef(module=None, path=str(AGENTS / "echo.py"), attr="agent",
                           spec="fixtures/agents/echo.py:agent")
    assert ref.name == "agent"
    assert json.loads(json.dumps(ref.to_json())) == ref.to_json()


def test_path_object_spec_resolves(root: Path) -> None:
    """A Path-like spec is treated as its string form."""
    ref = resolve_agent(Path("fixtures/agents/lambda_handler.py:handler"))
    assert ref.path == str(AGENTS / "lambda_handler.py") and ref.attr == "handler"


def test_missing_colon_is_agent_load_error(root: Path) -> None:
    """A spec without ':callable' is an AgentLoadError suggesting the form to use."""
    with pytest.raises(AgentLoadError) as exc:
        resolve_agent("fixtures/agents/echo.py")
    msg = str(exc.value)
    assert "module:callable" in msg and "'fixtures/agents/echo.py:agent'" in msg


@pytest.mark.parametrize("spec", [":agent", "fixtures/agents/echo.py:"])
def test_empty_side_of_colon_is_agent_load_error(spec: str) -> None:
    """A spec with nothing before or after the colon is an AgentLoadError."""
    with pytest.raises(AgentLoadError, match="is not of the form"):
        resolve_agent(spec)


def test_missing_file_is_agent_load_error(root: Path) -> None:
    """A file that does not exist is an AgentLoadError naming it."""
    with pytest.raises(AgentLoadError, match=r"agent file 'fixtures/agents/nope\.py'.*does not exist"):
        resolve_agent("fixtures/agents/nope.py:agent")


def test_missing_attribute_lists_defined_functions(root: Path) -> None:
    """A name the file does not define is an AgentLoadError listing the functions it does define."""
    with pytest.raises(AgentLoadError) as exc:
        resolve_agent("fixtures/agents/echo.py:agnt")
    msg = str(exc.value)
    assert "defines no 'agnt'" in msg and "functions defined there: agent" in msg


def test_missing_attribute_caught_despite_main_guard(tmp_path: Path) -> None:
    """A typo'd name is caught at resolve time even when the file ends with an `if __name__` guard."""
    path = tmp_path / "bot.py"
    path.write_text("def agent(task, ctx):\n    return task\n\nif __name__ == '__main__':\n    print(1)\n")
    with pytest.raises(AgentLoadError, match="defines no 'agnt'"):
        resolve_agent(f"{path}:agnt")


def test_syntax_error_names_the_line(root: Path) -> None:
    """A file with a syntax error is an AgentLoadError naming the file and the line."""
    with pytest.raises(AgentLoadError) as exc:
        resolve_agent("fixtures/agents/bad_syntax.py:agent")
    msg = str(exc.value)
    assert "bad_syntax.py" in msg and "syntax error at line 3" in msg


def test_not_callable_literal_is_refused(root: Path) -> None:
    """A name bound to a literal (a dict) is an AgentLoadError saying it is not a callable."""
    with pytest.raises(AgentLoadError, match="not a callable"):
        resolve_agent("fixtures/agents/not_callable.py:agent")


def test_name_bound_by_import_is_left_to_the_real_import(tmp_path: Path) -> None:
    """A name bound by an import cannot be judged statically, so it resolves."""
    path = tmp_path / "reexport.py"
    path.write_text("from json import dumps as agent\n")
    assert resolve_agent(f"{path}:agent").attr == "agent"


def test_assigned_callable_resolves(tmp_path: Path) -> None:
    """A name assigned a non-literal at module level (agent = make()) resolves."""
    path = tmp_path / "made.py"
    path.write_text("def make():\n    return lambda t, c: t\n\nagent = make()\n")
    assert resolve_agent(f"{path}:agent").path == str(path)


# --- resolve_agent: module specs --------------------------------------------------------------------------


def test_module_spec_resolves() -> None:
    """'json:dumps' resolves to the json module and its file."""
    ref = resolve_agent("json:dumps")
    assert ref.module == "json" and ref.attr == "dumps"
    assert ref.path is not None and ref.path.endswith("__init__.py")


def test_missing_module_is_agent_load_error() -> None:
    """A module that does not exist is an AgentLoadError suggesting a file path instead."""
    with pytest.raises(AgentLoadError) as exc:
        resolve_agent("no_such_module_xyz:agent")
    msg = str(exc.value)
    assert "'no_such_module_xyz'" in msg and "cannot be found" in msg and "no_such_module_xyz.py:agent" in msg


def test_missing_submodule_parent_is_agent_load_error() -> None:
    """A dotted module whose parent package does not exist is an AgentLoadError, not an ImportError."""
    with pytest.raises(AgentLoadError, match="cannot be found"):
        resolve_agent("no_such_pkg_xyz.sub:agent")


def test_module_spec_with_missing_attribute() -> None:
    """A module spec naming something the module does not define is an AgentLoadError."""
    with pytest.raises(AgentLoadError, match="defines no 'dumpz'"):
        resolve_agent("json:dumpz")


# --- resolve_agent: callables -----------------------------------------------------------------------------


def test_lambda_is_refused() -> None:
    """A lambda has no importable name, so it is an AgentLoadError."""
    with pytest.raises(AgentLoadError, match="define it at module level"):
        resolve_agent(lambda task, ctx: task)


def test_nested_function_is_refused() -> None:
    """A nested function (a closure) has no importable name, so it is an AgentLoadError."""

    def inner(task: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return task

    with pytest.raises(AgentLoadError, match="nested functions"):
        resolve_agent(inner)


def test_module_level_function_resolves_to_its_module() -> None:
    """A module-level function object resolves to its module, file and qualified name."""
    ref = resolve_agent(module_level_agent)
    assert ref.module == __name__
    assert ref.attr == "module_level_agent"
    assert ref.path == __file__
    assert ref.spec == f"{__name__}:module_level_agent"


def test_library_function_resolves_to_its_module() -> None:
    """json.dumps passed as an object resolves like the spec 'json:dumps'."""
    ref = resolve_agent(json.dumps)
    assert (ref.module, ref.attr, ref.spec) == ("json", "dumps", "json:dumps")


def test_agent_errors_are_config_errors() -> None:
    """AgentLoadError is a ConfigError (and a ValueError), so callers can catch either."""
    assert issubclass(AgentLoadError, ConfigError)
    assert issubclass(AgentLoadError, ValueError)


# --- load_callable (in-process import) --------------------------------------------------------------------


def test_load_callable_from_file(root: Path, import_sandbox: None) -> None:
    """load_callable imports a file agent and returns a working function."""
    fn = load_callable(resolve_agent("fixtures/agents/echo.py:agent"))
    assert fn({"q": 1}, None) == {"echo": {"q": 1}}


def test_load_callable_from_json_form(root: Path, import_sandbox: None) -> None:
    """load_callable accepts the dict an instance receives over the wire."""
    ref = resolve_agent("fixtures/agents/lambda_handler.py:handler")
    assert load_callable(ref.to_json()).__name__ == "handler"


def test_load_callable_from_module() -> None:
    """load_callable imports a module agent."""
    assert load_callable(resolve_agent("json:dumps")) is json.dumps


def test_load_callable_not_callable(root: Path, import_sandbox: None) -> None:
    """A value that turns out not to be callable after import is an AgentLoadError."""
    ref = AgentRef(module=None, path=str(AGENTS / "not_callable.py"), attr="agent", spec="nc:agent")
    with pytest.raises(AgentLoadError, match="is a dict, not a callable"):
        load_callable(ref)


def test_load_callable_missing_attribute(import_sandbox: None) -> None:
    """An attribute missing after import is an AgentLoadError naming it."""
    ref = AgentRef(module="json", path=None, attr="nope", spec="json:nope")
    with pytest.raises(AgentLoadError, match="no attribute 'nope'"):
        load_callable(ref)


# --- detect_adapter ---------------------------------------------------------------------------------------


def handler(event: Any, context: Any) -> Any:
    return event


def agent_two(task: Any, ctx: Any) -> Any:
    return task


def agent_one(task: Any) -> Any:
    return task


async def agent_async(task: Any, ctx: Any) -> Any:
    return task


@pytest.mark.parametrize(
    ("fn", "expected"),
    [(handler, "lambda"), (agent_two, "agent"), (agent_one, "agent"), (agent_async, "agent")],
    ids=["handler(event, context)", "agent(task, ctx)", "agent(task)", "async agent(task, ctx)"],
)
def test_detect_adapter_auto(fn: Any, expected: str) -> None:
    """auto picks 'lambda' for handler(event, context) and 'agent' for agent(task, ctx) and agent(task)."""
    assert detect_adapter(fn) == expected


def test_detect_adapter_explicit_choice_wins() -> None:
    """An explicit adapter is used whatever the signature."""
    assert detect_adapter(agent_two, "lambda") == "lambda"
    assert detect_adapter(handler, "agent") == "agent"


def test_detect_adapter_without_signature_is_agent() -> None:
    """A callable without an inspectable signature falls back to 'agent'."""
    assert detect_adapter(print) == "agent"


def test_unknown_adapter_is_config_error() -> None:
    """An unknown adapter is a ConfigError listing the valid ones."""
    with pytest.raises(ConfigError, match="unknown adapter 'aws'; expected one of: auto, agent, lambda"):
        detect_adapter(agent_two, "aws")


# --- uses_ctx_llm: which agents get ctx.llm's client at init ------------------------------------------------


def test_an_agent_that_reads_ctx_llm_is_found_statically() -> None:
    """llm_budget calls ctx.llm: found without running it; echo and the subrequester (ctx.http) do not."""
    assert uses_ctx_llm(resolve_agent(f"{AGENTS / 'llm_budget.py'}:agent"))
    assert not uses_ctx_llm(resolve_agent(f"{AGENTS / 'echo.py'}:agent"))
    assert not uses_ctx_llm(resolve_agent(f"{AGENTS / 'subrequester.py'}:agent"))


def test_ctx_llm_in_a_project_module_the_agent_imports_counts(tmp_path: Path) -> None:
    """A helper module of the project that reads ctx.llm makes the agent a ctx.llm agent too."""
    (tmp_path / "helpers.py").write_text("def ask(ctx):\n    return ctx.llm.chat.completions.create()\n")
    (tmp_path / "main.py").write_text("from helpers import ask\n\ndef agent(task, ctx):\n    return ask(ctx)\n")
    assert uses_ctx_llm(resolve_agent(f"{tmp_path / 'main.py'}:agent"))
