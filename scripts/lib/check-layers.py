"""Checks that no source file imports from a layer above its own.

Layers, lowest first (issue #14's target; a file's layer is the first
pattern below that matches it):
  0 bottom:  nginx.rs, shdict/, pure helpers without a request
  1 request: request primitives that know nothing of Lua
  2 lua:     the Lua runtime and the ngx API
  3 top:     directives, phase handlers, filters, process hooks, status

Every `crate::a::b`, `super::...` and `self::...` path in a file (in `use` lines, grouped `{...}` ones
included, and in code) is resolved to the module file it names. An import
from a higher layer fails the check unless it is listed in
scripts/lib/layer-violations.txt, the ones the code still has; a listed one
that no longer occurs fails too, so that the list only shrinks.

Usage: check-layers.py REPO_ROOT
"""

import os
import re
import sys

LAYERS = [
    ("bottom", [r"src/nginx(_ffi)?\.rs$", r"src/shdict/", r"src/http/args\.rs$", r"src/text/"]),
    ("request", [r"src/http/(headers|request|subrequest)\.rs$"]),
    ("lua", [r"src/lua/"]),
    ("top", [r"src/conf/", r"src/http/", r"src/directives\.rs$", r"src/lib\.rs$"]),
]

PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)(::\{[^}]*\})?")


def layer_of(path):
    for rank, (_, patterns) in enumerate(LAYERS):
        if any(re.search(p, path) for p in patterns):
            return rank
    raise SystemExit(f"check-layers: {path} is in no layer: add it to LAYERS")


def module_file(root, parts):
    """The file of the longest module prefix of `parts` that exists."""
    for end in range(len(parts), 0, -1):
        base = os.path.join("src", *parts[:end])
        for candidate in (base + ".rs", os.path.join(base, "mod.rs")):
            if os.path.isfile(os.path.join(root, candidate)):
                return candidate
    return "src/lib.rs"


def imports(root, path):
    text = open(os.path.join(root, path), encoding="utf-8").read()
    # Comments may name paths without importing them.
    text = re.sub(r"//[^\n]*", "", text)
    found = set()
    # The module a file is: src/a/b.rs is ["a", "b"], src/a/mod.rs ["a"].
    here = path[len("src/"):-len(".rs")].split("/")
    if here[-1] == "mod":
        here = here[:-1]
    for match in PATH.finditer(text):
        start, rest = match.group(1), match.group(2).split("::")[1:]
        if start == "crate":
            prefix = rest
        else:
            base = here if start == "self" else here[:-1]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
            prefix = base + rest
        group = match.group(3)
        items = group[3:-1].split(",") if group else ["self"]
        for item in (item.strip().split(" as ")[0] for item in items):
            if item:
                named = prefix if item == "self" else prefix + item.split("::")
                found.add(module_file(root, named))
    found.discard(path)
    return found


def main():
    root = sys.argv[1]
    listed_path = os.path.join(root, "scripts/lib/layer-violations.txt")
    listed = set()
    for line in open(listed_path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if line:
            listed.add(line)
    sources = []
    for directory, _, files in os.walk(os.path.join(root, "src")):
        for name in files:
            if name.endswith(".rs"):
                sources.append(os.path.relpath(os.path.join(directory, name), root))
    upward = set()
    for path in sorted(sources):
        rank = layer_of(path)
        for target in imports(root, path):
            if layer_of(target) > rank:
                upward.add(f"{path} -> {target}")
    new = sorted(upward - listed)
    gone = sorted(listed - upward)
    for line in new:
        print(f"upward import: {line}")
    for line in gone:
        print(f"no longer imported (remove it from layer-violations.txt): {line}")
    print(f"check-layers: {len(upward)} upward imports, all listed" if not new and not gone
          else f"check-layers: {len(new)} new upward imports, {len(gone)} listed ones gone")
    return 1 if new or gone else 0


if __name__ == "__main__":
    sys.exit(main())
