"""server/js_bundle.py: the page's ES modules as one module, and its route.

Node (when installed) is the oracle: a module imported from the bundle has the same exports
(names, kinds, values, functions' source) as the module imported by itself, and the modules
run in the same order. The browser suite then runs on the bundled page."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from server.js_bundle import BundleCache, BundleError, bundle_source
from server.module_graph import module_graph

JS = Path(__file__).resolve().parents[2] / "static" / "js"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")

# every form the bundler takes; each module logs when it runs, to check the order
FIXTURE = {
    "entry.js": """import { twice, NAME as name } from "./lib/math.js";
import * as words from "./words.js";
import "./side.js";
import {
  Counter,
  later,
} from "./lib/math.js";
globalThis.ran.push("entry");
export const result = twice(21) + name + words.hello() + new Counter().n;
export async function more() { return (await later()) + 1; }
""",
    "lib/math.js": """import { hello as hi } from "../words.js";
globalThis.ran.push("math");
export const NAME =
  "math";
export function twice(x) { return 2 * x; }
export async function later() { return 41; }
export function* count() { yield 1; }
export class Counter { constructor() { this.n = hi().length; } }
const hidden = 7, shown = 8;
export { shown, hidden as seven };
""",
    "words.js": """globalThis.ran.push("words");
export function hello() { return "hello"; }
// export is a word a comment may hold; so is import
""",
    "side.js": """globalThis.ran.push("side");
""",
}

# a module's exports as Node sees them: kind, and source or value
DESCRIBE = """
import { pathToFileURL } from "node:url";
globalThis.ran = [];
const ns = await import(pathToFileURL(process.argv[2]).href);
const out = {};
for (const [k, v] of Object.entries(ns)) {
  out[k] = [typeof v, typeof v === "function" ? String(v) : JSON.stringify(v)];
}
console.log(JSON.stringify({ exports: out, ran: globalThis.ran }));
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "package.json").write_text('{"type": "module"}')  # .js files are ES modules
    return root


def describe(module: Path) -> dict:
    script = module.parent / "describe_exports.mjs"
    script.write_text(DESCRIBE)
    done = subprocess.run(
        [NODE, str(script), str(module)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def bundled(root: Path, entry: str, out: Path) -> Path:
    text, _ = bundle_source(root, entry)
    out.mkdir(exist_ok=True)
    (out / "package.json").write_text('{"type": "module"}')
    path = out / entry.replace("/", "__")
    path.write_text(text, encoding="utf-8")
    return path


def test_the_modules_in_evaluation_order(tmp_path):
    root = write(tmp_path / "js", FIXTURE)
    text, modules = bundle_source(root, "entry.js")
    assert modules == ("words.js", "lib/math.js", "side.js", "entry.js")
    starts = [line for line in text.splitlines() if line.startswith(("import", "export"))]
    assert starts == ["export const { more, result } = __pg_module_3;"]
    assert "const { hello: hi } = __pg_module_0;" in text
    assert "const words = __pg_module_0;" in text
    assert "const { twice, NAME: name } = __pg_module_1;" in text
    assert "const { Counter, later } = __pg_module_1;" in text
    assert "export const { more, result } = __pg_module_3;" in text


@needs_node
def test_the_bundle_exports_what_the_modules_export(tmp_path):
    root = write(tmp_path / "js", FIXTURE)
    for entry in ("entry.js", "lib/math.js", "words.js"):
        alone = describe(root / entry)
        together = describe(bundled(root, entry, tmp_path / "out"))
        assert together == alone, entry
    assert describe(root / "entry.js")["ran"] == ["words", "math", "side", "entry"]
    assert set(describe(root / "lib/math.js")["exports"]) == {
        "NAME", "twice", "later", "count", "Counter", "shown", "seven"
    }  # fmt: skip


@needs_node
def test_every_page_module_bundled_exports_what_it_exports(tmp_path):
    """Each of the playground's modules (its entry aside: it starts the page, which needs a
    document) bundled with its imports, against itself, in Node."""
    root = tmp_path / "js"
    shutil.copytree(JS, root)
    (root / "package.json").write_text('{"type": "module"}')
    modules = module_graph(JS, "playground.js")
    assert len(modules) > 40
    out = tmp_path / "out"
    for module in modules[1:]:
        assert describe(bundled(root, module, out)) == describe(root / module), module


def test_the_page_bundle_holds_every_module_once():
    text, modules = bundle_source(JS, "playground.js")
    assert sorted(modules) == sorted(module_graph(JS, "playground.js"))
    assert modules[-1] == "playground.js"
    assert text.count("const __pg_module_") == len(modules)


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ('import x from "./b.js";', "not `import x from`"),
        ('import { c } from "./d.js";', "imports 'c', which d.js does not export"),
        ('import { a } from "b.js";', "not a relative path"),
        ('import { a } from "./nowhere.js";', "no module './nowhere.js'"),
        ('import { missing } from "./b.js";', "imports 'missing', which b.js does not export"),
        ("export let n = 1;", "`export let` is not bundled"),
        ("export var n = 1;", "`export var` is not bundled"),
        ("export default 1;", "not take: 'export default 1;'"),
        ('export { b } from "./b.js";', "not take"),
        ("export const { d } = {};", "not take: 'export const { d } = {};'"),
        ('import { b } from "./c.js";', "cycle, which is not bundled: a.js -> c.js -> a.js"),
    ],
)
def test_forms_it_does_not_take_are_refused(tmp_path, source, says):
    files = {"a.js": source + "\n", "b.js": "export const b = 1;\n", "c.js": 'import "./a.js";\n'}
    files["d.js"] = "export const d = 1, c = 2;\n"  # a second name the bundler does not see
    with pytest.raises(BundleError, match=r"a\.js|d\.js") as err:
        bundle_source(write(tmp_path, files), "a.js")
    assert says in str(err.value)


