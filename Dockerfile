# The PyTorch Model Playground for a classroom: one container, its data on the /data volume.
#
#   docker compose up -d --build          (see docker-compose.yml and the README's
#                                          "Classroom deployment")
#   docker build -t pytorch-model-playground .
#   docker run -d -p 8000:8000 -v playground-data:/data pytorch-model-playground
#
# The image installs and starts the playground exactly as the README does: it runs
# `bash scripts/setup.sh` (a .venv with the project installed) and starts with the last line
# of `scripts/serve.sh`, `.venv/bin/python -m server`. Settings are PLAYGROUND_* variables.
#
# CPU or CUDA: one Dockerfile, the torch wheel decides. The lock pins torch==2.13.0, as
# pyproject.toml does, and pip takes it from the index it is given:
# - By default (PyPI), torch's Linux x86_64 wheel is the CUDA build: it brings NVIDIA's CUDA
#   libraries as pip packages (a few GB). The image runs on the CPU anywhere, and on a GPU
#   when the container is given one (the GPU lines of docker-compose.yml, or docker run
#   --gpus all). The host needs only NVIDIA's driver and container toolkit: the wheel carries
#   its CUDA runtime, so no nvidia/cuda base image (another ~2 GB, and its Python is not
#   3.11) is needed.
# - For a small CPU-only image (torch a few hundred MB), pass PyTorch's CPU wheel index:
#   --build-arg PIP_EXTRA_INDEX_URL=<the index that pytorch.org's install selector gives
#   for Pip, Linux, CPU>. pip then takes the 2.13.0+cpu wheel, which satisfies the same pin.

FROM python:3.11-slim-bookworm

# Extra package index for pip (empty: PyPI only); see above for CPU-only torch.
ARG PIP_EXTRA_INDEX_URL=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/app/.venv/bin:${PATH}"

WORKDIR /app

# The dependencies alone first, every one at the version requirements.lock pins (written by
# `python scripts/deps.py lock` from pyproject.toml), in the .venv that setup.sh makes
# (python3.11 -m venv .venv): two builds install the same versions, and a change of code
# does not download torch again. The lock holds the base dependencies and the extras but
# "test" (psycopg for PLAYGROUND_DATABASE_URL=postgresql+psycopg://...).
COPY requirements.lock ./
RUN python3.11 -m venv .venv \
    && .venv/bin/python -m pip install -r requirements.lock

# Then the project, installed by the README's own setup script (quick: every dependency is
# there, so pip adds only the project itself).
COPY . .
RUN bash scripts/setup.sh \
    && .venv/bin/python -m compileall -q models server

# Run as a user without rights on the code; it owns only the data directory.
RUN groupadd --system --gid 10001 playground \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/playground \
        --shell /usr/sbin/nologin playground \
    && mkdir -p /data \
    && chown 10001:10001 /data
VOLUME ["/data"]

ENV PLAYGROUND_HOST=0.0.0.0 \
    PLAYGROUND_PORT=8000 \
    PLAYGROUND_DATA_DIR=/data

USER 10001:10001
EXPOSE 8000

# Liveness without curl: Python's urllib (a non-2xx answer or no answer exits non-zero).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/app/.venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PLAYGROUND_PORT', '8000') + '/healthz', timeout=4)"]

# The same start command as scripts/serve.sh (which also runs setup.sh, done above).
CMD ["/app/.venv/bin/python", "-m", "server"]
