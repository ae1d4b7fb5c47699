"""What an assembled instance container needs to run the caller's interpreter with the caller's packages.

The assembled image has no Python of its own: it runs the host's interpreter, bind-mounted read-only. Which
interpreter and which directories are derived from the running one, never assumed, so that every common
install works the same inside as outside:

- a virtual environment (incl. ``--system-site-packages``, pipx and ``uv tool`` installs, which are venvs):
  the venv's own ``bin/python`` runs, so it finds its ``pyvenv.cfg`` and its site-packages as on the host;
  the base interpreter it links to is mounted too (every hop of the symlink chain);
- a user install (``pip install --user``): ``PYTHONUSERBASE`` points at the host's user base, since the
  container's ``HOME`` is a scratch ``/tmp``;
- editable installs: a legacy ``.pth`` puts the source on ``sys.path`` (mounted as a ``sys.path`` entry);
  setuptools' finder-style ones keep a ``MAPPING`` of package -> source directory, mounted too;
- ``PYTHONPATH`` entries of the host are passed on.
"""

from __future__ import annotations

import os
import site
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import InstanceStartError

__all__ = ["Layout", "interpreter_layout"]

_EDITABLE_PREFIX = "__editable__"  # setuptools' finder modules: __editable___<dist>_<ver>_finder


@dataclass
class Layout:
    """The interpreter to run inside, the host paths to mount read-only for it, and its environment."""

    executable: str
    paths: set[Path] = field(default_factory=set)
    env: dict[str, str] = field(default_factory=dict)
    python_path: list[str] = field(default_factory=list)  # extra PYTHONPATH entries, after the harness's


def _link_chain(path: Path) -> list[Path]:
    """``path`` and every file a chain of symlinks from it passes through (relative links resolved)."""
    chain = [path]
    seen = {path}
    current = path
    for _ in range(40):  # the kernel's own symlink-depth limit
        if not current.is_symlink():
            break
        target = Path(os.readlink(current))
        current = target if target.is_absolute() else current.parent / target
        current = Path(os.path.normpath(current))
        if current in seen:
            break
        seen.add(current)
        chain.append(current)
    chain.append(path.resolve())
    return chain


def _interpreter_dir(executable: Path) -> Path:
    """What to mount for an interpreter file: its prefix (``<prefix>/bin/python`` -> ``<prefix>``)."""
    parent = executable.parent
    return parent.parent if parent.name in ("bin", "Scripts") and parent.parent != Path("/") else parent


def _editable_sources() -> set[Path]:
    """Source directories of finder-style editable installs (their finders are imported at startup)."""
    found: set[Path] = set()
    for name, module in list(sys.modules.items()):
        if not (name.startswith(_EDITABLE_PREFIX) and name.endswith("_finder")):
            continue
        mapping = getattr(module, "MAPPING", None)
        if isinstance(mapping, dict):
            for value in mapping.values():
                src = Path(str(value))
                # A package maps to its directory; a single-module distribution to its .py file.
                found.add(src.parent if src.suffix == ".py" or src.is_file() else src)
    return found


def interpreter_layout() -> Layout:
    """The running interpreter's layout, for a container that runs it with the same imports."""
    if not sys.executable:
        raise InstanceStartError("the Docker runtime runs the caller's interpreter, but this one does not know "
                                 "its own path (sys.executable is empty); run the harness with a regular python")
    exe = Path(sys.executable).absolute()
    layout = Layout(executable=str(exe))
    for hop in _link_chain(exe):
        layout.paths.add(_interpreter_dir(hop))
    for prefix in {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}:
        layout.paths.add(Path(prefix))
    for entry in sys.path:
        if not entry:
            continue
        p = Path(entry)
        if p.is_dir():
            layout.paths.add(p)
        elif p.is_file():  # a zip on the path
            layout.paths.add(p.parent)
    layout.paths |= _editable_sources()
    if site.ENABLE_USER_SITE and site.USER_SITE and site.USER_SITE in sys.path and site.USER_BASE:
        layout.env["PYTHONUSERBASE"] = site.USER_BASE
        layout.paths.add(Path(site.USER_SITE))
    layout.python_path = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    # Resolve each path too: a mount of a symlinked directory must also carry the directory it points to.
    layout.paths |= {p.resolve() for p in layout.paths}
    layout.paths = {p for p in layout.paths if p != Path("/") and p.exists()}
    return layout
