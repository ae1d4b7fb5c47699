"""Agent specs: resolve ``module:callable``, ``path/file.py:callable`` or a callable, validate, load.

The control process validates a spec *without running it* (the file exists, it parses, the name is bound
at module level and not to a literal), so mistakes surface as a ``ConfigError`` at ``deploy()`` time.
The instance process then imports it for real: that import is the agent's cold start.
"""

from __future__ import annotations

import ast
import gzip
import importlib
import importlib.util
import inspect
import os
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AgentLoadError, ConfigError

__all__ = ["ADAPTERS", "HTTP_ADAPTERS", "AgentRef", "CodeSize", "code_size", "detect_adapter", "load_callable",
           "resolve_agent", "uses_ctx_llm"]

# agent: agent(task, ctx); lambda: handler(event, context); asgi: an ASGI app behind API Gateway events;
# apigw-v1 / apigw-v2: a Lambda handler behind API Gateway (REST payload 1.0 / HTTP API payload 2.0);
# sqs: a Lambda handler behind an SQS event source (a plain task arrives as a one-message batch).
ADAPTERS = ("auto", "agent", "lambda", "asgi", "apigw-v1", "apigw-v2", "sqs")
HTTP_ADAPTERS = {"asgi": "2.0", "apigw-v1": "1.0", "apigw-v2": "2.0"}  # adapter -> the events it gets
_LITERALS = (ast.Constant, ast.List, ast.Dict, ast.Set, ast.Tuple, ast.JoinedStr, ast.ListComp, ast.DictComp)


@dataclass(frozen=True)
class AgentRef:
    """Where an agent lives: an importable module or a file, and the attribute path within it."""

    module: str | None
    path: str | None  # absolute path of the file, when known
    attr: str
    spec: str  # what the user wrote, for messages

    @property
    def name(self) -> str:
        """A short name for the agent (used as the function name)."""
        return self.attr.split(".")[-1]

    def to_json(self) -> dict[str, Any]:
        """Plain form sent to instances."""
        return {"module": self.module, "path": self.path, "attr": self.attr, "spec": self.spec}


def resolve_agent(agent: str | Path | Callable[..., Any]) -> AgentRef:
    """Turn what the user passed into an AgentRef, validating it statically."""
    if callable(agent) and not isinstance(agent, str | Path):
        return _ref_from_callable(agent)
    spec = str(agent)
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise AgentLoadError(
            f"agent {spec!r} is not of the form 'module:callable' or 'path/to/file.py:callable'; "
            f"add the name of the function after a colon, e.g. '{spec}:agent'"
        )
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise AgentLoadError(f"agent file {target!r} (from {spec!r}) does not exist; check the path")
        ref = AgentRef(module=None, path=str(path), attr=attr, spec=spec)
    else:
        ref = AgentRef(module=target, path=_module_file(target, spec), attr=attr, spec=spec)
    if ref.path is not None and ref.path.endswith(".py"):
        _check_source(Path(ref.path), attr, spec)
    return ref


def _module_file(module: str, spec: str) -> str | None:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        found = None
        reason = f" ({exc})"
    else:
        reason = ""
    if found is None:
        raise AgentLoadError(
            f"agent module {module!r} (from {spec!r}) cannot be found{reason}; run from the directory that "
            f"contains it, install it, or pass a file path like 'path/to/{module.split('.')[-1]}.py:agent'"
        )
    return found.origin if found.origin and found.origin != "built-in" else None


def _check_source(path: Path, attr: str, spec: str) -> None:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise AgentLoadError(
            f"agent file {str(path)!r} has a syntax error at line {exc.lineno}: {exc.msg}; fix it and retry"
        ) from None
    head = attr.split(".")[0]
    bound: ast.AST | None = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == head:
            bound = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == head for t in targets):
                bound = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) == head:
                    return  # bound by an import: only a real import can tell what it is
        elif isinstance(node, ast.If | ast.Try | ast.With) and _may_bind(node, head):
            return  # a conditional definition: only the real import can tell
    if bound is None:
        names = sorted(
            n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        )
        hint = f"; functions defined there: {', '.join(names)}" if names else ""
        raise AgentLoadError(f"agent {spec!r}: {str(path)!r} defines no {head!r} at module level{hint}")
    value = getattr(bound, "value", None)
    if isinstance(value, _LITERALS):
        raise AgentLoadError(
            f"agent {spec!r}: {head!r} in {str(path)!r} is bound to a {type(value).__name__.lower()} "
            f"literal, not a callable; point the spec at a function"
        )


def _may_bind(block: ast.AST, name: str) -> bool:
    """Whether a compound statement could bind ``name`` (a def, an assignment or an import in it)."""
    for node in ast.walk(block):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) == name:
                    return True
    return False


@dataclass(frozen=True)
class CodeSize:
    """What an edge platform would upload: the agent's file and the project modules it imports."""

    files: tuple[str, ...]
    raw_bytes: int
    gzip_bytes: int  # the files gzipped as one bundle (Vercel's edge limit is on the gzip size)


def code_size(ref: AgentRef) -> CodeSize:
    """Measure, without running anything, the agent module plus every project module it imports (transitively).

    Project modules are those found under the agent's own directory (or, for ``module:callable``, the
    directory its top package sits in) or the working directory, outside the standard library and installed
    packages; imports inside functions count too, as a bundler includes them. Installed packages are not
    counted (a JavaScript bundler would include them; Python edge runtimes ship their own).
    """
    seen = _project_files(ref)
    raw = b"".join(seen[f][0] for f in sorted(seen))
    return CodeSize(tuple(str(f) for f in sorted(seen)), len(raw), len(gzip.compress(raw, compresslevel=9, mtime=0)))


