#!/usr/bin/env python3
"""check_layers.py - lib/'s layering (lib/meson.build, docs/DEVELOPING.md
"lib/ layers"): each folder lib/<layer>/ may use only the layers its entry in
lib/meson.build's `lib_layer_uses` table lists, and what those use.

Two checks, one table:

  check_layers.py [REPO]
      sources, no build: every #include "x.h" in lib/<layer>/ names a header
      of its own folder or of a layer it may use (the build's include
      directories make any other one a compile error; this names the rule
      broken), and every lib/**/*.c is listed in lib/meson.build.  Run by
      tests/static/test_layers.py (tests/run's static checks).

  check_layers.py --objects --layers L=U1,U2 ... --archives A.a ... [--nm NM]
                  [--stamp FILE]
      the built archives (libocpvdr_<layer>.a), run by the build (lib/meson.build
      target lib-layers, built by default): no object file calls into a layer
      its layer may not use (an extern declaration without the header gets
      past the include directories, not past this), and the files of lib/
      call each other without cycles (module.c -> module_types.c ->
      module.c was one).  Any violation fails the build.
"""
import argparse
import os
import re
import subprocess
import sys
from pathlib import Path


def parse_table(meson_build):
    """lib_layer_uses = { 'name' : ['a', 'b'], ... } -> {name: [uses]}."""
    text = Path(meson_build).read_text()
    m = re.search(r"^lib_layer_uses\s*=\s*\{(.*?)^\}", text, re.S | re.M)
    if not m:
        raise SystemExit(f"{meson_build}: no lib_layer_uses table")
    table = {}
    for name, uses in re.findall(r"'(\w+)'\s*:\s*\[([^\]]*)\]", m.group(1)):
        table[name] = re.findall(r"'(\w+)'", uses)
    return table


def closure(table):
    """layer -> every layer it may use (itself included)."""
    out = {}

    def visit(name, stack):
        if name in out:
            return out[name]
        if name in stack:
            raise SystemExit(f"lib_layer_uses: layers use each other: {' -> '.join(stack + [name])}")
        if name not in table:
            raise SystemExit(f"lib_layer_uses: unknown layer '{name}'")
        seen = {name}
        for u in table[name]:
            seen |= visit(u, stack + [name])
        out[name] = seen
        return seen

    for name in table:
        visit(name, [])
    return out


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def check_sources(repo):
    """Problems (strings) in lib/ of the tree at repo."""
    lib = Path(repo) / "lib"
    table = parse_table(lib / "meson.build")
    allowed = closure(table)
    meson_text = (lib / "meson.build").read_text()
    problems = []
    header_layer = {}
    for layer in table:
        if not (lib / layer).is_dir():
            problems.append(f"lib/{layer}/: in lib_layer_uses but no such folder")
            continue
        for h in (lib / layer).glob("*.h"):
            header_layer.setdefault(h.name, []).append(layer)
    for name, layers in header_layer.items():
        if len(layers) > 1:
            problems.append(f"{name}: in more than one layer ({', '.join(layers)})")
    for path in sorted(lib.rglob("*")):
        if path.suffix not in (".c", ".h"):
            continue
        rel = path.relative_to(repo)
        parts = path.relative_to(lib).parts
        if len(parts) != 2 or parts[0] not in table:
            problems.append(f"{rel}: not in a layer folder (lib/<layer>/, lib_layer_uses in lib/meson.build)")
            continue
        layer = parts[0]
        if path.suffix == ".c" and f"'{path.name}'" not in meson_text:
            problems.append(f"{rel}: not listed in lib/meson.build's lib_layer_sources")
        for inc in INCLUDE.findall(path.read_text()):
            owners = header_layer.get(inc)
            if not owners:
                problems.append(f"{rel}: #include \"{inc}\": no such header in lib/")
            elif owners[0] not in allowed[layer]:
                problems.append(
                    f"{rel}: #include \"{inc}\" is layer '{owners[0]}', which layer "
                    f"'{layer}' may not use (it may use: {', '.join(sorted(allowed[layer]))})")
    return problems


