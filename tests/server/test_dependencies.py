"""pyproject.toml's dependencies: everything imported is declared, every bound is a tested
one (the lowest versions installed into a fresh venv pass a set of the tests), and the image's
requirements.lock pins every package within those bounds.

The lowest-versions run (``scripts/deps.py check-lowest``) downloads the old wheels from the
package index the first time (about 100 MB besides torch; pip's cache after that), installs
them into a fresh venv (about a minute) and runs ``deps.SMOKE`` there (4 to 10 minutes on two
busy cores): it is marked slow and runs with the rest of the suite.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from server.db import DriverMissing, make_engine

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("deps", ROOT / "scripts" / "deps.py")
deps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deps)

FIRST_PARTY = {"models", "server"}


def declared() -> dict[str, Requirement]:
    """What a user may install (dependencies and extras but "test"), by canonical name."""
    return {canonicalize_name(r.name): r for r in map(Requirement, deps.requirements())}


def locked() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in deps.LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==" and not req.extras and not req.marker, line
        name = canonicalize_name(req.name)
        assert name not in pins, f"{name} twice in the lock"
        pins[name] = Version(spec.version)
    return pins


def imported_distributions() -> dict[str, set[str]]:
    """Distributions whose modules models/ and server/ import (even inside functions),
    each with the files that import it."""
    providers = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "models").rglob("*.py")) + sorted((ROOT / "server").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in FIRST_PARTY:
                    continue
                assert top in providers, f"{path}: {module} is not installed here"
                for dist in providers[top]:
                    found.setdefault(canonicalize_name(dist), set()).add(
                        str(path.relative_to(ROOT))
                    )
    return found


# -- what pyproject.toml declares ------------------------------------------------------------
def test_every_imported_package_is_declared():
    found = imported_distributions()
    # the scan sees the direct imports, lazy ones too (sklearn: scikit-learn's modules)
    assert {"torch", "starlette", "pydantic-core", "captum", "scikit-learn"} <= set(found)
    missing = {dist: files for dist, files in found.items() if dist not in declared()}
    assert missing == {}, f"imported but not in pyproject.toml's dependencies: {missing}"


def test_the_postgres_driver_is_an_extra_that_the_tests_install():
    project = deps.pyproject()
    base = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert "psycopg" not in base
    (driver,) = map(Requirement, project["optional-dependencies"]["postgres"])
    assert driver.name == "psycopg" and driver.extras == {"binary"}
    assert f"{project['name']}[postgres]" in project["optional-dependencies"]["test"]


def test_a_postgres_url_without_the_driver_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg fails, as uninstalled
    with pytest.raises(DriverMissing) as err:
        make_engine("postgresql+psycopg://teacher@db.example/playground")
    assert "pip install 'pytorch-model-playground[postgres]'" in str(err.value)
    assert "postgresql+psycopg" in str(err.value) and "(psycopg)" in str(err.value)


def test_every_requirement_has_the_lower_bound_that_check_lowest_installs():
    project = deps.pyproject()
    everything = list(project["dependencies"])
    for reqs in project["optional-dependencies"].values():
        everything += [r for r in reqs if not r.startswith(project["name"])]
    for text in everything:
        req = Requirement(text)
        floors = [s for s in req.specifier if s.operator in (">=", "==")]
        assert len(floors) == 1, f"{text}: one lower bound (>=) or a pin (==)"
        assert deps.parse(text)[3] == floors[0].version
    lowest = {canonicalize_name(Requirement(p).name): p for p in deps.lowest()}
    assert set(lowest) == set(declared()) | {"pytest"}
    for name, req in declared().items():
        version = Requirement(lowest[name]).specifier
        (pin,) = version
        assert req.specifier.contains(pin.version, prereleases=True)


def test_a_requirement_without_a_lower_bound_is_refused():
    for text in ("numpy", "numpy<3", "numpy>1.26", "numpy~=1.26"):
        with pytest.raises(ValueError, match="give it a lower bound"):
            deps.parse(text)
    assert deps.parse("psycopg[binary]>=3.1.4") == ("psycopg", "binary", ">=", "3.1.4")
    assert deps.parse("numpy>=1.26,<3") == ("numpy", "", ">=", "1.26")


# -- the image's lock file -------------------------------------------------------------------
def test_the_lock_pins_every_requirement_within_its_bounds():
    pins = locked()
    for name, req in declared().items():
        assert name in pins, f"{name} is not in requirements.lock: run python scripts/deps.py lock"
        assert req.specifier.contains(pins[name], prereleases=True), (str(req), pins[name])
    assert "pytest" not in pins and "ruff" not in pins  # the test tools stay out of the image


def test_the_lock_holds_what_the_requirements_pull_in_and_nothing_else():
    """The closure of the requirements, read from the installed packages' metadata (this
    environment runs the suite with the lock's versions; a package here at another version
    is not followed, and then only the inclusion is checked)."""
    pins = locked()
    env = default_environment()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in declared().values()]
    needed: set[str] = set()
    unfollowed: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        needed.add(name)
        assert name in pins, f"{name} is needed but not in requirements.lock"
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            unfollowed.add(name)
            continue
        if Version(dist.version).public != pins[name].public:
            unfollowed.add(name)
            continue
        for text in dist.requires or []:
            req = Requirement(text)
            markers = [{**env, "extra": e} for e in extras | {""}]
            if req.marker is None or any(req.marker.evaluate(m) for m in markers):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    if not unfollowed:
        assert set(pins) == needed, f"in requirements.lock but not needed: {set(pins) - needed}"


def test_the_image_installs_the_lock_before_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    install = "pip install -r requirements.lock"
    assert "COPY requirements.lock ./" in dockerfile and install in dockerfile
    assert dockerfile.index(install) < dockerfile.index("RUN bash scripts/setup.sh")
    assert "COPY pyproject.toml" not in dockerfile  # the lock, not a range, decides versions
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "requirements.lock" not in ignored and "*.lock" not in ignored


# -- the lowest versions, installed and tested -----------------------------------------------
@pytest.mark.slow
def test_the_lowest_allowed_versions_pass_the_smoke_tests(tmp_path):
    venv = tmp_path / "lowest"
    try:
        done = subprocess.run(
            [sys.executable, ROOT / "scripts" / "deps.py", "check-lowest", venv],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
        installed = subprocess.run(
            [venv / "bin" / "python", "-m", "pip", "freeze"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # about 1 GB, torch included
    versions = {canonicalize_name(r.name): r for r in map(Requirement, installed.split())}
    for pin in map(Requirement, deps.lowest()):
        (spec,) = versions[canonicalize_name(pin.name)].specifier
        assert pin.specifier.contains(Version(spec.version).public), (str(pin), spec.version)
