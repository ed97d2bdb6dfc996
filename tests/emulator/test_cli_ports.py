"""``tiered-router emulator --port``: a port outside 0-65535 is a usage error, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("port, bound", [("99999", "less than or equal to 65535"), ("65536", "less than or equal"),
                                         ("-1", "greater than or equal to 0")])
def test_a_port_out_of_range_is_a_one_line_usage_error(port, bound):
    # a subprocess with a timeout: were the port taken, the emulator would serve until killed
    done = subprocess.run([sys.executable, "-m", "langchain_tiered_router.cli", "emulator", "--port", port],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""  # no URL: nothing listened
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Invalid value for '--port'" in lines[0] and bound in lines[0], done.stderr


def test_the_help_gives_the_range():
    done = subprocess.run([sys.executable, "-m", "langchain_tiered_router.cli", "emulator", "--help"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0 and "0-65535" in done.stdout, done.stdout


@pytest.mark.parametrize("port, said", [("99999", "99999 is not a port (0-65535)"), ("http", "not a port number")])
def test_the_module_entry_point_refuses_a_bad_port_as_a_usage_error(port, said):
    done = subprocess.run([sys.executable, "-m", "langchain_tiered_router.emulator", "--port", port],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr and said in done.stderr, done.stderr
    assert done.stdout == ""
