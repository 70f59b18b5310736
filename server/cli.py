"""The ``playground`` command: ``serve``, ``validate spec.json``, ``export spec.json``.

``validate`` and ``export`` need no server: they run the engine's own checks (the ones behind
``POST /api/validate`` and ``GET /api/models/{id}/code``) under the limits of the settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from models.codegen import to_python
from models.errors import SpecError
from server.errors import public
from server.jobs import resolve
from server.settings import Settings


def _read_spec(path: str) -> dict[str, Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            "invalid_json", f"{path} is not JSON: {exc.msg} at line {exc.lineno}."
        ) from None
    if isinstance(spec, dict) and "spec" in spec and "layers" not in spec:
        spec = spec["spec"]  # a request body or a saved model: the spec inside
    return spec


def _shape(shape: list[int]) -> str:
    return "×".join(str(s) for s in shape) or "scalar"


def validate(path: str) -> int:
    """Print the verdict on a spec in plain words; 0 when valid, 1 when not."""
    try:
        inference = resolve(_read_spec(path), Settings().limits())
    except SpecError as exc:
        where = f" (layer {exc.layer})" if exc.layer else ""
        print(f"Not valid{where}: {public(exc)['message']}")
        print(f"  error code: {exc.code}")
        return 1
    spec = inference.spec
    print(
        f"{spec.name} is valid: {len(inference.layers)} layers, "
        f"{inference.total_params:,} parameters, {inference.total_flops:,} FLOPs per forward pass."
    )
    width = max(len(f"{li.name} ({li.type})") for li in inference.layers)
    print(f"  {'layer (type)':<{width}}  {'output':<16} {'params':>12}")
    for li in inference.layers:
        label = f"{li.name} ({li.type})"
        print(f"  {label:<{width}}  {_shape(li.output_shape):<16} {li.params:>12,}")
    for warning in inference.warnings:
        print(f"  note: {warning}")
    return 0


def export(path: str) -> int:
    """Print the spec as a self-contained Python ``nn.Module`` class."""
    try:
        inference = resolve(_read_spec(path), Settings().limits())
    except SpecError as exc:
        where = f" (layer {exc.layer})" if exc.layer else ""
        print(f"Not valid{where}: {public(exc)['message']}", file=sys.stderr)
        return 1
    sys.stdout.write(to_python(inference.spec, inference))
    return 0


def serve(host: str | None, port: int | None) -> int:
    """Start the playground (uvicorn) with the PLAYGROUND_* settings."""
    from server.__main__ import main as serve_main

    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    serve_main(Settings(**overrides))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="playground", description="The PyTorch Model Playground.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="start the playground (PLAYGROUND_* settings apply)")
    s.add_argument("--host", help="default: PLAYGROUND_HOST or 127.0.0.1")
    s.add_argument("--port", type=int, help="default: PLAYGROUND_PORT or 8000")
    v = sub.add_parser("validate", help="check a spec (a JSON file, - for stdin)")
    v.add_argument("spec")
    e = sub.add_parser("export", help="print a spec as a PyTorch nn.Module class")
    e.add_argument("spec")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.host, args.port)
    try:
        return validate(args.spec) if args.command == "validate" else export(args.spec)
    except OSError as exc:
        print(f"Cannot read {args.spec}: {exc.strerror}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
