"""Profiles: shipped files load, values match platform-facts, bad files and overrides are refused clearly."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from emulators.distributions import Distribution
from emulators.errors import ConfigError
from emulators.profiles import PATTERNS, Profile, default_profile_name, list_profiles, load_profile

PROFILE_DIR = Path(load_profile.__code__.co_filename).parent


def write_profile(tmp_path: Path, body: str, name: str = "custom") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(body, encoding="utf-8")
    return path


# --- shipped profiles ---------------------------------------------------------------------------------


def test_list_profiles_names_the_shipped_files() -> None:
    """list_profiles() returns the sorted stems of the shipped .toml files, aws-lambda among them."""
    names = list_profiles()
    assert names == sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))
    assert "aws-lambda" in names


@pytest.mark.parametrize("name", list_profiles())
def test_every_shipped_profile_loads(name: str) -> None:
    """Every shipped profile loads as a Profile of a known pattern, named after its file, with its source."""
    profile = load_profile(name)
    assert isinstance(profile, Profile)
    assert profile.name == name
    assert profile.pattern in PATTERNS
    assert profile.source.endswith(f"{name}.toml")
    assert profile.timeout_s > 0 and profile.memory_mb > 0


def test_default_serverless_profile_is_aws_lambda() -> None:
    """With no profile named, the serverless pattern uses aws-lambda."""
    assert default_profile_name("serverless") == "aws-lambda"
    assert load_profile(None, "serverless").name == "aws-lambda"


def test_aws_lambda_values() -> None:
    """aws-lambda has Lambda's defaults: 3 s timeout (max 900), 128 MB, 6 MB payloads, 29 s gateway."""
    p = load_profile("aws-lambda")
    assert p.timeout_s == 3.0
    assert p.max_timeout_s == 900.0
    assert p.memory_mb == 128
    assert p.request_limit_bytes == 6 * 1024 * 1024
    assert p.response_limit_bytes == 6 * 1024 * 1024
    assert p.gateway_timeout_s == 29.0
    assert p.init_timeout_s == 10.0
    assert p.instance_concurrency == 1
    assert p.cold_start_overhead_ms == Distribution("uniform", (("low", 73.9), ("high", 102.4)))


def test_aws_lambda_cpu_factor_follows_memory() -> None:
    """At 128 MB Lambda CPU work is 1769/128 times slower; at 1769 MB or more it runs at full speed."""
    p = load_profile("aws-lambda")
    assert p.cpu_factor() == pytest.approx(1769 / 128)
    assert p.replace(memory_mb=1769).cpu_factor() == pytest.approx(1.0)
    assert p.replace(memory_mb=10240).cpu_factor() == pytest.approx(1.0)


def test_aws_lambda_init_runs_at_full_cpu_speed() -> None:
    """Lambda's init phase is not CPU-throttled even at 128 MB (init cpu factor 1.0)."""
    p = load_profile("aws-lambda")
    assert p.cpu_factor(init=True) == 1.0
    assert p.replace(init_cpu_full_speed=False).cpu_factor(init=True) == pytest.approx(1769 / 128)


def test_profile_without_cpu_memory_tie_has_factor_one() -> None:
    """A profile that does not tie CPU to memory reports a CPU factor of 1.0."""
    assert Profile().cpu_factor() == 1.0


def test_profile_to_json_is_plain() -> None:
    """Profile.to_json gives plain values, with the cold-start distribution as its table form."""
    data = load_profile("aws-lambda").to_json()
    assert data["timeout_s"] == 3.0
    assert data["cold_start_overhead_ms"] == {"dist": "uniform", "low": 73.9, "high": 102.4}


# --- unknown names and paths ---------------------------------------------------------------------------


def test_unknown_shipped_profile_suggests_close_matches() -> None:
    """A misspelt profile name is a ConfigError naming the close match and listing the shipped profiles."""
    with pytest.raises(ConfigError) as exc:
        load_profile("aws-lamda")
    msg = str(exc.value)
    assert "'aws-lamda'" in msg
    assert "did you mean 'aws-lambda'" in msg
    for name in list_profiles():
        assert name in msg


