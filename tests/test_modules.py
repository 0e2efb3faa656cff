#!/usr/bin/env python3
"""test_modules.py - the shape of the library, checked on what was built.

1. The modules form an acyclic graph: for every object file of the static
   library, `nm` says which symbols it defines and which it uses; an edge
   A -> B means A uses a symbol B defines.  A cycle fails the test (and is
   printed with the symbol behind each edge).
2. Every cross-file internal is named after its file: a global mlo__ symbol
   of src/<stage>/mlo_<stem>.c starts with mlo__<stem> or mlo__<first word
   of the stem>_ (mlo_api_artifacts.c: mlo__api_...).
3. struct mlo_client is defined in one file, src/calls/mlo_client.c.
4. Each dependency is included by one file of src/: curl/curl.h,
   jansson.h, openssl/*, zstd.h and each generated *.pb-c.h.  The REST
   messages header mlflow_service.pb-c.h is included by the REST layer's
   private header alone, which only the src/rest/ files include.

usage: test_modules.py BUILD_DIR SOURCE_ROOT
"""
import collections
import os
import re
import subprocess
import sys

build, root = sys.argv[1], sys.argv[2]
lib = os.path.join(build, "src", "libmlo.a")
failures = []

# ---- 1 and 2: nm on the archive (one line per symbol, "archive:member: ...") ----
out = subprocess.run(["nm", "-A", lib], capture_output=True, text=True, check=True).stdout
defs, uses = {}, collections.defaultdict(set)
members = set()
for line in out.splitlines():
    parts = line[len(lib) + 1:].split(":", 1) if line.startswith(lib + ":") else []
    if len(parts) != 2:
        continue
    member, rest = parts
    if not member.endswith(".o"):
        continue
    members.add(member)
    p = rest.split()
    if len(p) == 3 and p[1] in "TDBRC":
        defs[p[2]] = member
    elif len(p) == 2 and p[0] == "U":
        uses[member].add(p[1])
members = sorted(members)

def module(obj):
    # "send_mlo_outbox.c.o" -> "send/mlo_outbox"; generated protobuf code as is
    name = obj[:-4] if obj.endswith(".c.o") else obj
    if "pb-c" in name:
        return "proto:" + name.split("_proto_")[-1]
    stage, _, rest = name.partition("_mlo_")
    return stage + "/mlo_" + rest

graph, why = collections.defaultdict(set), {}
for m, syms in uses.items():
    for s in syms:
        d = defs.get(s)
        if d and d != m:
            a, b = module(m), module(d)
            graph[a].add(b)
            why[(a, b)] = s

state = {}
def visit(u, path):
    state[u] = 1
    path.append(u)
    for v in sorted(graph.get(u, ())):
        if state.get(v) == 1:
            cyc = path[path.index(v):] + [v]
            failures.append("module cycle: " + " -> ".join(
                "%s (%s)" % (cyc[i], why[(cyc[i], cyc[i + 1])]) for i in range(len(cyc) - 1))
                + " -> " + v)
        elif not state.get(v):
            visit(v, path)
    path.pop()
    state[u] = 2
for u in sorted(graph):
    if not state.get(u):
        visit(u, [])

nmods = len({module(m) for m in members})
nedges = sum(len(v) for v in graph.values())
print("modules: %d object files, %d edges between them" % (nmods, nedges))
if nmods < 20 or nedges < nmods:
    failures.append("the archive was not read (%d modules, %d edges)" % (nmods, nedges))

for sym, obj in sorted(defs.items()):
    if not sym.startswith("mlo__") or "pb-c" in obj:
        continue
    stem = module(obj).split("/mlo_", 1)[1]
    first = stem.split("_")[0]
    name = sym[len("mlo__"):]
    if not (name.startswith(stem) or name.startswith(first + "_")):
        failures.append("%s defines %s: not named after its module (mlo__%s_...)" %
                        (module(obj), sym, stem))

# ---- 3 and 4: the sources ----
src = os.path.join(root, "src")
files = []
for d, _, names in os.walk(src):
    files += [os.path.join(d, n) for n in names if n.endswith((".c", ".h"))]
texts = {f: open(f, encoding="utf-8").read() for f in files}
rel = lambda f: os.path.relpath(f, root)

holders = [f for f, t in texts.items() if re.search(r"^struct mlo_client \{", t, re.M)]
if [rel(f) for f in holders] != ["src/calls/mlo_client.c"]:
    failures.append("struct mlo_client is defined in %s (expected src/calls/mlo_client.c only)"
                    % [rel(f) for f in holders])

include = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
deps = {"curl": r"curl/", "jansson": r"jansson\.h$", "libcrypto": r"openssl/",
        "zstd": r"zstd\.h$", "mlflow_service.pb-c.h": r"mlflow_service\.pb-c\.h$",
        "mlo_log.pb-c.h": r"mlo_log\.pb-c\.h$"}
for dep, pat in deps.items():
    who = sorted({rel(f) for f, t in texts.items() for h in include.findall(t)
                  if re.search(pat, h)})
    print("%-22s included by %s" % (dep, ", ".join(who) or "nobody"))
    if len(who) != 1:
        failures.append("%s is included by %d files: %s" % (dep, len(who), who))
api_int = sorted({rel(f) for f, t in texts.items() if "mlo_api_int.h" in include.findall(t)})
bad = [f for f in api_int if not f.startswith("src/rest/")]
if bad:
    failures.append("mlo_api_int.h (the generated messages) is included outside src/rest/: %s"
                    % bad)

for f in failures:
    print("FAIL:", f)
print("%d problems" % len(failures))
sys.exit(1 if failures else 0)
