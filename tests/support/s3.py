"""A real S3 endpoint for the tests: moto's standalone server in a subprocess, on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests

from tests.support.server import end_process, free_port, wait_until

# moto accepts any credentials; Wharf and the test's own client find these as every AWS
# client does, in the environment.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "wharf-test",
    "AWS_SECRET_ACCESS_KEY": "wharf-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class MotoServer:
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or start again, on the same port) and wait until it answers."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **CREDENTIALS},
            )
        wait_until(self._answers, timeout=30)

    def stop(self) -> None:
        if self.process is None:
            return
        end_process(self.process)
        self.process = None

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"moto_server exited with {self.process.returncode}")
        try:
            return requests.get(f"{self.url}/moto-api/", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def client(self) -> Any:
        """A plain boto3 client, for tests to look into the bucket."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def new_bucket(self) -> str:
        name = f"wharf-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def multipart_uploads(self, bucket: str) -> list[dict[str, Any]]:
        listed = self.client().list_multipart_uploads(Bucket=bucket)
        return list(listed.get("Uploads", []))


@contextmanager
def running_moto(directory: Path) -> Iterator[MotoServer]:
    server = MotoServer(free_port(), directory / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def s3_args(moto: MotoServer, bucket: str, *extra: str) -> tuple[str, ...]:
    """`wharf serve` flags for blobs in `bucket` on `moto`."""
    return ("--storage", "s3", "--s3-bucket", bucket, "--s3-endpoint", moto.url, *extra)


@contextmanager
def aws_environment() -> Iterator[None]:
    """moto's credentials in this process's environment, for clients started from it."""
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