def test_missing_profile_file_is_config_error(tmp_path: Path) -> None:
    """A .toml path that does not exist is a ConfigError naming the path."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_profile(missing)


def test_profile_for_another_pattern_is_refused(tmp_path: Path) -> None:
    """A serverless profile file used for the container pattern is a ConfigError naming both patterns."""
    path = write_profile(tmp_path, 'pattern = "serverless"\ntimeout_s = 5\n')
    with pytest.raises(ConfigError, match="serverless pattern, not container"):
        load_profile(path, "container")


def test_profile_instance_passes_through() -> None:
    """A Profile object given to load_profile is returned as is."""
    p = Profile(timeout_s=7)
    assert load_profile(p) is p


def test_custom_profile_file_loads(tmp_path: Path) -> None:
    """A valid custom profile file loads with its name from the file stem and a constant cold start."""
    path = write_profile(tmp_path, "timeout_s = 12\nmemory_mb = 256\ncold_start_overhead_ms = 50\n", "mine")
    p = load_profile(path)
    assert (p.name, p.timeout_s, p.memory_mb) == ("mine", 12.0, 256.0)
    assert p.cold_start_overhead_ms == Distribution("constant", (("value", 50.0),))
    assert p.source == str(path)


# --- bad profile files ---------------------------------------------------------------------------------


def test_unknown_field_names_file_field_and_close_match(tmp_path: Path) -> None:
    """An unknown field is a ConfigError naming the file, the field and the close match."""
    path = write_profile(tmp_path, "timout_s = 10\n")
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "'timout_s'" in msg
    assert "did you mean 'timeout_s'" in msg


def test_wrong_type_is_config_error(tmp_path: Path) -> None:
    """A string where a number belongs is a ConfigError naming the file, the field and the value."""
    path = write_profile(tmp_path, 'timeout_s = "ten"\n')
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    msg = str(exc.value)
    assert str(path) in msg and "'timeout_s'" in msg and "'ten'" in msg
    assert "must be a number" in msg


def test_bool_is_not_a_number(tmp_path: Path) -> None:
    """true where a number belongs is refused (bool is not silently 1)."""
    path = write_profile(tmp_path, "timeout_s = true\n")
    with pytest.raises(ConfigError, match="must be a number"):
        load_profile(path)


def test_fractional_integer_field_is_refused(tmp_path: Path) -> None:
    """A fractional value for a whole-number field (max_concurrency) is a ConfigError."""
    path = write_profile(tmp_path, "max_concurrency = 1.5\n")
    with pytest.raises(ConfigError, match="whole number"):
        load_profile(path)


def test_bool_field_must_be_bool(tmp_path: Path) -> None:
    """A number for a true/false field (bill_init) is a ConfigError."""
    path = write_profile(tmp_path, "bill_init = 1\n")
    with pytest.raises(ConfigError, match="true or false"):
        load_profile(path)


def test_negative_timeout_is_refused(tmp_path: Path) -> None:
    """A negative timeout is a ConfigError saying it must be positive."""
    path = write_profile(tmp_path, "timeout_s = -1\n")
    with pytest.raises(ConfigError, match=r"'timeout_s' must be positive, got -1"):
        load_profile(path)


def test_zero_memory_is_refused(tmp_path: Path) -> None:
    """Zero memory is a ConfigError saying it must be positive."""
    path = write_profile(tmp_path, "memory_mb = 0\n")
    with pytest.raises(ConfigError, match=r"'memory_mb' must be positive"):
        load_profile(path)


def test_negative_seed_is_refused(tmp_path: Path) -> None:
    """A field that may be zero (seed) still may not be negative."""
    path = write_profile(tmp_path, "seed = -3\n")
    with pytest.raises(ConfigError, match="zero or more"):
        load_profile(path)


def test_nan_timeout_is_refused(tmp_path: Path) -> None:
    """A NaN timeout (TOML allows `nan`) is refused: no time limit could ever compare against it."""
    path = write_profile(tmp_path, "timeout_s = nan\n")
    with pytest.raises(ConfigError, match="timeout_s"):
        load_profile(path)


def test_invalid_toml_is_config_error(tmp_path: Path) -> None:
    """A file that is not valid TOML is a ConfigError naming the file."""
    path = write_profile(tmp_path, "timeout_s = = 3\n")
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    assert "not valid TOML" in str(exc.value) and str(path) in str(exc.value)


def test_field_of_another_pattern_is_refused(tmp_path: Path) -> None:
    """A serverless-only field in a container profile is a ConfigError saying whose field it is."""
    path = write_profile(tmp_path, 'pattern = "container"\nmax_concurrency = 10\n')
    with pytest.raises(ConfigError, match="'max_concurrency' belongs to the serverless pattern, not container"):
        load_profile(path, "container")


def test_unknown_pattern_in_file_is_refused(tmp_path: Path) -> None:
    """An unknown pattern written in a profile file is a ConfigError listing the patterns."""
    path = write_profile(tmp_path, 'pattern = "serverles"\n')
    with pytest.raises(ConfigError, match="did you mean 'serverless'"):
        load_profile(path, "serverles")


def test_bad_distribution_in_file_names_the_field(tmp_path: Path) -> None:
    """A bad cold-start distribution is a ConfigError naming the file and the field."""
    path = write_profile(tmp_path, 'cold_start_overhead_ms = { dist = "gamma", k = 2 }\n')
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    assert str(path) in str(exc.value) and "cold_start_overhead_ms" in str(exc.value)


def test_timeout_above_file_maximum_is_refused(tmp_path: Path) -> None:
    """A file whose timeout exceeds its own max_timeout_s is a ConfigError."""
    path = write_profile(tmp_path, "timeout_s = 20\nmax_timeout_s = 10\n")
    with pytest.raises(ConfigError, match="exceeds the platform maximum of 10"):
        load_profile(path)


# --- overrides ---------------------------------------------------------------------------------------


def test_replace_overrides_a_field() -> None:
    """Profile.replace(timeout_s=10) returns a copy with the new value and leaves the original alone."""
    base = load_profile("aws-lambda")
    p = base.replace(timeout_s=10)
    assert p.timeout_s == 10.0
    assert base.timeout_s == 3.0
    assert p.memory_mb == base.memory_mb and p.name == base.name


def test_replace_accepts_a_distribution_value() -> None:
    """An override of cold_start_overhead_ms is parsed as a distribution."""
    p = load_profile("aws-lambda").replace(cold_start_overhead_ms={"dist": "constant", "value": 5})
    assert p.cold_start_overhead_ms == Distribution("constant", (("value", 5.0),))


def test_replace_beyond_platform_maximum_is_refused() -> None:
    """timeout_s=1000 on aws-lambda is refused: it exceeds Lambda's 900 s maximum."""
    with pytest.raises(ConfigError) as exc:
        load_profile("aws-lambda").replace(timeout_s=1000)
    msg = str(exc.value)
    assert "timeout_s=1000" in msg and "900" in msg and "aws-lambda" in msg


