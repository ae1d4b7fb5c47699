"""The public surface: harness.__all__ is guarded, and the engine never depends on the user-facing layer."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import emulators
import harness
from emulators import errors

from .conftest import ROOT

EXPECTED_ALL = {
    "OUTCOMES",
    "AgentLoadError",
    "AsyncDeployment",
    "ConfigError",
    "Cost",
    "Deployment",
    "DeploymentClosedError",
    "HarnessError",
    "InstanceStartError",
    "Profile",
    "Record",
    "Result",
    "Summary",
    "TaskStatus",
    "adeploy",
    "deploy",
    "list_profiles",
    "load_profile",
}


def test_harness_all_is_the_expected_public_set() -> None:
    """harness.__all__ is exactly the documented public set (a change here is an API change)."""
    assert set(harness.__all__) == EXPECTED_ALL
    assert len(harness.__all__) == len(set(harness.__all__))


def test_every_public_name_is_importable() -> None:
    """Every name in harness.__all__ exists, and a star import binds them all."""
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from harness import *", namespace)
    assert set(namespace) >= EXPECTED_ALL


def test_errors_are_re_exported_from_the_one_tree() -> None:
    """The errors harness exports are the emulators.errors classes, all under HarnessError."""
    for name in ("AgentLoadError", "ConfigError", "DeploymentClosedError", "InstanceStartError"):
        cls = getattr(harness, name)
        assert cls is getattr(errors, name)
        assert issubclass(cls, harness.HarnessError)


def test_emulators_modules_export_what_they_list() -> None:
    """Every emulators module defines every name in its __all__."""
    for info in pkgutil.walk_packages(emulators.__path__, "emulators."):
        module = importlib.import_module(info.name)
        missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
        assert missing == [], info.name


_IMPORTS_HARNESS = re.compile(r"^\s*(import\s+harness\b|from\s+harness\b)", re.MULTILINE)


def test_emulators_never_imports_harness() -> None:
    """No module under emulators/ imports harness: the engine stands on its own."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "emulators").rglob("*.py"))
        if _IMPORTS_HARNESS.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def _importers(package: Path, module: str) -> list[Path]:
    pattern = re.compile(rf"^\s*(import\s+{module}\b|from\s+{module}\b)", re.MULTILINE)
    return [p for p in sorted(package.rglob("*.py")) if pattern.search(p.read_text(encoding="utf-8"))]


def test_only_the_plugin_imports_pytest_and_only_load_imports_locust() -> None:
    """pytest is imported only under harness/plugin and locust only under harness/load (DESIGN.md, Layout)."""
    for package in (ROOT / "emulators", ROOT / "harness"):
        for p in _importers(package, "pytest"):
            assert "plugin" in p.relative_to(ROOT).parts, p
        for p in _importers(package, "locust"):
            assert "load" in p.relative_to(ROOT).parts, p
