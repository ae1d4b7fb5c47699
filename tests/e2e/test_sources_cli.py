"""End to end: `harness run/profiles --from` a deployment file, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / "fixtures" / "deployments" / "sam" / "template.yaml"
K8S_DIR = ROOT / "fixtures" / "deployments" / "k8s-dir"


def _harness(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_run_from_sam_runs_every_function_with_its_declared_limits(tmp_path: Path) -> None:
    """`run --from template.yaml --patterns all` runs each function on every pattern, its own limits on its own."""
    out = tmp_path / "out.json"
    proc = _harness("run", "--from", str(SAM), "--patterns", "all", "-n", "2", "-q", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "ApiFunction (template.yaml, platform time)" in proc.stdout
    assert "WorkerFunction (template.yaml, platform time)" in proc.stdout
    api = json.loads((tmp_path / "out-ApiFunction.json").read_text())
    worker = json.loads((tmp_path / "out-WorkerFunction.json").read_text())
    by = {d["summary"]["pattern"]: d for d in api["deployments"]}
    assert set(by) == {"serverless", "container", "daemon", "edge"}
    assert all(d["summary"]["outcomes"] == {"ok": 2} for d in api["deployments"] + worker["deployments"])
    lam = by["serverless"]["profile"]
    assert (lam["timeout_s"], lam["memory_mb"], lam["max_concurrency"], lam["gateway_timeout_s"]) == (
        20.0, 256.0, 5, 29.0)
    # Timeout and MemorySize carry to the container (each printed with its line), not to the daemon or the edge
    pod = by["container"]["profile"]
    assert (pod["name"], pod["memory_mb"], pod["timeout_s"]) == ("k8s-hpa", 256.0, 20.0)
    assert (by["daemon"]["profile"]["memory_mb"], by["edge"]["profile"]["memory_mb"]) == (512.0, 128.0)
    text = " ".join(proc.stdout.split())
    assert "ApiFunction on container (k8s-hpa): memory_mb = 256 taken from template.yaml:25 (MemorySize)" in text
    assert "ApiFunction not applied on edge: timeout_s = 20 from template.yaml:8 (Timeout)" in text
    consumer = {d["summary"]["pattern"]: d for d in worker["deployments"]}["daemon"]["profile"]
    assert (consumer["visibility_timeout_s"], consumer["max_receives"], consumer["task_deadline_s"]) == (
        120.0, 3, 60.0)
    assert (consumer["event_source"], consumer["batch_size"], consumer["report_batch_item_failures"]) == (
        "sqs", 5, True)
    # The API handler got a REST proxy event; a task's output is the JSON body of its proxy response.
    output = by["serverless"]["records"][0]["output"]
    assert output["memory_limit_in_mb"] == "256" and output["path"] == "/invoke"  # the declared MemorySize


def test_profiles_from_shows_the_mapped_limits_and_where_they_came_from() -> None:
    """`profiles --from` shows timeouts and memory per function with the user's key and file:line."""
    proc = _harness("profiles", "--from", str(SAM))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "ApiFunction: serverless on aws-lambda" in text and "WorkerFunction: daemon on daemon-local" in text
    assert "(template.yaml:25)" in text and "MemorySize = 256" in text.replace("│ ", "")
    assert "timeout_s" in text and "memory_mb" in text


def test_run_and_profiles_from_a_folder_of_kubernetes_manifests(tmp_path: Path) -> None:
    """`--from DIR` reads every manifest in the folder: the Deployment's limits and the HPA in its own file."""
    out = tmp_path / "out.json"
    proc = _harness("run", "--from", str(K8S_DIR), "-n", "2", "-q", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    [dep] = json.loads(out.read_text())["deployments"]
    assert dep["summary"]["outcomes"] == {"ok": 2}
    assert (dep["profile"]["memory_mb"], dep["profile"]["max_replicas"]) == (1024.0, 4)
    proc = _harness("profiles", "--from", str(K8S_DIR))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "research-agent: container on k8s-hpa" in text and "(hpa.yml:12)" in text
    assert "Service 'research-agent' (service.json:3)" in text


def test_from_errors_exit_2_with_file_and_line(tmp_path: Path) -> None:
    """A mapped value over the platform's limit exits 2 naming the file, line and key; so does a bad --function."""
    bad = tmp_path / "template.yaml"
    bad.write_text(SAM.read_text().replace("Timeout: 60", "Timeout: 1000"))
    (tmp_path / "src").symlink_to(SAM.parent / "src")
    proc = _harness("run", "--from", str(bad), "-n", "1", "-q")
    assert proc.returncode == 2 and "template.yaml:42" in proc.stderr and "Timeout = 1000" in proc.stderr
    proc = _harness("profiles", "--from", str(SAM), "--function", "Nope")
    assert proc.returncode == 2 and "ApiFunction, WorkerFunction" in proc.stderr
    proc = _harness("run")
    assert proc.returncode == 2 and "--from" in proc.stderr
