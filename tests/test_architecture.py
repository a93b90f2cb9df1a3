"""The direction of imports: import-linter's contracts in pyproject.toml hold, and break on an
import against them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "cryptopredict", "db", "models", "store", "cluster", "training", "serving")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(REPOSITORY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        ("serving/inference/probe.py", "import training.train", "Packages"),
        ("store/probe.py", "import serving.api.app", "Packages"),
        ("models/probe.py", "import db.schema", "Packages"),
        ("config/probe.py", "import cryptopredict.cli", "Packages"),
        ("serving/inference/probe.py", "import serving.services.health", "Inside serving"),
        ("serving/services/probe.py", "import serving.api.deps", "Inside serving"),
        ("serving/lookups.py", "import serving.services.health", "What serving's layers share"),
        ("serving/schemas/probe.py", "import serving.inference", "What serving's layers share"),
    ],
)
def test_an_import_against_the_direction_breaks_a_contract(
    tmp_path: Path, module: str, statement: str, contract: str
) -> None:
    """On a copy of the packages, one import upwards added to a module (new or existing)."""
    for package in PACKAGES:
        shutil.copytree(
            REPOSITORY / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPOSITORY / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    existing = target.read_text() if target.exists() else ""
    target.write_text(f"{existing}\n{statement}\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout
