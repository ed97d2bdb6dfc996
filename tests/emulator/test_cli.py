"""``python -m langchain_tiered_router.emulator`` as a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]


def test_cli_serves_until_terminated(tmp_path: Path) -> None:
    script = tmp_path / "script.yaml"
    script.write_text('models:\n  amazon.nova-micro-v1:0:\n    default: "from the CLI"\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "langchain_tiered_router.emulator", "--script", str(script), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), process.stderr.read() if process.poll() is not None else url
        client = boto3.client("bedrock-runtime", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test",
                              config=Config(retries={"max_attempts": 0}))
        reply = client.converse(modelId="amazon.nova-micro-v1:0",
                                messages=[{"role": "user", "content": [{"text": "hi"}]}])
        assert reply["output"]["message"]["content"] == [{"text": "from the CLI"}]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
