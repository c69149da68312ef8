"""The code stays ruff-clean (lint and format), checked in every CI run rather than by memory."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.server import PROJECT


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff_is_clean(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