def uses_ctx_llm(ref: AgentRef) -> bool:
    """Whether the agent's code (its module and the project modules it imports) reads an attribute ``llm``.

    Static, as ``code_size``: an agent that calls ``ctx.llm`` gets its client made at instance init, where
    a real agent makes its module-level client. Any ``.llm`` counts (a false positive only moves an import
    into init); an agent that reaches ``ctx.llm`` some other way (``getattr``, an installed package) makes
    the client in its first request, as before.
    """
    for _, tree in _project_files(ref).values():
        if tree is not None and any(isinstance(n, ast.Attribute) and n.attr == "llm" for n in ast.walk(tree)):
            return True
    return False


def _project_files(ref: AgentRef) -> dict[Path, tuple[bytes, ast.AST | None]]:
    """The agent's file and the project files it imports (see ``code_size``): their bytes and parse trees."""
    if ref.path is None or not ref.path.endswith(".py"):
        return {}
    start = Path(ref.path).resolve()
    top = start.parent
    if ref.module is not None:
        for _ in range(ref.module.count(".")):
            top = top.parent
    roots = list(dict.fromkeys([top, Path.cwd().resolve()]))
    paths = sysconfig.get_paths()
    installed = {Path(paths[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(k)}
    seen: dict[Path, tuple[bytes, ast.AST | None]] = {}
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        data = path.read_bytes()
        try:
            tree: ast.AST | None = ast.parse(data, filename=str(path))
        except SyntaxError:
            tree = None
        seen[path] = data, tree
        if tree is None:
            continue
        for name, base in _imports(tree, path):
            found = _project_module(name, [base] if base is not None else roots, installed)
            todo.extend(f for f in found if f not in seen)
    return seen


def _imports(tree: ast.AST, path: Path) -> list[tuple[str, Path | None]]:
    """(dotted name, directory it is relative to or None for absolute) of each module an import may load."""
    out: list[tuple[str, Path | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = None
            if node.level:
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
            mod = node.module or ""
            if mod:
                out.append((mod, base))
            # ``from pkg import name`` may import the submodule pkg.name
            out += [(f"{mod}.{a.name}" if mod else a.name, base) for a in node.names if a.name != "*"]
    return out


def _project_module(name: str, roots: list[Path], installed: set[Path]) -> list[Path]:
    """The project files importing ``name`` runs: each package's ``__init__`` on the way, then the module."""
    parts = name.split(".")
    for root in roots:
        found: list[Path] = []
        for i in range(1, len(parts) + 1):
            stem = root.joinpath(*parts[:i])
            for cand in (stem / "__init__.py", stem.with_suffix(".py")):
                if cand.is_file():
                    found.append(cand.resolve())
                    break
            else:
                break
        if found and not any(f.is_relative_to(p) for f in found for p in installed):
            return found
    return []


def _ref_from_callable(fn: Callable[..., Any]) -> AgentRef:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", getattr(fn, "__name__", None))
    if not module or not qualname or "<" in qualname:
        raise AgentLoadError(
            f"agent {fn!r} cannot be loaded in a separate instance process: lambdas, closures and nested "
            f"functions have no importable name; define it at module level or pass 'file.py:name'"
        )
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if module == "__main__" or module.startswith("__"):
        if not path:
            raise AgentLoadError(
                f"agent {qualname!r} is defined in an interactive session; put it in a file and pass "
                f"'file.py:{qualname}'"
            )
        return AgentRef(module=None, path=str(Path(path).resolve()), attr=qualname,
                        spec=f"{path}:{qualname}")
    return AgentRef(module=module, path=path, attr=qualname, spec=f"{module}:{qualname}")


def load_callable(ref: AgentRef | dict[str, Any]) -> Callable[..., Any]:
    """Import the agent for real (in an instance process) and return the callable."""
    if isinstance(ref, dict):
        ref = AgentRef(**ref)
    if ref.module is not None:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        obj: Any = importlib.import_module(ref.module)
    else:
        assert ref.path is not None
        path = Path(ref.path)
        # Sibling modules of the agent file import as they would in the deployed bundle.
        sys.path.insert(0, str(path.parent))
        name = path.stem if path.stem.isidentifier() else "agent_module"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot import agent file {str(path)!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        obj = module
    for part in ref.attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AgentLoadError(
                f"agent {ref.spec!r}: the module has no attribute {part!r} after import; check the name"
            ) from None
    if not callable(obj):
        raise AgentLoadError(
            f"agent {ref.spec!r} is a {type(obj).__name__}, not a callable; point the spec at a function"
        )
    return obj  # type: ignore[no-any-return]


def detect_adapter(fn: Callable[..., Any], adapter: str = "auto") -> str:
    """``asgi`` for an ASGI app, ``lambda`` for ``handler(event, context)``, else ``agent``; an explicit
    choice wins."""
    if adapter not in ADAPTERS:
        raise ConfigError(f"unknown adapter {adapter!r}; expected one of: {', '.join(ADAPTERS)}")
    if adapter != "auto":
        return adapter
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return "agent"
    # An ASGI app: app(scope, receive, send), a coroutine function or an object whose __call__ is one
    # (FastAPI and Starlette apps are such objects).
    call = fn if inspect.isfunction(fn) else getattr(fn, "__call__", fn)  # noqa: B004 - the method, not callable()
    if params[:3] == ["scope", "receive", "send"] and inspect.iscoroutinefunction(call):
        return "asgi"
    if len(params) >= 2 and (params[0] == "event" or params[1] == "context"):
        return "lambda"
    return "agent"
