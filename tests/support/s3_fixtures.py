"""The S3 fixtures (test modules name this module in `pytest_plugins`): one moto server for the
session, moto's credentials in the environment of the tests and of every Wharf they start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.s3 import MotoServer, aws_environment, running_moto


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with aws_environment(), running_moto(tmp_path_factory.mktemp("moto")) as server:
        yield server
