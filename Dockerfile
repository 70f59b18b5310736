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
# CPU or CUDA: one Dockerfile, the torch wheel decides. setup.sh installs torch==2.13.0, as
# pinned in pyproject.toml, from the index pip is given:
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

# The dependencies alone first, read from pyproject.toml, in the .venv that setup.sh makes
# (python3.11 -m venv .venv): a change of code then does not download torch again.
COPY pyproject.toml ./
RUN python3.11 -m venv .venv \
    && python3.11 -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > /tmp/requirements.txt \
    && .venv/bin/python -m pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project, installed by the README's own setup script (quick: everything is there).
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
