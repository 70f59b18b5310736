"""The page's ES modules as one ES module, so that the browser makes one request, not ~50.

Measured (bench/bench_ui.py, cold cache, loopback, a loaded machine): the playground's 50
modules, preloaded with ``modulepreload``, arrived 0.65 s after navigation, over Chromium's
6 connections per host, while each request cost the server about 1.1 ms (a bare StaticFiles
0.85 ms): the request count is the cost, not the server. Here each module becomes a function scope,
evaluated in the order the browser evaluates modules (depth first along the import
statements, a module after its imports), and each import becomes a ``const`` taken from the
module object its source returned. No parser, so only the forms the modules use are taken,
and any other ``import``/``export`` at the start of a line is a :class:`BundleError` naming
the file and line, never a silently wrong bundle:

- ``import { a, b as c } from "./x.js";`` (on one line or several), ``import * as ns from
  "./x.js";`` and ``import "./x.js";``
- ``export function``/``async function``/``function*``/``class``/``const`` (one name per
  ``const``), and ``export { a, b as c };``

An import of a name its source does not export is refused too, so a form read wrongly (a
second name in one ``export const a = 1, b = 2``) shows as soon as anything imports it.

``export let``/``var`` are refused: an importer's copy would miss a later assignment, which
an ES import (a live binding) sees; a cycle of imports is refused for the same reason (its
modules would read each other's names before they are set). Modules are only ever read from
``static/js``: nothing from a user goes in.

The bundle is built at the first request and kept while none of its files changes (their
mtimes and sizes), so an edited module shows on the next load; its ETag is its SHA-256
(gzipped: with ``-gzip``).
``/playground?bundle=0`` serves the separate modules instead, for debugging.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path

_NAME = r"[A-Za-z_$][\w$]*"
# a static import at the start of a line, across lines up to its source
_IMPORT = re.compile(
    r"""^import\b\s*(?:(?P<clause>[^;"'`]*?)\s*from\s*)?"""
    r"""(?P<q>["'])(?P<src>[^"'\n]+)(?P=q)[ \t]*;?""",
    re.MULTILINE,
)
_EXPORT_DECL = re.compile(
    rf"^export\s+(?P<kind>(?:async\s+)?function\s*\*?|class|const|let|var)\s*(?P<name>{_NAME})",
    re.MULTILINE,
)
_EXPORT_LIST = re.compile(r"^export\s*\{(?P<names>[^}]*)\}(?!\s*from\b)[ \t]*;?", re.MULTILINE)
_LINE_START = re.compile(r"^(?:import(?!\s*[(.])|export)\b", re.MULTILINE)  # not import()
_ALIAS = re.compile(rf"^(?P<name>{_NAME})(?:\s+as\s+(?P<local>{_NAME}))?$")
_NS = re.compile(rf"^\*\s*as\s+(?P<local>{_NAME})$")


class BundleError(ValueError):
    """A module uses an import or export form the bundler does not take, or imports a name
    its source does not export, or the imports make a cycle."""


@dataclass(frozen=True)
class Bundle:
    """One bundle: its text, as UTF-8 and gzipped once, and its ETag."""

    body: bytes
    gzipped: bytes
    etag: str
    modules: tuple[str, ...]  # relative to the root, in evaluation order (the entry last)


@dataclass
class _Module:
    path: Path
    body: str  # the source with its imports removed and ``export`` dropped from declarations
    imports: list[tuple[Path, str | None, list[tuple[str, str]]]]  # source, ns, (name, local)
    exports: list[tuple[str, str]]  # (exported name, local name)


def _where(path: Path, text: str, pos: int) -> str:
    return f"{path.name} line {text.count(chr(10), 0, pos) + 1}"


def _parse(path: Path, root: Path) -> _Module:
    text = path.read_text(encoding="utf-8")
    imports: list[tuple[Path, str | None, list[tuple[str, str]]]] = []
    exports: list[tuple[str, str]] = []
    cuts: list[tuple[int, int, str]] = []  # (start, end, replacement) in the source
    for m in _IMPORT.finditer(text):
        src, clause = m["src"], (m["clause"] or "").strip()
        if not src.startswith(("./", "../")):
            raise BundleError(f"{_where(path, text, m.start())}: {src!r} is not a relative path")
        dep = (path.parent / src).resolve()
        if not dep.is_relative_to(root) or not dep.is_file():
            raise BundleError(f"{_where(path, text, m.start())}: no module {src!r}")
        ns, names = None, []
        if ns_match := _NS.match(clause):
            ns = ns_match["local"]
        elif clause.startswith("{") and clause.endswith("}"):
            for part in filter(None, (p.strip() for p in clause[1:-1].split(","))):
                alias = _ALIAS.match(re.sub(r"\s+", " ", part))
                if not alias:
                    raise BundleError(f"{_where(path, text, m.start())}: cannot read {part!r}")
                names.append((alias["name"], alias["local"] or alias["name"]))
        elif clause:
            raise BundleError(
                f"{_where(path, text, m.start())}: only `import {{ … }}`, `import * as` and "
                f'`import "…"` are bundled, not `import {clause} from`'
            )
        imports.append((dep, ns, names))
        cuts.append((m.start(), m.end(), "\n" * m.group().count("\n")))
    for m in _EXPORT_DECL.finditer(text):
        kind = m["kind"]
        if kind in ("let", "var"):
            raise BundleError(
                f"{_where(path, text, m.start())}: `export {kind}` is not bundled (importers "
                "would keep a copy, not a live binding): export a const or a function"
            )
        if kind == "const" and re.match(r"\s*=", text[m.end() :]) is None:
            raise BundleError(f"{_where(path, text, m.start())}: one name per `export const`")
        exports.append((m["name"], m["name"]))
        cuts.append((m.start(), m.start() + len("export"), ""))
    for m in _EXPORT_LIST.finditer(text):
        for part in filter(None, (p.strip() for p in m["names"].split(","))):
            alias = _ALIAS.match(re.sub(r"\s+", " ", part))
            if not alias:
                raise BundleError(f"{_where(path, text, m.start())}: cannot read {part!r}")
            exports.append((alias["local"] or alias["name"], alias["name"]))
        cuts.append((m.start(), m.end(), ""))
    taken = {start for start, _, _ in cuts}
    for m in _LINE_START.finditer(text):
        if m.start() not in taken:
            raise BundleError(
                f"{_where(path, text, m.start())}: an import or export form the bundler does "
                f"not take: {text[m.start() : text.find(chr(10), m.start())]!r}"
            )
    body, at = [], 0
    for start, end, repl in sorted(cuts):
        body += [text[at:start], repl]
        at = end
    body.append(text[at:])
    return _Module(path, "".join(body), imports, exports)


def _order(root: Path, entry: Path) -> list[_Module]:
    """The modules reached from ``entry``, each after its imports (as the browser evaluates
    them: depth first along the import statements in source order)."""
    done: dict[Path, _Module] = {}
    visiting: list[Path] = []

    def visit(path: Path) -> None:
        if path in done:
            return
        if path in visiting:
            cycle = [*visiting[visiting.index(path) :], path]
            names = " -> ".join(p.relative_to(root).as_posix() for p in cycle)
            raise BundleError(f"the imports make a cycle, which is not bundled: {names}")
        visiting.append(path)
        module = _parse(path, root)
        for dep, _, _ in module.imports:
            visit(dep)
        visiting.pop()
        done[path] = module

    visit(entry)
    return list(done.values())


def bundle_source(js_root: Path, entry: str) -> tuple[str, tuple[str, ...]]:
    """``entry`` (a path under ``js_root``) and every module it imports as one ES module's
    text, and the modules' paths in evaluation order."""
    root = js_root.resolve()
    modules = _order(root, (root / entry).resolve())
    var = {m.path: f"__pg_module_{i}" for i, m in enumerate(modules)}
    exported = {m.path: {name for name, _ in m.exports} for m in modules}
    rel = {m.path: m.path.relative_to(root).as_posix() for m in modules}
    out = [f"// {entry} and the {len(modules) - 1} modules it imports, as one module "]
    out[0] += "(server/js_bundle.py); /playground?bundle=0 serves them one by one\n"
    for m in modules:
        lines = []
        for dep, ns, names in m.imports:
            if ns:
                lines.append(f"const {ns} = {var[dep]};")
            for name, _ in names:
                if name not in exported[dep]:
                    raise BundleError(
                        f"{rel[m.path]} imports {name!r}, which {rel[dep]} does not export"
                    )
            if names:
                taken = ", ".join(n if n == loc else f"{n}: {loc}" for n, loc in names)
                lines.append(f"const {{ {taken} }} = {var[dep]};")
        fields = ", ".join(n if n == loc else f"{n}: {loc}" for n, loc in sorted(m.exports))
        out.append(
            f"// ---- {rel[m.path]}\nconst {var[m.path]} = (() => {{\n"
            + "".join(line + "\n" for line in lines)
            + m.body.rstrip("\n")
            + f"\nreturn Object.freeze({{ __proto__: null{', ' if fields else ''}{fields} }});\n"
            + "})();\n"
        )
    entry_exports = sorted(modules[-1].exports)
    if entry_exports:
        names = ", ".join(name for name, _ in entry_exports)
        out.append(f"export const {{ {names} }} = {var[modules[-1].path]};\n")
    return "".join(out), tuple(rel[m.path] for m in modules)


class BundleCache:
    """One entry's bundle, built at the first request and again once one of its files
    changes (mtime or size)."""

    def __init__(self, js_root: Path, entry: str) -> None:
        self.js_root = js_root.resolve()
        self.entry = entry
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._bundle: Bundle | None = None

    def _stamp(self, modules: tuple[str, ...]) -> tuple:
        stats = [(self.js_root / m).stat() for m in modules]
        return tuple((m, s.st_mtime_ns, s.st_size) for m, s in zip(modules, stats, strict=True))

    def get(self) -> Bundle:
        """The bundle of the files as they are now."""
        with self._lock:
            if self._bundle is not None:
                try:
                    if self._stamp(self._bundle.modules) == self._key:
                        return self._bundle
                except FileNotFoundError:
                    pass  # a module went: build again
            text, modules = bundle_source(self.js_root, self.entry)
            body = text.encode("utf-8")
            self._key = self._stamp(modules)
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            self._bundle = Bundle(body, gzip.compress(body, 9, mtime=0), etag, modules)
            return self._bundle
