"""Tests run on the settings they state, never on the developer's LOOKALIKE_* shell."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.config import Settings

REPO = Path(__file__).resolve().parents[1]


def test_settings_ignore_the_developers_environment() -> None:
    assert "LOOKALIKE_THREADS" not in os.environ
    assert Settings(_env_file=None).threads != 7


def test_a_developers_setting_does_not_reach_the_tests() -> None:
    probe = f"{Path(__file__).relative_to(REPO)}::test_settings_ignore_the_developers_environment"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", probe],
        cwd=REPO,
        env={**os.environ, "LOOKALIKE_THREADS": "7"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_colour_and_texture_shares_fit_in_one() -> None:
    with pytest.raises(ValueError, match="together at most 1"):
        Settings(color_weight=0.7, texture_weight=0.6, _env_file=None)
    assert Settings(color_weight=0.5, texture_weight=0.5, _env_file=None).texture_weight == 0.5
