"""A folder of Kubernetes manifests as ``--from DIR``: read as ``kubectl apply -f DIR`` reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.errors import ConfigError
from harness.sources import detect_format, load_source

from .sources_files import SAMPLES, taken, write

DEPLOYMENT = """
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: NAME}
    spec:
      template:
        spec:
          containers:
            - name: a
              args: ["a.py:agent"]
              resources:
                limits: {memory: 256Mi}
    """
HPA = """
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata: {name: a-hpa}
    spec:
      scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: a}
      minReplicas: 2
      maxReplicas: 6
    """


def _folder(tmp_path: Path) -> Path:
    """A folder with a Deployment in a.yaml, its HPA in b.yml and the agent beside them."""
    write(tmp_path, "a.py", "def agent(task, ctx):\n    return {}\n")
    write(tmp_path, "a.yaml", DEPLOYMENT.replace("NAME", "a"))
    write(tmp_path, "b.yml", HPA)
    return tmp_path


def test_the_folder_sample_joins_a_deployment_and_its_hpa_from_their_own_files() -> None:
    """k8s-dir: the Deployment (deployment.yaml), its HPA (hpa.yml) and Service (service.json) read as one set."""
    src = load_source(SAMPLES / "k8s-dir")
    assert (src.format, src.names, detect_format(SAMPLES / "k8s-dir")) == ("k8s", ["research-agent"], "k8s")
    fn = src.get()
    o = fn.overrides
    assert fn.agent is not None and fn.agent.endswith("k8s-dir/agent.py:agent")
    assert (o["memory_mb"], o["vcpus"], o["min_replicas"], o["max_replicas"], o["target_concurrency"]) == (
        1024.0, 1.0, 1, 4, 10.0)
    assert o["scale_down_stabilization_s"] == 60.0 and fn.env == {"MODEL": "gpt-4o-mini"}
    # every taken key and warning names its own file and line
    assert str(taken(fn, "memory_mb").where) == "deployment.yaml:27"
    assert str(taken(fn, "max_replicas").where) == "hpa.yml:12"
    assert any("Service 'research-agent' (service.json:3)" in w for w in src.warnings())
    assert any("spec.replicas (deployment.yaml:8): the HPA sets the replica count" in w for w in src.warnings())
    assert fn.source.name == "deployment.yaml"  # readiness advice names the file to edit


def test_only_manifests_directly_in_the_folder_are_read(tmp_path: Path) -> None:
    """Other files are ignored; a subdirectory with manifests is reported as not read (kubectl needs -R)."""
    folder = _folder(tmp_path)
    write(folder, "README.md", "# not a manifest\n")
    write(folder, "staging/c.yaml", DEPLOYMENT.replace("NAME", "c"))
    src = load_source(folder)
    assert src.names == ["a"]
    assert (src.get().overrides["min_replicas"], src.get().overrides["max_replicas"]) == (2, 6)
    assert any(w.startswith("not mapped: staging/") and "--recursive" in w for w in src.warnings())


def test_a_folder_holding_another_file_names_it_with_its_line(tmp_path: Path) -> None:
    """A YAML file that is no Kubernetes object is an error naming that file and line, and what to do."""
    folder = _folder(tmp_path)
    write(folder, "compose.yml", "services:\n  web: {image: x}\n")
    with pytest.raises(ConfigError, match=r"compose.yml:1: a document without apiVersion and kind; .*kubectl"):
        load_source(folder)


def test_a_malformed_file_in_the_folder_names_its_line(tmp_path: Path) -> None:
    """A YAML syntax error in one of the folder's files names that file and line."""
    folder = _folder(tmp_path)
    write(folder, "c.yaml", "apiVersion: v1\nkind: [Service\n")
    with pytest.raises(ConfigError, match=r"c.yaml:3: not valid YAML"):
        load_source(folder)


def test_a_deployment_declared_in_two_files_is_an_error_naming_both(tmp_path: Path) -> None:
    """Two Deployments of one name: kubectl would apply one over the other, so the harness asks to keep one."""
    folder = _folder(tmp_path)
    write(folder, "z.yaml", DEPLOYMENT.replace("NAME", "a"))
    with pytest.raises(ConfigError, match=r"z.yaml:3: Deployment 'a' is declared again \(first at .*a.yaml:3\)"):
        load_source(folder)


def test_a_folder_without_manifests_is_an_error(tmp_path: Path) -> None:
    """An empty folder (or one without .yaml/.yml/.json files) says what a folder is read as."""
    write(tmp_path, "notes.txt", "nothing\n")
    with pytest.raises(ConfigError, match=r"kubectl apply -f DIR.*no \.yaml, \.yml, \.json file"):
        load_source(tmp_path)
