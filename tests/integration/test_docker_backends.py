"""Backends in containers (``--harness-backend NAME=container``): a missing image is named, never pulled.

No registry is reachable on these machines, so the expected result here is the "image missing" error that
names the image and how to provide it. Skipped, with the reason, where no Docker engine is reachable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.errors import BackendUnavailableError
from emulators.runtime.docker import connect, engine_problem
from emulators.runtime.docker.backends import BACKENDS, start_backend

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
_PROBLEM = engine_problem()


def _image_present(image: str) -> bool:
    import docker.errors

    client = connect()
    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        client.close()


@pytest.fixture
def missing_redis_image() -> str:
    """The redis backend's image, skipping where an engine is absent or the image is present after all."""
    if _PROBLEM is not None:
        pytest.skip(f"Docker tests skipped: {_PROBLEM}")
    image = BACKENDS["redis"].image
    if _image_present(image):
        pytest.skip(f"{image} is present locally: the image-missing path cannot be shown here")
    return image


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_a_missing_backend_image_is_named_with_how_to_provide_it(kind: str) -> None:
    """Starting a backend whose image is not local fails with the image's name and how to provide it."""
    if _PROBLEM is not None:
        pytest.skip(f"Docker tests skipped: {_PROBLEM}")
    image = BACKENDS[kind].image
    if _image_present(image):
        pytest.skip(f"{image} is present locally: the image-missing path cannot be shown here")
    with pytest.raises(BackendUnavailableError) as info:
        start_backend(kind, "test-missing")
    message = str(info.value)
    assert "image missing" in message and repr(image) in message
    assert f"docker pull {image}" in message and f"--harness-backend {kind}=URL" in message


def test_the_plugin_option_reports_the_missing_image(pytester: pytest.Pytester, missing_redis_image: str) -> None:
    """``--harness-backend redis=container`` fails the deployment with the missing image's name."""
    pytester.makepyfile(test_uses="""
        def test_echo(deployment):
            '''The agent answers.'''
            assert deployment.invoke({"x": 1}).ok
        """)
    result = pytester.runpytest_inprocess(
        f"--harness-agent={AGENTS / 'echo.py'}:agent", "--harness-patterns=serverless",
        "--harness-backend", "redis=container", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*image missing*{missing_redis_image}*"])


def test_a_bad_backend_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """An unknown backend name in ``--harness-backend`` is a usage error listing the names."""
    pytester.makepyfile(test_x="def test_x():\n    '''Nothing.'''\n")
    result = pytester.runpytest_inprocess("--harness-backend", "memcached=container")
    result.stderr.fnmatch_lines(["*--harness-backend 'memcached=container'*redis, rabbitmq, postgres, sqs*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
