"""The code passes ruff (pyflakes, isort, bugbear; the rules in pyproject.toml), so CI lints with every test run."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_passes():
    cmd = [sys.executable, "-m", "ruff"] if shutil.which("ruff") is None else ["ruff"]
    proc = subprocess.run([*cmd, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "No module named ruff" not in proc.stderr, "ruff is missing: pip install -r requirements-dev.txt"
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