def test_replace_memory_outside_range_is_refused() -> None:
    """Memory below aws-lambda's 128 MB minimum or above its 10,240 MB maximum is refused."""
    p = load_profile("aws-lambda")
    with pytest.raises(ConfigError, match="below"):
        p.replace(memory_mb=64)
    with pytest.raises(ConfigError, match="above"):
        p.replace(memory_mb=20000)


def test_replace_validates_types() -> None:
    """An override of the wrong type is refused as a file value would be."""
    with pytest.raises(ConfigError, match="must be a number"):
        load_profile("aws-lambda").replace(timeout_s="10")


def test_replace_unknown_field_names_close_match() -> None:
    """An unknown override field is a ConfigError naming the close match."""
    with pytest.raises(ConfigError) as exc:
        load_profile("aws-lambda").replace(timout_s=10)
    assert "'timout_s'" in str(exc.value) and "did you mean 'timeout_s'" in str(exc.value)


# --- provenance: every number cites its source ---------------------------------------------------------

_SOURCE = re.compile(
    r"\b[A-Z]{1,2}\d+\b|ESTIMATE|UNCONFIRMED|harness|not in platform-facts|platform-facts\.md has no"
    r"|\bno\b[^#]*\bin platform-facts"
)


def _has_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, dict):
        return any(_has_number(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_number(v) for v in value)
    return False


def _uncited_number_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    bad: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        code, _, inline = line.partition("#")  # shipped profiles have no '#' inside strings
        if not _has_number(next(iter(tomllib.loads(code).values()))):
            continue
        comments = [inline]
        j = i - 1  # the comment lines of this paragraph above the line
        while j >= 0 and lines[j].strip():
            if lines[j].strip().startswith("#"):
                comments.append(lines[j])
            j -= 1
        if not any(_SOURCE.search(c) for c in comments):
            bad.append(f"{path.name}:{i + 1}: {stripped}")
    return bad


@pytest.mark.parametrize("name", list_profiles())
def test_every_number_in_shipped_profiles_cites_a_source(name: str) -> None:
    """Every number line in a shipped profile has a source key, ESTIMATE or a harness note in its comments."""
    assert _uncited_number_lines(PROFILE_DIR / f"{name}.toml") == []


def test_source_check_catches_an_uncited_number(tmp_path: Path) -> None:
    """The provenance check itself flags a number with no comment and accepts one with a key."""
    path = write_profile(tmp_path, "timeout_s = 3  # (A24)\n\nmemory_mb = 128\n")
    assert _uncited_number_lines(path) == [f"{path.name}:3: memory_mb = 128"]


def test_front_door_is_per_profile_and_checked() -> None:
    """Cloud Run has the pending queue (R12), Kubernetes binds at the pod (K19); a typo names the choices."""
    assert load_profile("gcp-cloud-run").front_door == "pending_queue"
    assert load_profile("k8s-hpa").front_door == "pod"
    with pytest.raises(ConfigError, match=r"front_door.*pod, pending_queue.*pending_queue"):
        load_profile("gcp-cloud-run").replace(front_door="pending-queue")
    with pytest.raises(ConfigError, match="target_concurrency_percent=120"):
        load_profile("gcp-cloud-run").replace(target_concurrency_percent=120)