# --------------------------------------------------------------- objects

DEFINED = set("TDBRCGSVW")


def read_archive(nm, archive):
    """{member: (defined symbols, undefined symbols)} of one archive."""
    out = subprocess.run([nm, "-A", "-P", archive], capture_output=True, text=True, check=True).stdout
    members = {}
    for line in out.splitlines():
        # "libx.a[member.o]: sym T 0 0" (POSIX format; GNU nm writes "libx.a:member.o: sym T ...")
        head, _, rest = line.rpartition(": ")
        fields = rest.split()
        if len(fields) < 2:
            continue
        m = re.search(r"\[([^\]]+)\]$", head) or re.search(r":([^:]+)$", head)
        member = m.group(1) if m else head
        sym, kind = fields[0], fields[1]
        d, u = members.setdefault(member, (set(), set()))
        if kind == "U":
            u.add(sym)
        elif kind in DEFINED:
            d.add(sym)
    return members


def layer_of_archive(path):
    m = re.match(r"lib(?:ocpvdr_)?(\w+)\.a$", os.path.basename(path))
    if not m:
        raise SystemExit(f"{path}: not a libocpvdr_<layer>.a archive")
    return m.group(1).removeprefix("ocpvdr_")


def cycles(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, on, stack, out, n = {}, {}, set(), [], [], [0]

    def strong(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def check_objects(table, archives, nm):
    allowed = closure(table)
    owner = {}       # symbol -> (layer, member)
    objs = {}        # (layer, member) -> (defined, undefined)
    for a in archives:
        layer = layer_of_archive(a)
        if layer not in table:
            raise SystemExit(f"{a}: layer '{layer}' not in the table")
        for member, du in read_archive(nm, a).items():
            # meson's thin archives name the object by path: .../<layer>_<file>.c.o
            member = os.path.basename(member).removeprefix(layer + "_").removesuffix(".o")
            objs[(layer, member)] = du
            for s in du[0]:
                owner.setdefault(s, (layer, member))
    problems = []
    graph = {}
    syms = {}        # (from, to) -> the symbols it uses
    for (layer, member), (_, undef) in sorted(objs.items()):
        for s in sorted(undef):
            if s not in owner:
                continue   # libc, jansson, curl, ...
            olayer, omember = owner[s]
            if (olayer, omember) == (layer, member):
                continue
            edge = (f"lib/{layer}/{member}", f"lib/{olayer}/{omember}")
            graph.setdefault(edge[0], set()).add(edge[1])
            syms.setdefault(edge, []).append(s)
            if olayer not in allowed[layer]:
                problems.append(
                    f"lib/{layer}/{member}: calls {s}() of lib/{olayer}/{omember}: layer "
                    f"'{layer}' may not use layer '{olayer}' (it may use: "
                    f"{', '.join(sorted(allowed[layer]))})")
    for comp in cycles(graph):
        edges = [f"{v} -> {w} ({', '.join(syms[(v, w)])})"
                 for v in comp for w in sorted(graph.get(v, ())) if w in comp]
        problems.append("files of lib/ call each other in a cycle: " + "; ".join(edges))
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?", default=str(Path(__file__).resolve().parents[2]))
    ap.add_argument("--objects", action="store_true")
    ap.add_argument("--layers", nargs="*", default=[])
    ap.add_argument("--archives", nargs="*", default=[])
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--stamp")
    a = ap.parse_args(argv)
    if a.objects:
        table = {}
        for spec in a.layers:
            name, _, uses = spec.partition("=")
            table[name] = [u for u in uses.split(",") if u]
        problems = check_objects(table, a.archives, a.nm)
    else:
        problems = check_sources(a.repo)
    for p in problems:
        print(f"check_layers: {p}", file=sys.stderr)
    if problems:
        return 1
    if a.stamp:
        Path(a.stamp).write_text("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
