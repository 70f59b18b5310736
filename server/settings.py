"""All configuration, read once from PLAYGROUND_* environment variables.

Nothing else in the project reads ``os.environ``. The defaults keep a 2-core, 4 GB
machine alive while admitting every preset (the default nn.Transformer has 44 M
parameters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.datasets import DataRoots
from models.limits import Limits

MiB = 2**20
_LIMITS = Limits()  # the defaults of the cost limits live in models/limits.py


class Settings(BaseSettings):
    """The playground's settings; every field is also ``PLAYGROUND_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PLAYGROUND_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data_dir: Path = Path("data")
    # 1 by default: the playground serves many small models, where intra-op threads cost more
    # than they give (bench_http: encoding 12 LeNet maps took 9.7 ms with 2 threads, 1.3 ms
    # with 1 on a 2-core box). Raise it for one big model on a many-core machine.
    torch_threads: int = Field(1, ge=0, description="torch intra-op threads; 0: torch's default")
    workers: int = Field(
        1, ge=1, le=256, description="1: jobs run in the server's process; N: N worker processes"
    )
    worker: Literal["local", "ray"] = "local"  # ray: jobs on Ray actors (server/workers/ray_worker)
    ray_address: str = Field("auto", description="auto: a local Ray; else a cluster's address")
    ray_num_gpus: float = Field(1.0, gt=0, le=64, description="GPUs per Ray actor (fractions ok)")
    log_level: str = "info"
    # uvicorn's line per request: off by default, as a class sends hundreds a minute (and
    # writing each one cost 0.3 ms of the event loop per run in bench_http)
    access_log: bool = False
    # operations: log lines for collectors, Prometheus metrics (off unless asked for)
    log_format: Literal["text", "json"] = Field("text", description="json: one object a line")
    metrics: bool = Field(False, description="serve GET /metrics (Prometheus' text format)")
    metrics_token: str | None = Field(None, description="when set, /metrics needs it as Bearer")

    # costs of one model or one run, checked on the meta device before anything is allocated
    max_params: int = Field(_LIMITS.max_params, ge=1)
    max_activation_bytes: int = Field(_LIMITS.max_activation_bytes, ge=1)
    max_flops: int = Field(_LIMITS.max_flops, ge=1)
    max_layers: int = Field(_LIMITS.max_layers, ge=1)
    max_input_elements: int = Field(_LIMITS.max_input_elements, ge=1)
    max_sequence_length: int = Field(_LIMITS.max_sequence_length, ge=1)
    max_vocab: int = Field(_LIMITS.max_vocab, ge=1)
    max_image_pixels: int = Field(16_000_000, ge=1)
    max_display_elements: int = Field(65_536, ge=16, description="larger maps are downsampled")
    max_work: int = Field(
        _LIMITS.max_work, ge=1, description="estimated work of one forward (models/cost.py)"
    )
    job_timeout_s: float = Field(
        _LIMITS.job_timeout_s, gt=0, description="the most one job may run on the worker"
    )
    validate_timeout_s: float = Field(
        2.0, gt=0, description="time budget of one /api/validate (which needs no token)"
    )
    validate_queue_size: int = Field(
        4, ge=1, description="validations waiting for their own thread; then 503"
    )

    # requests and tenancy
    max_body_bytes: int = Field(8 * MiB, ge=1024, description="JSON request bodies")
    max_upload_bytes: int = Field(256 * MiB, ge=1024, description="safetensors uploads")
    max_models_per_workspace: int = Field(20, ge=1)
    max_workspaces: int = Field(1_000, ge=1)
    model_cache_bytes: int = Field(1024 * MiB, ge=1, description="live models kept in memory")
    max_json_depth: int = Field(
        64, ge=2, le=512, description="nesting of [ and { in a JSON body, checked before parsing"
    )
    max_concurrent_uploads: int = Field(2, ge=1, description="weights uploads at once; then 503")
    request_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="to send a request's headers, and again its whole body (uploads included); "
        "then 408 (a body) or the connection is closed (headers)",
    )

    # persistence
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/playground.db"
    )
    idle_unload_seconds: int = Field(900, ge=0, description="idle models leave memory; 0: never")
    workspace_ttl_days: int = Field(0, ge=0, description="delete unused workspaces; 0: never")

    # classroom: access and abuse
    access_code: str | None = Field(None, description="when set, creating a workspace needs it")
    job_queue_size: int = Field(64, ge=1, description="jobs waiting for the device; then 503")
    rate_limit_per_minute: int = Field(
        240, ge=0, description="expensive requests per client per minute; 0: unlimited"
    )
    validate_rate_limit_per_minute: int = Field(
        600, ge=0, description="POST /api/validate per client per minute; 0: unlimited"
    )
    cors_origins: list[str] = Field(default_factory=list, description="CORS is off when empty")
    max_safetensors_header_bytes: int = Field(1 * MiB, ge=1024)
    forwarded_allow_ips: str = Field(
        "",
        description="proxies whose X-Forwarded-For/-Proto are trusted (comma-separated IPs or "
        "networks, '*' for any); empty: none, each connection's own address counts",
    )
    healthz_versions: bool = Field(False, description="/healthz shows versions to anyone")

    # learning: datasets and trainings
    fashion_mnist_dir: Path = Field(
        Path("/usr/share/datasets/fashion-mnist"),
        description="Fashion-MNIST's gzipped IDX files (Debian: apt-get install "
        "dataset-fashion-mnist)",
    )
    max_trainings: int = Field(4, ge=1, description="trainings in progress on this server")
    max_train_flops: int = Field(
        _LIMITS.max_train_flops, ge=1, description="a training's steps × batch × FLOPs"
    )
    max_checkpoint_bytes: int = Field(
        _LIMITS.max_checkpoint_bytes, ge=1, description="a training's checkpoints together"
    )
    # a student's run waits behind at most one slice of a training (bench_train: 50 ms
    # slices cost LeNet-5 ~1 % of its steps per second)
    training_slice_ms: int = Field(50, ge=5, le=2000, description="a training's job length")
    # attribution (routers/attributions.py): IG steps, SmoothGrad samples, occlusion windows
    # and feature visualization steps are forward passes; passes × forward FLOPs is bounded too
    max_attribution_passes: int = Field(1_024, ge=1, description="forward passes per request")
    max_attribution_flops: int = Field(50 * 10**9, ge=1, description="passes × forward FLOPs")
    max_featvis_seconds: float = Field(10.0, gt=0, le=600, description="a visualization's time")

    def data_roots(self) -> DataRoots:
        return DataRoots(fashion_mnist_dir=self.fashion_mnist_dir)

    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'playground.db'}"

    def limits(self) -> Limits:
        return Limits(
            max_params=self.max_params,
            max_activation_bytes=self.max_activation_bytes,
            max_flops=self.max_flops,
            max_layers=self.max_layers,
            max_input_elements=self.max_input_elements,
            max_sequence_length=self.max_sequence_length,
            max_vocab=self.max_vocab,
            max_work=self.max_work,
            job_timeout_s=self.job_timeout_s,
            max_train_flops=self.max_train_flops,
            max_checkpoint_bytes=self.max_checkpoint_bytes,
        )