def test_the_cache_rebuilds_when_a_file_changes(tmp_path):
    root = write(tmp_path, FIXTURE)
    cache = BundleCache(root, "entry.js")
    first = cache.get()
    assert cache.get() is first  # nothing changed: the same bytes, not built again
    assert gzip.decompress(first.gzipped) == first.body
    math = root / "lib" / "math.js"
    math.write_text(math.read_text().replace("2 * x", "3 * x"))
    os.utime(math, ns=(1, 1))  # a new mtime even on a coarse clock
    second = cache.get()
    assert b"3 * x" in second.body and second.etag != first.etag


def test_the_route_serves_the_bundle(client):
    page = client.get("/playground")
    assert '<script type="module" src="/bundle/playground.js">' in page.text
    assert 'rel="modulepreload" href="/static/js/' not in page.text
    plain = client.get("/bundle/playground.js", headers={"accept-encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "content-security-policy" in plain.headers  # the app's headers, as for any answer
    assert plain.text == bundle_source(JS, "playground.js")[0]
    zipped = client.get("/bundle/playground.js", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"  # httpx decodes it
    assert zipped.content == plain.content
    # one ETag per representation: a cache never takes the gzipped bytes for the plain ones
    assert zipped.headers["etag"] != plain.headers["etag"]
    for r, encoding in ((plain, "identity"), (zipped, "gzip")):
        asked = {"if-none-match": r.headers["etag"], "accept-encoding": encoding}
        again = client.get("/bundle/playground.js", headers=asked)
        assert again.status_code == 304 and not again.content
        assert again.headers["etag"] == r.headers["etag"]
    other = {"if-none-match": plain.headers["etag"], "accept-encoding": "gzip"}
    assert client.get("/bundle/playground.js", headers=other).status_code == 200


def test_the_modules_one_by_one_on_request(client):
    page = client.get("/playground?bundle=0")
    assert '<script type="module" src="/static/js/playground.js">' in page.text
    for module in module_graph(JS, "playground.js"):
        assert f'<link rel="modulepreload" href="/static/js/{module}">' in page.text
    assert "/bundle/" not in page.text
