"""Bench: the OpenAPI fuzzing of tests/server/test_fuzz_openapi.py, deep.

In-process (the default): the suite's hypothesis fuzz with ``--examples`` cases per operation
(the suite runs 100), through the ASGI app.

Live (``--live``): the suite's ``test_live_server``, schemathesis' own runner against the app
under uvicorn on 127.0.0.1 with the examples, coverage, fuzzing and stateful phases and every
check, ``--examples`` cases per operation and phase (the suite runs 5). Its JSON report and
output are kept in ``--report-dir``; the case count is printed.

    python bench/fuzz_api.py [--examples 1000] [-k run]          # -k: a pytest selection
    python bench/fuzz_api.py --live [--examples 1000] [--seed 0] [--report-dir DIR]

Not part of the test suite: the in-process 1,000 takes about ten times the suite's minute on
a 2-core machine. Exit status: pytest's (0 when every operation passed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = ROOT / "tests" / "server" / "test_fuzz_openapi.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="cases per operation")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k expression")
    parser.add_argument("--live", action="store_true", help="schemathesis against uvicorn")
    parser.add_argument("--seed", type=int, default=0, help="--live: schemathesis' seed")
    parser.add_argument(
        "--report-dir", type=Path, default=Path(tempfile.gettempdir()) / "playground-fuzz"
    )
    args = parser.parse_args()
    # read by the test module on import
    os.environ["FUZZ_LIVE_EXAMPLES" if args.live else "FUZZ_EXAMPLES"] = str(args.examples)
    os.environ["FUZZ_LIVE_SEED"] = str(args.seed)
    sys.path.insert(0, str(ROOT))  # this checkout's server/ and models/, as pytest -m would
    import pytest

    argv = [str(TEST), "-q", "-p", "no:cacheprovider", "--durations=0", f"--rootdir={ROOT}"]
    if args.live:
        argv += ["-k", "test_live_server", f"--basetemp={args.report_dir}", "-s"]
    elif args.select:
        argv += ["-k", args.select]
    start = time.perf_counter()
    status = pytest.main(argv)
    seconds = time.perf_counter() - start
    if args.live:
        for report in sorted(args.report_dir.rglob("json-*.json")):
            data = json.loads(report.read_text())
            cases = data["test_cases"]["generated"]
            print(f"{report}: {cases} cases, {len(data['failures'])} failure kinds")
    print(f"{args.examples} cases per operation; {seconds:.0f} s in all")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
