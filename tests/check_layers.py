#!/usr/bin/env python3
"""check_layers.py - the module layering of src/ (docs/architecture.md, "Modules").

Every `#include "dir/file.h"` in src/<module>/ must name its own module or one
that module may use (MAY_USE below, lowest layer first).  The table has no
cycle, so no two modules include each other; the HTTP layer in particular
never includes the API (the route table reaches it as data, app->routes).

Prints the module graph (include counts per edge) and every forbidden include
as FILE:LINE; exits 1 when there is one, or when a directory of src/ is not in
the table (a new module must say where it sits).

Usage: check_layers.py SRC_DIR
"""
import os
import re
import sys

# module -> the modules its files may include (besides its own).
MAY_USE = {
    "core": set(),
    "util": {"core"},
    "net": {"core", "util"},
    "store": {"core", "util"},
    "controller": {"core", "util", "net"},
    "seed": {"core", "util", "store"},
    "integrations": {"core", "util", "net", "store"},
    "http": {"core", "util", "store"},
    "api": {"core", "util", "store", "http", "integrations", "seed"},
    "cli": {"core", "util", "net", "store", "controller", "seed", "integrations", "http",
            "api"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def acyclic(table):
    """True when the table's 'may use' relation has no cycle."""
    done, active = set(), set()

    def visit(m):
        if m in active:
            return False
        if m in done:
            return True
        active.add(m)
        ok = all(visit(d) for d in table.get(m, ()))
        active.discard(m)
        done.add(m)
        return ok

    return all(visit(m) for m in table)


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print("usage: check_layers.py SRC_DIR", file=sys.stderr)
        return 2
    src = argv[1]
    if not acyclic(MAY_USE):
        print("not ok: the MAY_USE table itself has a cycle")
        return 1
    bad = []
    edges = {}
    nfiles = 0
    for module in sorted(os.listdir(src)):
        mdir = os.path.join(src, module)
        if not os.path.isdir(mdir):
            continue
        if module not in MAY_USE:
            bad.append(f"src/{module}/: a module the layering table does not know")
            continue
        for root, _, files in os.walk(mdir):
            for name in sorted(files):
                if not name.endswith((".c", ".h", ".inc")):
                    continue
                nfiles += 1
                path = os.path.join(root, name)
                rel = os.path.relpath(path, os.path.dirname(src))
                with open(path, encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if m is None or "/" not in m.group(1):
                            continue  # a file of the same directory
                        target = m.group(1).split("/", 1)[0]
                        if target == module:
                            continue
                        edges[(module, target)] = edges.get((module, target), 0) + 1
                        if target not in MAY_USE[module]:
                            bad.append(f"{rel}:{lineno}: {module} may not include "
                                       f"\"{m.group(1)}\" ({target})")
    for (a, b), n in sorted(edges.items()):
        print(f"# {a} -> {b} ({n})")
    for b in bad:
        print(f"FORBIDDEN {b}")
    print(f"# {nfiles} files, {len(edges)} module edges, {len(bad)} forbidden")
    if nfiles == 0:
        print("not ok: no source file found")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
