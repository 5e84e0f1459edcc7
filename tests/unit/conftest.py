"""Shared fixtures for unit tests: fake AWS credentials and moto's in-process mock.

Creating a boto3 client costs 0.1-0.4 s, so one `mock_aws` and one set of cached clients
serve a whole test module; every test still starts from empty backends (`reset()`).
`pipeline.common.aws.client` is cleared when a module's mock starts and stops, so no
client ever outlives the mock it was created under.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws
from moto.core.models import MockAWS

from pipeline.common import aws


def fake_aws_environment(mp: pytest.MonkeyPatch) -> None:
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_SESSION_TOKEN", "testing")
    mp.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "PIPELINE_CLOCK_FILE"):
        mp.delenv(name, raising=False)


@pytest.fixture(scope="module")
def module_mock() -> Iterator[MockAWS]:
    with pytest.MonkeyPatch.context() as mp:
        fake_aws_environment(mp)
        aws.client.cache_clear()
        try:
            with mock_aws() as mock:
                yield mock
        finally:
            aws.client.cache_clear()


@pytest.fixture
def aws_mock(module_mock: MockAWS, monkeypatch: pytest.MonkeyPatch) -> MockAWS:
    """An active moto mock with empty backends, and the fake AWS environment."""
    fake_aws_environment(monkeypatch)
    module_mock.reset()
    return module_mock
