"""scripts/setup.sh installs on a fresh clone and skips pip when pyproject.toml is unchanged.

The script runs for real in a copy of the project's layout whose ``.venv/bin/python`` is a
stand-in that records its arguments (no package is installed).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def clone(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/setup.sh", tmp_path / "scripts/setup.sh")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    python = tmp_path / ".venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$*" >> "$(dirname "$0")/../../calls.log"\n')
    python.chmod(0o755)
    return tmp_path


def setup(project: Path, *args: str) -> list[str]:
    """Run setup.sh; the pip commands it ran."""
    log = project / "calls.log"
    log.unlink(missing_ok=True)
    subprocess.run(["bash", "scripts/setup.sh", *args], cwd=project, check=True, timeout=60)
    return log.read_text().splitlines() if log.exists() else []


def test_a_fresh_clone_installs_everything_and_a_set_up_one_skips_pip(tmp_path):
    project = clone(tmp_path)
    assert setup(project) == [
        "-m pip install --quiet --upgrade pip",
        "-m pip install --quiet -e .",
    ]
    assert setup(project) == []  # nothing changed: no pip at all


def test_a_changed_pyproject_or_the_test_extras_install_again(tmp_path):
    project = clone(tmp_path)
    setup(project)
    assert setup(project, "test")[-1] == "-m pip install --quiet -e .[test]"
    assert setup(project, "test") == []
    assert setup(project) == []  # the test install holds the plain one
    with (project / "pyproject.toml").open("a") as f:
        f.write('version = "2"\n')
    assert setup(project)[-1] == "-m pip install --quiet -e ."


def test_a_failed_install_leaves_no_stamp(tmp_path):
    project = clone(tmp_path)
    python = project / ".venv/bin/python"
    python.write_text("#!/bin/sh\nexit 1\n")
    r = subprocess.run(["bash", "scripts/setup.sh"], cwd=project, timeout=60, check=False)
    assert r.returncode != 0
    assert not (project / ".venv/.installed").exists()
