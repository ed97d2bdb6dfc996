"""A real S3 API (moto's server, on loopback) for the batch tests, and a fresh bucket per test."""

from __future__ import annotations

import logging
import uuid
from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_url: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def bucket(s3) -> str:
    """``s3://<fresh bucket>/runs``."""
    name = f"batch-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return f"s3://{name}/runs"
