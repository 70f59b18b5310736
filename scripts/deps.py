"""The dependencies: their lower bounds, put to the tests, and the image's lock file.

    python scripts/deps.py lowest              # name==lowest, one a line (a pip constraints file)
    python scripts/deps.py check-lowest VENV   # make VENV, install the lowest, run SMOKE there
    python scripts/deps.py lock                # write requirements.lock (what the image installs)

Every dependency (the base list and every extra but ``test``) is pinned to its lower bound
with a constraints file; what they pull in themselves pip resolves freely, as it would for a
user. ``pytest`` comes at its own lower bound to run SMOKE, real test files run from this
checkout (``python -m pytest`` puts the checkout first on sys.path, so nothing is built): the
app imported, models created and run against torch, weights as safetensors, a training
followed with tqdm, figures with plotly, the store on SQLite and (with ``initdb``) PostgreSQL
through psycopg, /metrics, Captum's attributions. tests/server/test_dependencies.py runs
``check-lowest`` in the test suite; wheels come from pip's cache after the first run.

``lock`` installs the newest versions pyproject.toml allows (the base list and every extra
but ``test``) into a fresh venv and writes ``pip freeze`` to requirements.lock: every package,
pulled in ones too, at one version. Local version labels are dropped (``torch==2.13.0``
takes the ``+cpu`` wheel from PyTorch's CPU index and the CUDA one from PyPI; the CUDA
wheel pins NVIDIA's libraries itself).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A requirement as pyproject.toml writes them: name, extras, then ">=lowest" or "==pin",
# maybe with an upper bound after a comma.
REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(?P<extras>[^\]]+)\])?"
    r"(?P<op>>=|==)(?P<version>[0-9][0-9A-Za-z.+]*)(?:,<[0-9][0-9A-Za-z.]*)?$"
)
# The test files run against the lowest versions (4 to 10 minutes on two busy cores).
SMOKE = [
    "tests/models/test_build.py",
    "tests/models/test_training.py",
    "tests/server/test_runs.py",
    "tests/server/test_store.py",
    "tests/server/test_metrics.py",
    "tests/server/test_attributions.py",
    "tests/server/test_client.py",
]
SMOKE_TOOLS = ["pytest"]  # from the test extra, at their lower bounds too
# Warnings the smoke run lets pass (the suite makes every warning an error): each comes from
# one old package meeting a newer one that pip picked for it, in code the app does not run.
SMOKE_IGNORE = [
    # starlette < 1.x's TestClient (tests only) names anyio's old alias; anyio >= 4.13 warns
    "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning",
]
# The smoke run checks versions, not speed: /api/validate's 2 s budget (a guard for a route
# without a token) is missed on a loaded machine by the newest versions too.
SMOKE_ENV = {"PLAYGROUND_VALIDATE_TIMEOUT_S": "60"}
LOCK = ROOT / "requirements.lock"
LOCK_HEADER = """\
# The image's dependencies, every one pinned (Dockerfile: pip install -r requirements.lock).
# Written by `python scripts/deps.py lock` from pyproject.toml's dependencies and extras
# (all but "test"); tests/server/test_dependencies.py checks that it agrees with them.
"""


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def parse(requirement: str) -> tuple[str, str, str, str]:
    """(name, extras, op, version) of one requirement; ValueError when it has no lower bound."""
    found = REQUIREMENT.match(requirement.split(";")[0].replace(" ", ""))
    if found is None:
        raise ValueError(f"{requirement!r}: give it a lower bound (name>=version) or a pin")
    return found["name"], found["extras"] or "", found["op"], found["version"]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements() -> list[str]:
    """What a user may install: the dependencies and every extra but the test tools."""
    project = pyproject()
    found = list(project["dependencies"])
    for extra, reqs in project.get("optional-dependencies", {}).items():
        if extra != "test":
            found += [r for r in reqs if not r.startswith(project["name"])]
    return found


def tools() -> list[str]:
    """SMOKE_TOOLS as the test extra requires them."""
    project = pyproject()
    test = project["optional-dependencies"]["test"]
    own = [r for r in test if not r.startswith(project["name"])]
    return [r for r in own if normalized(parse(r)[0]) in SMOKE_TOOLS]


def lowest() -> list[str]:
    """``name==lowest`` for every requirement and SMOKE_TOOLS (as pyproject.toml spells it)."""
    pins = {}
    for requirement in requirements() + tools():
        name, _, _, version = parse(requirement)
        pins[normalized(name)] = f"{name}=={version}"
    return sorted(pins.values(), key=str.lower)


def run(*cmd: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def venv_python(venv: Path) -> Path:
    if not (venv / "bin" / "python").exists():
        run(sys.executable, "-m", "venv", venv)
    return venv / "bin" / "python"


def pip_install(python: Path, *args: str | Path) -> None:
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args)


def check_lowest(venv: Path) -> int:
    """Make ``venv``, install the lowest versions, run SMOKE there; pytest's exit status."""
    python = venv_python(venv)
    pins = venv / "lowest.txt"
    pins.write_text("\n".join(lowest()) + "\n")
    pip_install(python, "-c", pins, *requirements(), *tools())
    warnings = [f"-W{w}" for w in SMOKE_IGNORE]
    smoke = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *warnings, *SMOKE]
    env = {**os.environ, **SMOKE_ENV}
    return subprocess.run([str(c) for c in smoke], cwd=ROOT, env=env, check=False).returncode


def lock(venv: Path) -> str:
    """requirements.lock's text: pip freeze of a fresh ``venv`` with the newest allowed."""
    python = venv_python(venv)
    pip_install(python, *requirements())
    # --all: setuptools too (torch needs it at run time); pip itself is the venv's
    frozen = run(python, "-m", "pip", "freeze", "--all", capture_output=True, text=True).stdout
    pins = {line.split("+")[0] for line in frozen.split() if not line.startswith("pip==")}
    return LOCK_HEADER + "\n".join(sorted(pins, key=str.lower)) + "\n"


def main(argv: list[str]) -> int:
    if argv == ["lowest"]:
        print("\n".join(lowest()))
        return 0
    if argv[:1] == ["check-lowest"] and len(argv) == 2:
        return check_lowest(Path(argv[1]).resolve())
    if argv == ["lock"]:
        with tempfile.TemporaryDirectory() as tmp:
            LOCK.write_text(lock(Path(tmp) / "venv"))
        print(f"wrote {LOCK.relative_to(ROOT)}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
