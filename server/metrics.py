"""Prometheus metrics of one app (``PLAYGROUND_METRICS=true``; served by routers/metrics.py).

Each app has its own registry (tests make many apps). Counted as requests come: requests by
route template, method and status, and their latency; a run's latency; a worker job's
latency (from submission to result, the queue included). Read at each scrape: the worker's
queue depth, jobs done and refused, live models and their bytes, trainings running.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.state import AppState

LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RUN_ROUTE = "/api/models/{model_id}/run"


class Metrics:
    """The registry and the instruments of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "playground_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "playground_request_duration_seconds",
            "time to answer a request (until the response starts), by route template",
            ["route"],
            buckets=LATENCY,
            registry=self.registry,
        )
        self.runs = Histogram(
            "playground_run_duration_seconds",
            "time to answer POST /api/models/{id}/run",
            buckets=LATENCY,
            registry=self.registry,
        )
        self.jobs = Histogram(
            "playground_job_duration_seconds",
            "a worker job from submission to result, its wait in the queue included",
            buckets=LATENCY,
            registry=self.registry,
        )


class StateCollector(Collector):
    """Gauges and counters read from the worker and the trainings at each scrape."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        stats = self.state.worker.stats()
        yield GaugeMetricFamily(
            "playground_queue_depth", "worker jobs waiting or running", stats["jobs_queued"]
        )
        yield GaugeMetricFamily(
            "playground_queue_size",
            "jobs that may wait (PLAYGROUND_JOB_QUEUE_SIZE)",
            stats["queue_size"],
        )
        yield CounterMetricFamily(
            "playground_jobs_done", "worker jobs finished", stats["jobs_done"]
        )
        yield CounterMetricFamily(
            "playground_jobs_refused",
            "jobs refused with 503: the queue was full",
            stats["jobs_refused"],
        )
        yield GaugeMetricFamily(
            "playground_live_models", "models held in memory", stats["live_models"]
        )
        yield GaugeMetricFamily(
            "playground_live_model_bytes", "bytes held by the live models", stats["live_bytes"]
        )
        yield GaugeMetricFamily(
            "playground_trainings_running",
            "trainings in progress",
            len(self.state.trainings.drivers),
        )


class MetricsMiddleware:
    """Counts every HTTP request by the route it matched (its template, not its path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self._observe(scope, time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = self._route(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()

    @staticmethod
    def _route(scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return route.path
        return "/static" if scope["path"].startswith("/static/") else "unmatched"

    def _observe(self, scope: Scope, seconds: float) -> None:
        route = self._route(scope)
        self.metrics.latency.labels(route).observe(seconds)
        if route == RUN_ROUTE:
            self.metrics.runs.observe(seconds)


def install(app: FastAPI, state: AppState) -> Metrics:
    """Count requests and worker jobs of ``app``; its registry is ``app.state.metrics``."""
    metrics = Metrics()
    metrics.registry.register(StateCollector(state))
    # around Starlette's ServerErrorMiddleware: a bug's 500 and the rate limit's 429 count too
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: MetricsMiddleware(build(), metrics)  # type: ignore[method-assign]
    worker, submit = state.worker, state.worker.submit

    async def timed_call(*args: Any, **kwargs: Any) -> Any:  # every job goes through submit
        started = time.perf_counter()
        try:
            return await submit(*args, **kwargs)
        finally:
            metrics.jobs.observe(time.perf_counter() - started)

    worker.submit = timed_call  # type: ignore[method-assign]
    app.state.metrics = metrics
    return metrics
