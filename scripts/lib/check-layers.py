"""Checks that the source's dependencies go one way.

Layers, lowest first (a file's layer is the first pattern below that
matches it); a file may import from its own layer and those below:
  0 bottom:  nginx's safe wrappers, the phase list, the store, pure text
  1 request: request primitives that know nothing of Lua or configuration
  2 lua:     the Lua runtime, its scheduler and the ngx API
  3 top:     configuration, directives, nginx's entry points (phase
             handlers, filters, process hooks, the status page)

Every `crate::a::b`, `super::...` and `self::...` path in a file (in `use`
lines, grouped `{...}` ones included, and in code) is resolved to the module
file it names. The check fails on an import from a higher layer, and on a
cycle between folders (each folder under src/, and each file directly in it,
is one node; lib.rs, the crate root holding the module object nginx reads,
is not).

Usage: check-layers.py REPO_ROOT
"""

import os
import re
import sys

LAYERS = [
    ("bottom", [r"src/nginx(_ffi)?\.rs$", r"src/phase\.rs$", r"src/shdict/", r"src/regex/", r"src/text/", r"src/log_capture\.rs$"]),
    ("request", [r"src/request/"]),
    ("lua", [r"src/lua/"]),
    ("top", [r"src/conf/", r"src/directives/", r"src/http/", r"src/lib\.rs$", r"src/allocator\.rs$"]),
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


def folder_of(path):
    """The node of a source file in the folder graph: src/a/... is "a"."""
    parts = path.split("/")
    return parts[1] if len(parts) > 2 else parts[1][: -len(".rs")]


def cycles(edges):
    """Strongly connected components with more than one node."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def main():
    root = sys.argv[1]
    sources = []
    for directory, _, files in os.walk(os.path.join(root, "src")):
        for name in files:
            if name.endswith(".rs"):
                sources.append(os.path.relpath(os.path.join(directory, name), root))
    upward = []
    edges, why = {}, {}
    for path in sorted(sources):
        rank = layer_of(path)
        for target in sorted(imports(root, path)):
            if layer_of(target) > rank:
                upward.append(f"{path} -> {target}")
            here, there = folder_of(path), folder_of(target)
            if here != there and "lib" not in (here, there):
                edges.setdefault(here, set()).add(there)
                why.setdefault((here, there), f"{path} -> {target}")
    for line in upward:
        print(f"upward import: {line}")
    looped = cycles(edges)
    for component in looped:
        print(f"folders import each other: {', '.join(component)}")
        for (here, there), example in sorted(why.items()):
            if here in component and there in component:
                print(f"    {here} -> {there}, e.g. {example}")
    ok = not upward and not looped
    print("check-layers: imports go one way" if ok
          else f"check-layers: {len(upward)} upward imports, {len(looped)} folder cycles")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
