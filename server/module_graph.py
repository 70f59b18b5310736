"""The ES modules a page's entry imports, read from the modules themselves.

The playground serves them as one file (server/js_bundle.py); with ``?bundle=0`` it lists
them as ``<link rel="modulepreload">`` so that the browser fetches all of them at once,
instead of discovering them import by import (about 50 modules, several round trips deep).
The list is the import statements' own: a module added, renamed or dropped is preloaded as
it is imported, with no second list to keep in step. Only static imports count
(``import … from "./x.js"``, ``export … from``); ``import()`` loads on demand.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

# import/export ... from "./x.js" (across lines), and bare import "./x.js"
_IMPORT = re.compile(
    r"""^\s*(?:import|export)\s+(?:[^;"']*?\s+from\s+)?["'](\.{1,2}/[^"']+\.js)["']""",
    re.MULTILINE,
)


@cache
def module_graph(js_root: Path, entry: str) -> tuple[str, ...]:
    """``entry`` (a path under ``js_root``) and every module it imports, directly or not, as
    paths relative to ``js_root`` in the order first reached (breadth first)."""
    root = js_root.resolve()
    order: list[str] = []
    queue = [(root / entry).resolve()]
    seen = set(queue)
    while queue:
        path = queue.pop(0)
        order.append(path.relative_to(root).as_posix())
        for target in _IMPORT.findall(path.read_text(encoding="utf-8")):
            dep = (path.parent / target).resolve()
            if dep not in seen and dep.is_relative_to(root) and dep.is_file():
                seen.add(dep)
                queue.append(dep)
    return tuple(order)
