"""Bench: the OpenAPI fuzzing of tests/server/test_fuzz_openapi.py with 1,000 cases per operation.

The test suite sends 100 generated requests to every operation; this runs the same test
(same app settings, same checks: no 5xx, every answer as the schema documents it) with
``FUZZ_EXAMPLES`` cases per operation, in-process through the ASGI app (no network).

    python bench/fuzz_api.py [--examples 1000] [-k run]   # -k: a pytest selection

Not part of the test suite: about ten times the suite's minute on a 2-core machine.
Exit status: pytest's (0 when every operation passed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = ROOT / "tests" / "server" / "test_fuzz_openapi.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="cases per operation")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k expression")
    args = parser.parse_args()
    os.environ["FUZZ_EXAMPLES"] = str(args.examples)  # read by the test module on import
    import pytest

    argv = [str(TEST), "-q", "-p", "no:cacheprovider", "--durations=0", f"--rootdir={ROOT}"]
    if args.select:
        argv += ["-k", args.select]
    start = time.perf_counter()
    status = pytest.main(argv)
    print(f"{args.examples} cases per operation; {time.perf_counter() - start:.0f} s in all")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
