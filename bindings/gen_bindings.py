#!/usr/bin/python3
"""Generates the low-level layer of mlo's Python and R bindings from include/mlo.h.

The header is parsed with a real C parser (pycparser, Debian's python3-pycparser):
it is first run through the C preprocessor (``cc -E`` with ``__attribute__`` defined
away; the two standard includes are replaced by the few typedefs the header uses),
or, when no preprocessor can be run, through a small stripper that drops comments
and preprocessor lines (enough for this header's strict form).  Every public
declaration is then classified; a parameter or return type the generator does not
know how to bind stops the build with a message instead of being skipped, so the
bindings can never silently fall behind the header.

Outputs (all in --outdir):
  _mlo_ffi.py      Python ctypes layer: enums as int constants and dicts, opaque
                   handle types, the error-callback CFUNCTYPE, one prototype
                   (restype, argtypes) per function and bind(lib).
  mlo_r_glue.c     R .Call glue: one SEXP wrapper per function plus the
                   registration table (R_init_mlo).
  mlo_r_stubs.R    R stubs: .c_<function>(...) calling the glue, and the enums.
  mlo_bindings.json  What was generated (functions, R arities, header digest), for
                   the drift test.

Usage: gen_bindings.py --header include/mlo.h --outdir DIR [--cc "cc"] [--only py|r|json]
"""

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

GENERATOR = "bindings/gen_bindings.py"

# The header includes only <stddef.h> and <stdint.h>; pycparser gets these instead.
STD_TYPEDEFS = {
    "size_t": "unsigned long",
    "int8_t": "signed char",
    "uint8_t": "unsigned char",
    "int16_t": "short",
    "uint16_t": "unsigned short",
    "int32_t": "int",
    "uint32_t": "unsigned int",
    "int64_t": "long long",
    "uint64_t": "unsigned long long",
}

# C scalar type -> (ctypes name, kind for R conversion)
SCALARS = {
    "int": ("c_int", "int"),
    "unsigned": ("c_uint", "uint"),
    "unsigned int": ("c_uint", "uint"),
    "long": ("c_long", "int64"),
    "unsigned long": ("c_ulong", "uint64"),
    "double": ("c_double", "double"),
    "float": ("c_float", "double"),
    "size_t": ("c_size_t", "size"),
    "int32_t": ("c_int32", "int"),
    "uint32_t": ("c_uint32", "uint"),
    "int64_t": ("c_int64", "int64"),
    "uint64_t": ("c_uint64", "uint64"),
}

# Handle types whose last reference is released by a function of the API: the R glue
# attaches it as the external pointer's finalizer and clears the pointer once called.
# Found by convention (a function named *_free or *_close whose only parameter is a
# non-const pointer to the handle type); this table adds to or overrides that.
DESTRUCTORS_OVERRIDE = {}

# Routines of the R package written by hand (bindings/r/src/mlo_r_sink.c) that the
# registration table must list too: name -> number of arguments.
R_EXTRA_ROUTINES = {
    "mlor_take_errors": 1,
}


# Callback types the R glue serves with a hand-written C sink (bindings/r/src/
# mlo_r_sink.c): the R argument is a logical (install the sink or not) and the user
# data is NULL.  Every other callback type gets a generated collector: the C callback
# appends its arguments to growing arrays (without calling R), the R wrapper takes no
# argument for it and returns one vector per callback parameter.
R_SINK_CALLBACKS = {
    "mlo_error_fn": "mlor_error_sink",
}

# Functions the R glue links to strongly (see gen_r_glue): present in every libmlo.
R_STRONG = {"mlo_version"}


class GenError(Exception):
    pass


# ---------------------------------------------------------------------------
# Reading the header


def strip_for_parser(text):
    """Comments and preprocessor lines out, MLO_API out; keeps line numbers."""

    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))

    text = re.sub(r"/\*.*?\*/", blank, text, flags=re.S)
    text = re.sub(r"//[^\n]*", blank, text)
    out = []
    cont = False
    skip_cxx = 0
    for line in text.split("\n"):
        s = line.strip()
        if cont or s.startswith("#"):
            if s.startswith("#ifdef __cplusplus"):
                skip_cxx = 1
            elif skip_cxx and s.startswith("#endif"):
                skip_cxx = 0
            cont = s.endswith("\\")
            out.append("")
            continue
        if skip_cxx:
            out.append("")
            continue
        out.append(re.sub(r"\bMLO_API\b", "", line))
    return "\n".join(out)


def preprocess(header_path, text, cc):
    """Runs the header through the C preprocessor; returns C text with line markers
    pointing into the header.  Falls back to strip_for_parser when cc is unusable."""
    prelude = "".join("typedef %s %s;\n" % (v, k) for k, v in STD_TYPEDEFS.items())
    body = re.sub(r"^[ \t]*#[ \t]*include[^\n]*", "", text, flags=re.M)
    src = prelude + '#line 1 "%s"\n' % header_path + body
    cmd = shlex.split(cc) if isinstance(cc, str) else list(cc)
    if cmd and shutil.which(cmd[0]):
        try:
            p = subprocess.run(
                cmd + ["-E", "-std=c11", "-undef", "-D__attribute__(x)=", "-D__extension__=",
                       "-D__restrict=", "-D__inline=", "-x", "c", "-"],
                input=src, capture_output=True, text=True, timeout=60)
            if p.returncode == 0:
                return p.stdout
            sys.stderr.write("gen_bindings: %s -E failed, stripping instead:\n%s\n"
                             % (cmd[0], p.stderr[-2000:]))
        except (OSError, subprocess.SubprocessError) as e:
            sys.stderr.write("gen_bindings: cannot run %s (%s), stripping instead\n" % (cmd[0], e))
    return prelude + '#line 1 "%s"\n' % header_path + strip_for_parser(text)


def int_macros(text):
    """#define NAME <integer> lines (the version numbers)."""
    out = {}
    for m in re.finditer(r"^#define\s+(MLO_\w+)\s+(0x[0-9a-fA-F]+|\d+)\s*$", text, flags=re.M):
        out[m.group(1)] = int(m.group(2), 0)
    return out


def doc_comments(text):
    """line number (1-based) on which a /** doc comment ends -> the comment's text."""
    docs = {}
    for m in re.finditer(r"/\*\*(?!<)(.*?)\*/", text, flags=re.S):
        end_line = text.count("\n", 0, m.end()) + 1
        body = m.group(1)
        lines = [re.sub(r"^\s*\*?", "", ln).strip() for ln in body.split("\n")]
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        docs[end_line] = "\n".join(lines)
    return docs


class Type:
    """A C type reduced to what binding needs: base name, pointer depth, constness."""

    def __init__(self, base, ptr=0, const_base=False, const_ptrs=(), fn=None):
        self.base = base  # "int", "char", "void", "mlo_run_t", "mlo_status", ...
        self.ptr = ptr
        self.const_base = const_base
        self.const_ptrs = tuple(const_ptrs)  # const-ness of each pointer level, outermost last
        self.fn = fn  # for a function-pointer typedef: Function

    def c(self, name=""):
        s = ("const " if self.const_base else "") + self.base
        for i in range(self.ptr):
            s += " *" + ("const" if self.const_ptrs[i] else "")
        if name:
            s += name if s.endswith("*") else " " + name
        return s

    def __repr__(self):
        return "Type(%s)" % self.c()


class Param:
    def __init__(self, name, ctype):
        self.name = name
        self.type = ctype
        self.role = None  # set by classify()
        self.arg = None


class Function:
    def __init__(self, name, ret, params, doc="", line=0):
        self.name = name
        self.ret = ret
        self.params = params
        self.doc = doc
        self.line = line
        self.ret_role = None


class Api:
    def __init__(self):
        self.enums = {}  # typedef name -> [(const name, value)]
        self.handles = {}  # typedef name -> struct tag
        self.callbacks = {}  # typedef name -> Function
        self.functions = []  # public functions in header order
        self.macros = {}
        self.sha256 = ""
        self.destructors = {}  # handle type -> function releasing it
        self.enum_docs = {}  # enum constant -> its doc comment
        self.options = []  # OptionSpec, header order (see options())
        self.errors = []  # ErrorSpec, header order (see error_table())


def _type_of(node):
    """pycparser type node -> Type."""
    from pycparser import c_ast

    ptr = 0
    const_ptrs = []
    while isinstance(node, c_ast.PtrDecl):
        const_ptrs.append("const" in node.quals)
        ptr += 1
        node = node.type
    if isinstance(node, c_ast.FuncDecl):
        raise GenError("function types are only supported through a typedef")
    if not isinstance(node, c_ast.TypeDecl):
        raise GenError("unsupported declarator %s" % type(node).__name__)
    const_base = "const" in node.quals
    t = node.type
    if isinstance(t, c_ast.IdentifierType):
        base = " ".join(t.names)
        base = {"unsigned int": "unsigned", "signed int": "int", "long int": "long",
                "long long int": "long long", "unsigned long int": "unsigned long"}.get(base, base)
    elif isinstance(t, c_ast.Enum):
        base = "enum " + (t.name or "")
    elif isinstance(t, c_ast.Struct):
        base = "struct " + (t.name or "")
    else:
        raise GenError("unsupported type node %s" % type(t).__name__)
    # pointer levels were collected outermost first; store innermost first
    return Type(base, ptr, const_base, list(reversed(const_ptrs)))


def _const_value(node, known):
    from pycparser import c_ast

    if isinstance(node, c_ast.Constant):
        return int(node.value.rstrip("uUlL"), 0)
    if isinstance(node, c_ast.UnaryOp) and node.op in "-+~":
        v = _const_value(node.expr, known)
        return {"-": -v, "+": v, "~": ~v}[node.op]
    if isinstance(node, c_ast.BinaryOp):
        a, b = _const_value(node.left, known), _const_value(node.right, known)
        ops = {"+": a + b, "-": a - b, "|": a | b, "&": a & b, "<<": a << b if b >= 0 else 0,
               "*": a * b}
        if node.op in ops:
            return ops[node.op]
    if isinstance(node, c_ast.ID) and node.name in known:
        return known[node.name]
    raise GenError("cannot evaluate enum value %r" % node)


def parse_header(header_path, cc="cc"):
    try:
        from pycparser import c_ast, c_parser
    except ImportError:
        raise GenError("pycparser is missing: apt-get install -y python3-pycparser")
    with open(header_path, encoding="utf-8") as f:
        text = f.read()
    api = Api()
    api.sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    api.macros = int_macros(text)
    docs = doc_comments(text)
    src = preprocess(header_path, text, cc)
    try:
        ast = c_parser.CParser().parse(src, filename=header_path)
    except Exception as e:  # pycparser's ParseError carries file:line
        raise GenError("pycparser could not parse %s: %s" % (header_path, e))

    def doc_for(line):
        # the doc comment that ends on the line before the declaration (or the one before)
        for back in (1, 2):
            if line - back in docs:
                return docs[line - back]
        return ""

    known_consts = {}
    std = set(STD_TYPEDEFS)
    for ext in ast.ext:
        if isinstance(ext, c_ast.Typedef):
            name = ext.name
            if name in std:
                continue
            t = ext.type
            if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.Enum):
                vals = []
                nxt = 0
                for e in t.type.values.enumerators:
                    v = _const_value(e.value, known_consts) if e.value is not None else nxt
                    vals.append((e.name, v))
                    known_consts[e.name] = v
                    if e.coord is not None:
                        api.enum_docs[e.name] = doc_for(e.coord.line)
                    nxt = v + 1
                api.enums[name] = vals
            elif isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.Struct):
                if t.type.decls:
                    raise GenError("%s: public structs with fields are not supported" % name)
                api.handles[name] = t.type.name or name
            elif isinstance(t, c_ast.PtrDecl) and isinstance(t.type, c_ast.FuncDecl):
                fd = t.type
                params = _params(fd, name)
                api.callbacks[name] = Function(name, _type_of(fd.type), params)
            else:
                raise GenError("unsupported typedef %s at %s" % (name, ext.coord))
        elif isinstance(ext, c_ast.Decl) and isinstance(ext.type, c_ast.FuncDecl):
            if not ext.name.startswith("mlo_"):
                continue
            fd = ext.type
            line = ext.coord.line if ext.coord else 0
            # the declaration may start a line or two above the name (wrapped returns)
            api.functions.append(Function(ext.name, _type_of(fd.type), _params(fd, ext.name),
                                          doc_for(line), line))
        elif isinstance(ext, c_ast.Decl):
            # a plain declaration (a global variable) is not part of the ABI we bind
            if ext.name and ext.name.startswith("mlo_"):
                raise GenError("public variable %s cannot be bound" % ext.name)
    for f in api.functions:
        classify(api, f)
    for f in api.functions:
        if re.search(r"_(free|close)$", f.name) and len(f.params) == 1 and \
                f.params[0].role[0] == "handle" and not f.params[0].type.const_base:
            api.destructors.setdefault(f.params[0].role[1], f.name)
    api.destructors.update(DESTRUCTORS_OVERRIDE)
    for cb in api.callbacks.values():
        for p in cb.params:
            classify_param(api, cb, p, callback=True)
    api.options = options(api)
    api.errors = error_table(api)
    return api


def _params(fd, fname):
    from pycparser import c_ast

    params = []
    if fd.args is None:
        return params
    for i, p in enumerate(fd.args.params):
        if isinstance(p, c_ast.EllipsisParam):
            raise GenError("%s: variadic functions cannot be bound" % fname)
        t = _type_of(p.type)
        if t.base == "void" and t.ptr == 0:
            continue  # (void)
        params.append(Param(p.name or "arg%d" % i, t))
    return params


# ---------------------------------------------------------------------------
# Classification: what each parameter is to a binding


def scalar_kind(api, base):
    if base in SCALARS:
        return base
    if base in api.enums or base.startswith("enum "):
        return "enum"
    return None


def classify_param(api, f, p, callback=False):
    t = p.type
    b = t.base
    sk = scalar_kind(api, b)
    if t.ptr == 0 and sk:
        p.role = ("scalar", sk)
    elif t.ptr == 0 and b in api.callbacks:
        p.role = ("callback", b)
    elif b == "char" and t.ptr == 1 and t.const_base:
        p.role = ("str",)
    elif b == "char" and t.ptr == 2 and t.const_base:
        p.role = ("str_array",)
    elif b == "void" and t.ptr == 1 and t.const_base and not callback:
        p.role = ("bytes",)  # must be followed by its size_t length (checked in classify)
    elif b == "void" and t.ptr == 1:
        p.role = ("userdata",)
    elif b in api.handles and t.ptr == 1:
        p.role = ("handle", b)
    elif b in api.handles and t.ptr == 2 and not t.const_base:
        p.role = ("out_handle", b)
    elif sk and t.ptr == 1 and t.const_base:
        p.role = ("array", sk)
    elif sk and t.ptr == 1 and not t.const_base:
        p.role = ("out_scalar", sk)
    else:
        raise GenError("%s: cannot bind parameter %s of type %s (extend %s)"
                       % (f.name, p.name, t.c(), GENERATOR))
    if callback and p.role[0] not in ("scalar", "str", "userdata"):
        raise GenError("callback %s: unsupported parameter %s" % (f.name, p.name))


def classify(api, f):
    for p in f.params:
        classify_param(api, f, p)
    for i, p in enumerate(f.params):
        if p.role[0] == "bytes":
            # const void *data, size_t len: a byte buffer and its length
            nxt = f.params[i + 1] if i + 1 < len(f.params) else None
            if nxt is None or nxt.role != ("scalar", "size_t"):
                raise GenError("%s: const void *%s must be followed by its size_t length"
                               % (f.name, p.name))
            nxt.role = ("bytes_len", p.name)
    for i, p in enumerate(f.params):
        if p.role[0] == "userdata":
            if i == 0 or f.params[i - 1].role[0] != "callback":
                raise GenError("%s: a void * must follow a callback parameter" % f.name)
        if p.role[0] == "array" or p.role[0] == "str_array":
            if not any(q.role == ("scalar", "size_t") and q.name == "n" for q in f.params):
                raise GenError("%s: array parameter %s needs a size_t n" % (f.name, p.name))
    r = f.ret
    sk = scalar_kind(api, r.base)
    if r.base == "void" and r.ptr == 0:
        f.ret_role = ("void",)
    elif r.ptr == 0 and sk:
        f.ret_role = ("scalar", sk)
    elif r.base == "char" and r.ptr == 1 and r.const_base:
        f.ret_role = ("str",)
    elif r.base in api.handles and r.ptr == 1:
        f.ret_role = ("handle", r.base)
    else:
        raise GenError("%s: cannot bind return type %s" % (f.name, r.c()))


def r_collects(p):
    """Whether p is a callback the R glue serves with a generated collector."""
    return p.role[0] == "callback" and p.role[1] not in R_SINK_CALLBACKS


def r_args(f):
    """Parameters the R function takes (out-parameters, user data, buffer lengths and
    collected callbacks are not)."""
    return [p for p in f.params if p.role[0] not in ("out_handle", "out_scalar", "userdata",
                                                     "bytes_len") and not r_collects(p)]


# ---------------------------------------------------------------------------
# Client options: the keyword arguments of mlo.Client (Python) and mlo_client (R)
#
# Every mlo_options_set_<name>(mlo_options_t *opts, ...) setter of the header becomes
# one keyword per parameter, in header order, in both languages; the bindings apply
# them generically (no hand-written list), so an option added to the header reaches
# both.  Keyword names: a setter of one parameter gives its own name (<name>); in a
# setter of several, the parameter "policy" gives <name> and the others
# <name minus "_policy">_<parameter>; OPTION_KEYWORDS renames the few whose MLflow
# names differ.  When some keywords of a setter are given and others not, the others
# get the value that keeps their default: the header's "negative value to keep"
# convention, else the default its doc comment states ("default 100", "(the default,
# 1000 ms)" on the enum constant of the policy), else NULL for a string; a parameter
# with none of these stops the generator (document its default in the header).

OPTION_KEYWORDS = {
    ("mlo_options_set_basic_auth", "user"): "username",
    ("mlo_options_set_basic_auth", "password"): "password",
    ("mlo_options_set_retries", "max_retries"): "max_retries",
    ("mlo_options_set_retries", "backoff_factor_s"): "backoff_factor",
    ("mlo_options_set_retries", "jitter_s"): "backoff_jitter",
    ("mlo_options_set_retries", "timeout_s"): "request_timeout",
    ("mlo_options_set_close_timeout_ms", "timeout_ms"): "close_timeout",
    ("mlo_options_set_error_callback", "fn"): "on_error",
    ("mlo_options_set_system_metrics_sampling", "interval_s"): "system_metrics_sampling_interval",
    ("mlo_options_set_system_metrics_sampling", "samples_before_logging"):
        "system_metrics_samples_before_logging",
}

# Keywords whose unit differs from the C parameter's: the binding multiplies by this
# (close_timeout is in seconds, as mlflow's timeouts; the setter takes milliseconds).
OPTION_SCALE = {
    ("mlo_options_set_close_timeout_ms", "timeout_ms"): 1000,
}

# The keyword that takes the tracking URI: positional first argument in both languages.
OPTION_FIRST = "tracking_uri"


class OptionSpec:
    """One keyword: which setter, which of its parameters (0-based, after opts)."""

    def __init__(self, keyword, setter, param, index, kind, ctype):
        self.keyword = keyword
        self.setter = setter
        self.param = param
        self.index = index
        self.kind = kind  # str, bool, int, uint, double, size, enum, callback
        self.ctype = ctype  # the C type name (enum or callback type for those kinds)
        self.keep = None  # the value that keeps the default (the header's convention)
        self.default = None  # the documented default, for a sibling keyword's call
        self.scale = 1
        self.values = None  # enum: {"wait": 0, "drop": 1}
        self.doc = ""

    def as_dict(self):
        return {"keyword": self.keyword, "setter": self.setter, "param": self.param,
                "index": self.index, "kind": self.kind, "ctype": self.ctype, "keep": self.keep,
                "default": self.default, "scale": self.scale, "values": self.values,
                "doc": self.doc}


def _enum_short_names(consts):
    """{"MLO_FULL_WAIT": 0, ...} -> {"wait": 0, ...} (the common prefix dropped)."""
    names = list(consts)
    if len(names) > 1:
        prefix = os.path.commonprefix(names)
        prefix = prefix[:prefix.rfind("_") + 1]
    else:
        prefix = names[0][:names[0].rfind("_") + 1] if names else ""
    return {n[len(prefix):].lower(): v for n, v in consts.items()}


_DEFAULT_NUMBER = re.compile(r"\bdefault\b\W{0,3}?(\d[\d,]*(?:\.\d+)?)", re.I)


def _doc_default(text):
    m = _DEFAULT_NUMBER.search(text or "")
    if not m:
        return None
    v = m.group(1).replace(",", "")
    return float(v) if "." in v else int(v)


def _doc_text(doc):
    """A doc comment for users of a binding: C-only parts (statuses, threads) cut."""
    d = re.split(r"\b(?:Statuses|Threads):", doc or "", maxsplit=1)[0]
    return re.sub(r"\s+", " ", d).strip()


def options(api):
    out = []
    for f in api.functions:
        if not f.name.startswith("mlo_options_set_"):
            continue
        if not f.params or f.params[0].role != ("handle", "mlo_options_t"):
            raise GenError("%s: an option setter must take the mlo_options_t * first" % f.name)
        name = f.name[len("mlo_options_set_"):]
        params = [p for p in f.params[1:] if p.role[0] != "userdata"]
        specs = []
        for i, p in enumerate(f.params[1:]):
            if p.role[0] == "userdata":
                continue
            role = p.role
            if role[0] == "str":
                kind, ctype = "str", "char *"
            elif role[0] == "callback":
                kind, ctype = "callback", role[1]
            elif role[0] == "scalar" and role[1] == "enum":
                kind, ctype = "enum", p.type.base
            elif role[0] == "scalar":
                kind = {"int": "int", "unsigned": "uint", "unsigned int": "uint",
                        "uint32_t": "uint", "double": "double", "float": "double",
                        "size_t": "size", "int64_t": "int", "uint64_t": "uint",
                        "long": "int", "unsigned long": "uint", "int32_t": "int"}.get(role[1])
                ctype = role[1]
                if kind is None:
                    raise GenError("%s: no option kind for parameter %s" % (f.name, p.name))
                if kind == "int" and len(params) == 1 and ctype == "int":
                    kind = "bool"  # a flag: "non-zero" means on
            else:
                raise GenError("%s: option parameter %s of type %s cannot be bound"
                               % (f.name, p.name, p.type.c()))
            kw = OPTION_KEYWORDS.get((f.name, p.name))
            if kw is None:
                if len(params) == 1 or p.name == "policy":
                    kw = name
                else:
                    prefix = name[:-len("_policy")] if name.endswith("_policy") else name
                    kw = p.name if p.name.startswith(prefix + "_") else prefix + "_" + p.name
            spec = OptionSpec(kw, f.name, p.name, i, kind, ctype)
            spec.scale = OPTION_SCALE.get((f.name, p.name), 1)
            spec.doc = _doc_text(f.doc)
            if kind == "enum":
                consts = dict(api.enums.get(ctype, []))
                if not consts:
                    raise GenError("%s: enum %s has no constants" % (f.name, ctype))
                spec.values = _enum_short_names(consts)
            specs.append(spec)
        # what an unset keyword of a setter passes when a sibling is set
        keeps = re.search(r"negative\s+value\s+to\s+keep", f.doc or "", re.I)
        enum_default_doc = ""
        for spec in specs:
            if spec.kind == "enum":
                for cname, v in api.enums[spec.ctype]:
                    d = api.enum_docs.get(cname, "")
                    if re.search(r"\bthe default\b", d, re.I):
                        spec.default = v
                        enum_default_doc = d
                        break
        numeric = [s for s in specs if s.kind in ("int", "uint", "double", "size")]
        for spec in numeric:
            if keeps:
                spec.keep = -1
        if len(specs) > 1:
            need = [s for s in numeric if s.keep is None]
            if len(need) > 1:
                raise GenError("%s: several numeric parameters without a documented way to "
                               "keep their defaults" % f.name)
            for spec in need:
                spec.default = _doc_default(f.doc)
                if spec.default is None:
                    spec.default = _doc_default(enum_default_doc)
                if spec.default is None:
                    raise GenError("%s: the default of %s is not in the header (write "
                                   "\"default N\" in its doc comment)" % (f.name, spec.param))
            for spec in specs:
                if spec.kind in ("enum", "bool") and spec.default is None and spec.keep is None:
                    raise GenError("%s: the default of %s is not in the header (mark its enum "
                                   "constant \"the default\")" % (f.name, spec.param))
        out.extend(specs)
    seen = {}
    for spec in out:
        if spec.keyword in seen:
            raise GenError("option keyword %s of %s is also one of %s: add it to OPTION_KEYWORDS"
                           % (spec.keyword, spec.setter, seen[spec.keyword]))
        seen[spec.keyword] = spec.setter
    if OPTION_FIRST not in seen:
        raise GenError("no option %s in the header" % OPTION_FIRST)
    known = {(f.name, p.name) for f in api.functions for p in f.params}
    for key in list(OPTION_KEYWORDS) + list(OPTION_SCALE):
        if key not in known:
            raise GenError("OPTION_KEYWORDS/OPTION_SCALE name %s(%s), which the header no "
                           "longer has" % key)
    return out


# ---------------------------------------------------------------------------
# Statuses -> exceptions (Python) and condition classes (R)
#
# Every error status of the header (MLO_ERR_*) gets its own exception class in Python
# (Mlo<Name>Error) and its own condition class in R (mlo_<name>); STATUS_FAMILIES puts
# some under another status's class (a bad key is a bad argument), so that catching
# the family catches them.  A status added to the header gets its classes without a
# change here.  Warnings (MLO_WARN_*) are not errors.

STATUS_FAMILIES = {
    "MLO_ERR_INVALID_KEY": "MLO_ERR_INVALID_ARGUMENT",
    "MLO_ERR_INVALID_UTF8": "MLO_ERR_INVALID_ARGUMENT",
    "MLO_ERR_INVALID_STATUS": "MLO_ERR_INVALID_ARGUMENT",
    "MLO_ERR_INVALID_PATH": "MLO_ERR_INVALID_ARGUMENT",
    "MLO_ERR_TLS": "MLO_ERR_NETWORK",
    "MLO_ERR_SERVER_INVALID": "MLO_ERR_SERVER",
    "MLO_ERR_ALREADY_EXISTS": "MLO_ERR_SERVER",
    "MLO_ERR_NOT_FOUND": "MLO_ERR_SERVER",
    "MLO_ERR_PERMISSION": "MLO_ERR_SERVER",
    "MLO_ERR_RATE_LIMITED": "MLO_ERR_SERVER",
    "MLO_ERR_PROTOCOL": "MLO_ERR_SERVER",
    "MLO_ERR_ARTIFACTS_NOT_PROXIED": "MLO_ERR_CONFIG",
}

# Python class names the CamelCase rule would spell otherwise.
PY_ERROR_NAMES = {
    "MLO_ERR_IO": "MloIOError",
    "MLO_ERR_TLS": "MloTLSError",
}


class ErrorSpec:
    def __init__(self, status, value, py_class, r_class, family, doc):
        self.status = status
        self.value = value
        self.py_class = py_class
        self.r_class = r_class
        self.family = family  # another status name, or None
        self.doc = doc


def error_table(api):
    statuses = dict(api.enums.get("mlo_status", []))
    if not statuses:
        raise GenError("the header has no mlo_status enum")
    for k, fam in STATUS_FAMILIES.items():
        if k not in statuses or fam not in statuses:
            raise GenError("STATUS_FAMILIES names %s -> %s, which the header no longer has"
                           % (k, fam))
    for k in PY_ERROR_NAMES:
        if k not in statuses:
            raise GenError("PY_ERROR_NAMES names %s, which the header no longer has" % k)
    out = []
    for name, value in statuses.items():
        if not name.startswith("MLO_ERR_"):
            continue  # MLO_OK and the warnings
        rest = name[len("MLO_ERR_"):]
        py = PY_ERROR_NAMES.get(name) or \
            "Mlo" + "".join(w[:1].upper() + w[1:].lower() for w in rest.split("_")) + "Error"
        out.append(ErrorSpec(name, value, py, "mlo_" + rest.lower(), STATUS_FAMILIES.get(name),
                             _doc_text(api.enum_docs.get(name, ""))))
    # families first, so that a binding can build the classes in order
    by = {e.status: e for e in out}

    def depth(e):
        d = 0
        while e.family:
            e = by[e.family]
            d += 1
        return d

    return sorted(out, key=lambda e: (depth(e), e.value))


def r_condition_classes(api, e):
    """The R condition classes of an error spec, most specific first (mlo_error and
    error/condition are added by the R layer)."""
    by = {x.status: x for x in api.errors}
    out = [e.r_class]
    while e.family:
        e = by[e.family]
        out.append(e.r_class)
    return out


# ---------------------------------------------------------------------------
# Python


def _py_type(api, t, role):
    kind = role[0]
    if kind == "scalar":
        sk = role[1]
        return "_C.c_int" if sk == "enum" else "_C." + SCALARS[sk][0]
    if kind == "str":
        return "_C.c_char_p"
    if kind == "str_array":
        return "_C.POINTER(_C.c_char_p)"
    if kind in ("userdata", "bytes"):
        return "_C.c_void_p"
    if kind == "bytes_len":
        return "_C.c_size_t"
    if kind == "handle":
        return "_C.POINTER(%s)" % role[1]
    if kind == "out_handle":
        return "_C.POINTER(_C.POINTER(%s))" % role[1]
    if kind in ("array", "out_scalar"):
        sk = role[1]
        return "_C.POINTER(%s)" % ("_C.c_int" if sk == "enum" else "_C." + SCALARS[sk][0])
    if kind == "callback":
        return role[1]
    if kind == "void":
        return "None"
    raise GenError("no Python type for %r" % (role,))


def gen_python(api, header_name):
    o = []
    w = o.append
    w('"""Low-level ctypes declarations of mlo\'s C ABI.\n')
    w("Generated by %s from %s: do not edit.  The hand-written layer (mlo/__init__.py and" % (GENERATOR, header_name))
    w("friends) builds the Python API on top of this module.")
    w('"""')
    w("")
    w("import ctypes as _C")
    w("")
    w("HEADER_SHA256 = %r" % api.sha256)
    ma, mi, pa = (api.macros.get("MLO_VERSION_" + k, 0) for k in ("MAJOR", "MINOR", "PATCH"))
    w("HEADER_VERSION = (%d, %d, %d)" % (ma, mi, pa))
    w("HEADER_VERSION_NUMBER = 0x%06x" % ((ma << 16) | (mi << 8) | pa))
    w("")
    w("# ---- macros (integer #defines)")
    for k, v in api.macros.items():
        w("%s = %d" % (k, v))
    w("")
    w("# ---- enums: one constant per value, and a dict per enum type")
    for name, vals in api.enums.items():
        w("")
        for cname, v in vals:
            w("%s = %d" % (cname, v))
        w("%s = {%s}" % (name, ", ".join("%r: %d" % (c, v) for c, v in vals)))
    w("")
    w("ENUMS = {%s}" % ", ".join("%r: %s" % (n, n) for n in api.enums))
    w("")
    w("# ---- client options: one keyword per parameter of each mlo_options_set_* setter, in")
    w("# header order (see OPTION_KEYWORDS in %s).  kind: str, bool, int, uint, double," % GENERATOR)
    w("# size, enum, callback; keep: the value that keeps the default; default: the documented")
    w("# default (passed when a sibling keyword of the same setter is given); scale: keyword")
    w("# unit / C unit; values: the names of an enum's constants.")
    w("OPTION_FIRST = %r" % OPTION_FIRST)
    w("OPTIONS = (")
    for opt in api.options:
        w("    %r," % (opt.as_dict(),))
    w(")")
    w("")
    w("# ---- error statuses: name -> (exception class, family status or None, value, doc);")
    w("# families come first.  Warnings (MLO_WARN_*) are not errors.")
    w("STATUS_ERRORS = {")
    for e in api.errors:
        w("    %r: (%r, %r, %d, %r)," % (e.status, e.py_class, e.family, e.value, e.doc))
    w("}")
    w("")
    w("# ---- opaque handles")
    for name, tag in api.handles.items():
        w("")
        w("class %s(_C.Structure):" % name)
        w('    """Opaque struct %s (only ever used through a pointer)."""' % tag)
        w("    _fields_ = []")
    w("")
    w("# ---- callback types")
    for name, cb in api.callbacks.items():
        res = _py_type(api, cb.ret, ("void",) if cb.ret.base == "void" and cb.ret.ptr == 0
                       else ("scalar", scalar_kind(api, cb.ret.base)))
        args = ", ".join(_py_type(api, p.type, p.role) for p in cb.params)
        w("%s = _C.CFUNCTYPE(%s, %s)" % (name, res, args))
    w("")
    w("# ---- functions: name -> (restype, argtypes, parameter names, doc)")
    w("PROTOTYPES = {")
    for f in api.functions:
        res = _py_type(api, f.ret, f.ret_role)
        args = ", ".join(_py_type(api, p.type, p.role) for p in f.params)
        names = ", ".join(repr(p.name) for p in f.params)
        w("    %r: (%s, [%s], (%s%s),\n        %r)," % (f.name, res, args, names,
                                                   "," if len(f.params) == 1 else "", f.doc))
    w("}")
    w("FUNCTIONS = tuple(PROTOTYPES)")
    w("")
    w("# C signatures, for error messages and documentation")
    w("SIGNATURES = {")
    for f in api.functions:
        sig = "%s(%s)" % (f.ret.c(f.name), ", ".join(p.type.c(p.name) for p in f.params) or "void")
        w("    %r: %r," % (f.name, sig))
    w("}")
    w("")
    w('''
def bind(lib):
    """Sets restype and argtypes of every function of the CDLL `lib`.

    Returns the names of the functions the loaded library lacks (an older library
    than the header): calling those is then the caller's business."""
    missing = []
    for name, (res, args, _names, doc) in PROTOTYPES.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        f.restype = res
        f.argtypes = args
        try:
            f.__doc__ = SIGNATURES[name] + "\\n\\n" + doc
        except (AttributeError, TypeError):
            pass
    return missing


def raw(lib, name):
    """A second function object for `name` with restype set and no argtypes.

    ctypes converts arguments through argtypes with one Python-level call per
    argument; a caller that already holds ctypes objects (a handle pointer, bytes,
    c_double(...), c_int64(...)) saves that cost on a hot path by calling this."""
    f = lib._FuncPtr((name, lib))
    f.restype = PROTOTYPES[name][0]
    return f
''')
    return "\n".join(o)


# ---------------------------------------------------------------------------
# R

R_PRELUDE = r'''/* R .Call glue for mlo: generated by %(gen)s from %(header)s.  Do not edit.
 *
 * One wrapper per public function (mlor_<function>), registered as "<function>":
 * in R, .Call(C_<function>, ...) (the package's NAMESPACE uses .fixes = "C_").
 * Conventions:
 *  - handles are external pointers tagged with their C type name; a destroyed
 *    handle (closed client, freed options) has a NULL address and is passed as
 *    NULL, so the library answers MLO_ERR_INVALID_ARGUMENT instead of touching
 *    freed memory; a handle obtained through another keeps it alive (and dead
 *    with it) through the pointer's "protected" slot;
 *  - character(1) / NA / NULL for strings (NA and NULL are C NULL);
 *  - numbers are doubles or integers; int64_t travels as a double (exact to 2^53);
 *  - arrays are vectors of length n, or of length 1 (recycled);
 *  - a byte buffer (const void *data, size_t len) is a raw vector, passed as is;
 *  - a callback other than the error callback is not an R argument: a generated
 *    collector gathers what it is called with (without calling R) and the wrapper
 *    returns one vector per callback parameter, next to the status;
 *  - a function with out-parameters returns list(status, <out>...); others return
 *    their C result (status as an integer).
 */
#define R_NO_REMAP
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlo.h"

/* The error sink (mlo_r_sink.c): collects callback messages without calling R. */
void mlor_error_sink(void *user_data, mlo_status status, const char *message);
SEXP mlor_take_errors(SEXP which);
void mlor_sink_init(void);

static inline void *mlor_handle(SEXP x, const char *tag, const char *what) {
    if (Rf_isNull(x))
        return NULL;
    if (TYPEOF(x) != EXTPTRSXP || TYPEOF(R_ExternalPtrTag(x)) != SYMSXP ||
        strcmp(CHAR(PRINTNAME(R_ExternalPtrTag(x))), tag) != 0)
        Rf_error("%%s: expected an %%s handle", what, tag);
    /* a handle whose owner was destroyed is dead too */
    for (SEXP p = x; p != R_NilValue && TYPEOF(p) == EXTPTRSXP; p = R_ExternalPtrProtected(p))
        if (R_ExternalPtrAddr(p) == NULL)
            return NULL;
    return R_ExternalPtrAddr(x);
}

/* Whether a handle's owner chain (its "protected" slot, and that one's...) is alive. */
static inline int mlor_alive(SEXP p) {
    for (; p != R_NilValue && TYPEOF(p) == EXTPTRSXP; p = R_ExternalPtrProtected(p))
        if (R_ExternalPtrAddr(p) == NULL)
            return 0;
    return 1;
}

static inline SEXP mlor_wrap(void *ptr, const char *tag, SEXP owner, R_CFinalizer_t fin) {
    if (!ptr)
        return R_NilValue;
    SEXP x = PROTECT(R_MakeExternalPtr(ptr, Rf_install(tag), owner));
    if (fin)
        R_RegisterCFinalizerEx(x, fin, FALSE); /* at GC; the R layer closes at exit */
    Rf_setAttrib(x, R_ClassSymbol, Rf_mkString(tag));
    UNPROTECT(1);
    return x;
}

static inline const char *mlor_str(SEXP x, const char *what) {
    if (Rf_isNull(x))
        return NULL;
    if (TYPEOF(x) != STRSXP || XLENGTH(x) != 1)
        Rf_error("%%s: expected a single string", what);
    if (STRING_ELT(x, 0) == NA_STRING)
        return NULL;
    return Rf_translateCharUTF8(STRING_ELT(x, 0));
}

static inline double mlor_num(SEXP x, const char *what) {
    if ((TYPEOF(x) != REALSXP && TYPEOF(x) != INTSXP && TYPEOF(x) != LGLSXP) || XLENGTH(x) != 1)
        Rf_error("%%s: expected a single number", what);
    if (TYPEOF(x) == REALSXP)
        return REAL(x)[0];
    int v = TYPEOF(x) == INTSXP ? INTEGER(x)[0] : LOGICAL(x)[0];
    return v == NA_INTEGER ? NA_REAL : (double)v;
}

static inline double mlor_whole(SEXP x, const char *what, double lo, double hi) {
    double v = mlor_num(x, what);
    if (ISNAN(v) || v != floor(v) || v < lo || v > hi)
        Rf_error("%%s: expected a whole number in [%%.0f, %%.0f]", what, lo, hi);
    return v;
}

static inline double mlor_to_double(SEXP x, const char *what) { return mlor_num(x, what); }
static inline int mlor_to_int(SEXP x, const char *what) {
    return (int)mlor_whole(x, what, INT_MIN, INT_MAX);
}
static inline unsigned mlor_to_uint(SEXP x, const char *what) {
    return (unsigned)mlor_whole(x, what, 0, UINT_MAX);
}
static inline int64_t mlor_to_int64(SEXP x, const char *what) {
    return (int64_t)mlor_whole(x, what, -9007199254740992.0, 9007199254740992.0);
}
static inline uint64_t mlor_to_uint64(SEXP x, const char *what) {
    return (uint64_t)mlor_whole(x, what, 0, 9007199254740992.0);
}
static inline size_t mlor_to_size(SEXP x, const char *what) {
    return (size_t)mlor_whole(x, what, 0, 9007199254740992.0);
}

static inline void mlor_check_len(SEXP x, size_t n, const char *what) {
    if (Rf_isNull(x))
        return;
    R_xlen_t len = XLENGTH(x);
    if (!(len == (R_xlen_t)n || (len == 1 && n > 0)))
        Rf_error("%%s: length %%lld, expected %%llu or 1", what, (long long)len,
                 (unsigned long long)n);
}

static inline const char *const *mlor_str_array(SEXP x, size_t n, const char *what) {
    if (Rf_isNull(x))
        return NULL;
    if (TYPEOF(x) != STRSXP)
        Rf_error("%%s: expected a character vector", what);
    mlor_check_len(x, n, what);
    const char **a = (const char **)R_alloc(n ? n : 1, sizeof *a);
    if (XLENGTH(x) == 1 && n > 1) {
        SEXP s = STRING_ELT(x, 0);
        const char *v = s == NA_STRING ? NULL : Rf_translateCharUTF8(s);
        for (size_t i = 0; i < n; i++)
            a[i] = v;
    } else {
        for (size_t i = 0; i < n; i++) {
            SEXP s = STRING_ELT(x, (R_xlen_t)i);
            a[i] = s == NA_STRING ? NULL : Rf_translateCharUTF8(s);
        }
    }
    return a;
}

static inline const double *mlor_double_array(SEXP x, size_t n, const char *what) {
    if (Rf_isNull(x))
        return NULL;
    mlor_check_len(x, n, what);
    if (TYPEOF(x) == REALSXP && (XLENGTH(x) == (R_xlen_t)n))
        return REAL(x); /* no copy */
    if (TYPEOF(x) != REALSXP && TYPEOF(x) != INTSXP && TYPEOF(x) != LGLSXP)
        Rf_error("%%s: expected a numeric vector", what);
    double *a = (double *)R_alloc(n ? n : 1, sizeof *a);
    int rec = XLENGTH(x) == 1;
    for (size_t i = 0; i < n; i++) {
        R_xlen_t j = rec ? 0 : (R_xlen_t)i;
        if (TYPEOF(x) == REALSXP)
            a[i] = REAL(x)[j];
        else {
            int v = TYPEOF(x) == INTSXP ? INTEGER(x)[j] : LOGICAL(x)[j];
            a[i] = v == NA_INTEGER ? NA_REAL : (double)v;
        }
    }
    return a;
}

static inline const int64_t *mlor_int64_array(SEXP x, size_t n, const char *what) {
    if (Rf_isNull(x))
        return NULL;
    mlor_check_len(x, n, what);
    if (TYPEOF(x) != REALSXP && TYPEOF(x) != INTSXP)
        Rf_error("%%s: expected a numeric vector", what);
    int64_t *a = (int64_t *)R_alloc(n ? n : 1, sizeof *a);
    int rec = XLENGTH(x) == 1;
    for (size_t i = 0; i < n; i++) {
        R_xlen_t j = rec ? 0 : (R_xlen_t)i;
        double v;
        if (TYPEOF(x) == REALSXP) {
            v = REAL(x)[j];
        } else {
            int iv = INTEGER(x)[j];
            v = iv == NA_INTEGER ? NA_REAL : (double)iv;
        }
        if (ISNAN(v) || v != floor(v) || fabs(v) > 9007199254740992.0)
            Rf_error("%%s[%%llu]: expected a whole number", what, (unsigned long long)i + 1);
        a[i] = (int64_t)v;
    }
    return a;
}

static inline SEXP mlor_result(int status, int nout, const char **names, SEXP *values) {
    SEXP res = PROTECT(Rf_allocVector(VECSXP, nout + 1));
    SEXP nm = PROTECT(Rf_allocVector(STRSXP, nout + 1));
    SET_VECTOR_ELT(res, 0, Rf_ScalarInteger(status));
    SET_STRING_ELT(nm, 0, Rf_mkChar("status"));
    for (int i = 0; i < nout; i++) {
        SET_VECTOR_ELT(res, i + 1, values[i]);
        SET_STRING_ELT(nm, i + 1, Rf_mkChar(names[i]));
    }
    Rf_setAttrib(res, R_NamesSymbol, nm);
    UNPROTECT(2);
    return res;
}

/* A byte buffer: a raw vector (not copied), or NULL (no bytes). */
static inline const void *mlor_bytes(SEXP x, size_t *len, const char *what) {
    *len = 0;
    if (Rf_isNull(x))
        return NULL;
    if (TYPEOF(x) != RAWSXP)
        Rf_error("%%s: expected a raw vector", what);
    *len = (size_t)XLENGTH(x);
    return RAW(x);
}

/* Copies s for a collector (malloc; never calls R).  *oom set on failure. */
static inline char *mlor_strdup(const char *s, int *oom) {
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = (char *)malloc(n);
    if (!d)
        *oom = 1;
    else
        memcpy(d, s, n);
    return d;
}

static inline SEXP mlor_string_or_null(const char *s) {
    return s ? Rf_ScalarString(Rf_mkCharCE(s, CE_UTF8)) : R_NilValue;
}
'''


def _r_in(api, f, p):
    """C statements turning the SEXP argument of p into a C local; returns (decl, expr)."""
    kind = p.role[0]
    what = '"%s(%s)"' % (f.name, p.name)
    a = "s_" + p.name
    if kind == "scalar":
        sk = p.role[1]
        if sk == "enum":
            ctype = p.type.base
            return "%s %s = (%s)mlor_to_int(%s, %s);" % (ctype, p.name, ctype, a, what)
        conv = {"int": "mlor_to_int", "uint": "mlor_to_uint", "int64": "mlor_to_int64",
                "uint64": "mlor_to_uint64", "double": "mlor_to_double",
                "size": "mlor_to_size"}[SCALARS[sk][1]]
        return "%s %s = (%s)%s(%s, %s);" % (p.type.base, p.name, p.type.base, conv, a, what)
    if kind == "str":
        return "const char *%s = mlor_str(%s, %s);" % (p.name, a, what)
    if kind == "handle":
        return "%s%s *%s = (%s *)mlor_handle(%s, \"%s\", %s);" % (
            "const " if p.type.const_base else "", p.role[1], p.name, p.role[1], a, p.role[1], what)
    if kind == "str_array":
        return "const char *const *%s = mlor_str_array(%s, n, %s);" % (p.name, a, what)
    if kind == "array":
        sk = p.role[1]
        if sk == "double":
            return "const double *%s = mlor_double_array(%s, n, %s);" % (p.name, a, what)
        if sk == "int64_t":
            return "const int64_t *%s = mlor_int64_array(%s, n, %s);" % (p.name, a, what)
        raise GenError("%s: no R conversion for array of %s" % (f.name, sk))
    if kind == "bytes":
        ln = [q for q in f.params if q.role == ("bytes_len", p.name)][0]
        return "size_t %s = 0;\n    const void *%s = mlor_bytes(%s, &%s, %s);" % (
            ln.name, p.name, a, ln.name, what)
    if kind == "callback":
        if p.role[1] not in R_SINK_CALLBACKS:
            raise GenError("%s: callback %s is collected, not converted" % (f.name, p.name))
        return ("%s %s = Rf_asLogical(%s) == 1 ? %s : NULL;"
                % (p.role[1], p.name, a, R_SINK_CALLBACKS[p.role[1]]))
    raise GenError("%s: no R conversion for %s" % (f.name, p.name))


def _coll_kind(api, cb, q):
    """R vector kind of a collected callback parameter: str, int or double."""
    if q.role[0] == "str":
        return "str"
    if q.role[0] == "scalar":
        sk = q.role[1]
        return "int" if sk == "enum" or SCALARS[sk][1] == "int" else "double"
    raise GenError("callback %s: cannot collect parameter %s" % (cb.name, q.name))


def _r_collector(api, name, cb):
    """C collector for callback type `name`: a struct of growing arrays, its free
    function (a finalizer of the external pointer holding it) and the callback
    appending to it.  The callback never calls R (it runs inside the library)."""
    o = []
    w = o.append
    ups = [i for i, q in enumerate(cb.params) if q.role[0] == "userdata"]
    if len(ups) != 1:
        raise GenError("callback %s: needs exactly one void *user_data to be collected" % name)
    rk = scalar_kind(api, cb.ret.base) if cb.ret.ptr == 0 else None
    if not (cb.ret.base == "void" and cb.ret.ptr == 0) and rk not in ("int", "enum"):
        raise GenError("callback %s: collected callbacks return void or int" % name)
    qs = [q for q in cb.params if q.role[0] != "userdata"]

    def ctype(q):
        if q.role[0] == "str":
            return "char *"
        return "int " if q.role[1] == "enum" else q.type.base + " "

    w("/* %s: what the library passes, collected for R */" % name)
    w("typedef struct {")
    w("    size_t n, cap;")
    w("    int oom;")
    for q in qs:
        w("    %s*%s;" % (ctype(q), q.name))
    w("} mlor_coll_%s;" % name)
    w("")
    w("static void mlor_collfree_%s(SEXP x) {" % name)
    w("    mlor_coll_%s *c = (mlor_coll_%s *)R_ExternalPtrAddr(x);" % (name, name))
    w("    if (!c)")
    w("        return;")
    w("    R_ClearExternalPtr(x);")
    for q in qs:
        if q.role[0] == "str":
            w("    for (size_t i = 0; i < c->n; i++)")
            w("        free(c->%s[i]);" % q.name)
    for q in qs:
        w("    free(c->%s);" % q.name)
    w("    free(c);")
    w("}")
    w("")
    ret = "void" if cb.ret.base == "void" else "int"
    stop = "" if ret == "void" else " 1"
    go = "" if ret == "void" else " 0"
    w("static %s mlor_collect_%s(%s) {" % (ret, name, ", ".join(
        ("void *" + q.name) if q.role[0] == "userdata" else q.type.c(q.name) for q in cb.params)))
    w("    mlor_coll_%s *c = (mlor_coll_%s *)%s;" % (name, name, cb.params[ups[0]].name))
    w("    if (c->oom)")
    w("        return%s;" % stop)
    w("    if (c->n == c->cap) {")
    w("        size_t cap = c->cap ? 2 * c->cap : 16;")
    w("        void *p;")
    for q in qs:
        w("        if (!(p = realloc(c->%s, cap * sizeof *c->%s))) {" % (q.name, q.name))
        w("            c->oom = 1;")
        w("            return%s;" % stop)
        w("        }")
        w("        c->%s = p;" % q.name)
    w("        c->cap = cap;")
    w("    }")
    for q in qs:
        if q.role[0] == "str":
            w("    c->%s[c->n] = mlor_strdup(%s, &c->oom);" % (q.name, q.name))
        else:
            w("    c->%s[c->n] = %s;" % (q.name, q.name))
    w("    c->n++;")
    w("    return%s;" % (stop if ret == "void" else " c->oom"))
    w("}")
    w("")
    return o


def gen_r_glue(api, header_name):
    o = [R_PRELUDE % {"gen": GENERATOR, "header": header_name}]
    w = o.append
    # Every function but one is a weak reference: the package still loads against a
    # libmlo older than the header (same major version), and a function it lacks
    # answers MLO_ERR_NOT_SUPPORTED (or an R error when it returns no status).  The
    # strong one (mlo_version, in every libmlo) keeps the library a dependency of
    # the package's shared object.
    w("#if defined(__GNUC__) && defined(__ELF__)")
    for f in api.functions:
        if f.name not in R_STRONG:
            w("#pragma weak %s" % f.name)
    w("#define MLOR_HAVE(f) ((f) != NULL)")
    w("#else")
    w("#define MLOR_HAVE(f) 1")
    w("#endif")
    w("")
    # finalizers for handle types with destructors
    for tname, dtor in api.destructors.items():
        if tname not in api.handles:
            raise GenError("DESTRUCTORS_OVERRIDE names %s, which the header no longer has" % tname)
        if dtor not in {f.name for f in api.functions}:
            raise GenError("DESTRUCTORS_OVERRIDE names %s, which the header no longer has" % dtor)
        w("/* garbage collection of a %s: %s, unless its owner is already gone" % (tname, dtor))
        w(" * (then the owner released it, or will) */")
        w("static void mlor_finalize_%s(SEXP x) {" % tname)
        w("    void *p = R_ExternalPtrAddr(x);")
        w("    if (p) {")
        w("        int owner_alive = mlor_alive(R_ExternalPtrProtected(x));")
        w("        R_ClearExternalPtr(x);")
        w("        if (owner_alive)")
        w("            (void)%s((%s *)p);" % (dtor, tname))
        w("    }")
        w("}")
        w("")
    # collectors for the callback types R does not serve with a sink
    for cname, cb in api.callbacks.items():
        if cname not in R_SINK_CALLBACKS and any(
                r_collects(p) and p.role[1] == cname for f in api.functions for p in f.params):
            o.extend(_r_collector(api, cname, cb))
    for f in api.functions:
        rargs = r_args(f)
        w("/* %s */" % re.sub(r"\s+", " ", "%s(%s)" % (
            f.ret.c(f.name), ", ".join(p.type.c(p.name) for p in f.params) or "void")))
        w("static SEXP mlor_%s(%s) {" % (f.name, ", ".join("SEXP s_" + p.name for p in rargs) or "void"))
        outs = [p for p in f.params if p.role[0] in ("out_handle", "out_scalar")]
        colls = [p for p in f.params if r_collects(p)]
        if len(colls) > 1:
            raise GenError("%s: R glue supports one collected callback per function" % f.name)
        if colls and not (f.ret_role[0] == "scalar" and f.ret_role[1] in ("int", "enum")):
            raise GenError("%s: a function with a collected callback must return a status" % f.name)
        cb = api.callbacks[colls[0].role[1]] if colls else None
        cparams = [q for q in cb.params if q.role[0] != "userdata"] if cb else []
        outnames = [p.name for p in outs] + [q.name for q in cparams]
        if len(set(outnames)) != len(outnames) or "status" in outnames:
            raise GenError("%s: R result names collide: %s" % (f.name, outnames))
        if f.name in R_STRONG:
            pass
        elif f.ret_role == ("scalar", "int") or (f.ret_role[0] == "scalar" and outnames):
            if outnames:
                w("    if (!MLOR_HAVE(%s)) {" % f.name)
                w("        SEXP nil[%d];" % len(outnames))
                w("        const char *nn[%d] = {%s};" % (len(outnames), ", ".join('"%s"' % n for n in outnames)))
                for i in range(len(outnames)):
                    w("        nil[%d] = R_NilValue;" % i)
                w("        return mlor_result(MLO_ERR_NOT_SUPPORTED, %d, nn, nil);" % len(outnames))
                w("    }")
            else:
                w("    if (!MLOR_HAVE(%s))" % f.name)
                w("        return Rf_ScalarInteger(MLO_ERR_NOT_SUPPORTED);")
        else:
            w("    if (!MLOR_HAVE(%s))" % f.name)
            w('        Rf_error("mlo: %s is not in the libmlo loaded");' % f.name)
        # n first: the arrays depend on it
        ordered = sorted(rargs, key=lambda p: 0 if p.role == ("scalar", "size_t") and p.name == "n" else 1)
        for p in ordered:
            w("    " + _r_in(api, f, p))
        for p in outs:
            if p.role[0] == "out_handle":
                w("    %s *%s = NULL;" % (p.role[1], p.name))
            else:
                w("    %s %s = 0;" % (p.type.base, p.name))
        nprot = 0
        if cb:
            t = cb.name
            # the collector's memory belongs to an external pointer: freed at the end,
            # or by the garbage collector if an R error interrupts the wrapper
            w("    SEXP coll_x = PROTECT(R_MakeExternalPtr(NULL, R_NilValue, R_NilValue));")
            w("    R_RegisterCFinalizerEx(coll_x, mlor_collfree_%s, TRUE);" % t)
            w("    mlor_coll_%s *coll = (mlor_coll_%s *)calloc(1, sizeof *coll);" % (t, t))
            w("    if (!coll)")
            w('        Rf_error("%s: out of memory");' % f.name)
            w("    R_SetExternalPtrAddr(coll_x, coll);")
            nprot += 1
        call_args = []
        prev = None
        for p in f.params:
            if p.role[0] == "userdata":
                call_args.append("coll" if prev is not None and r_collects(prev) else "NULL")
            elif p.role[0] in ("out_handle", "out_scalar"):
                call_args.append("&" + p.name)
            elif r_collects(p):
                call_args.append("mlor_collect_" + p.role[1])
            else:
                call_args.append(p.name)
            prev = p
        call = "%s(%s)" % (f.name, ", ".join(call_args))
        rr = f.ret_role
        # destructor: clear the external pointer after the call (whatever it returns)
        dtor_of = [t for t, d in api.destructors.items() if d == f.name]
        if rr[0] == "void":
            w("    %s;" % call)
            res = "R_NilValue"
        elif rr[0] == "scalar":
            ctype = "int" if rr[1] == "enum" else f.ret.base
            w("    %s ret = %s;" % (ctype, call))
            if SCALARS.get(rr[1], ("", "int"))[1] == "int" or rr[1] == "enum":
                res = "Rf_ScalarInteger((int)ret)"
            else:
                res = "Rf_ScalarReal((double)ret)"
        elif rr[0] == "str":
            w("    const char *ret = %s;" % call)
            res = "mlor_string_or_null(ret)"
        elif rr[0] == "handle":
            w("    %s *ret = %s;" % (rr[1], call))
            fin = "mlor_finalize_" + rr[1] if rr[1] in api.destructors else "NULL"
            res = 'mlor_wrap(ret, "%s", R_NilValue, %s)' % (rr[1], fin)
        else:
            raise GenError(f.name)
        if dtor_of:
            hp = [p for p in f.params if p.role == ("handle", dtor_of[0])][0]
            w("    if (!Rf_isNull(s_%s) && %s)" % (hp.name, hp.name))
            w("        R_ClearExternalPtr(s_%s);" % hp.name)
        if outnames:
            w("    SEXP outv[%d];" % len(outnames))
            w("    const char *outn[%d] = {%s};" % (len(outnames), ", ".join('"%s"' % n for n in outnames)))
            for i, p in enumerate(outs):
                if p.role[0] == "out_handle":
                    t = p.role[1]
                    # A handle made from another handle belongs to it and dies with it
                    # (a run with its client, a histogram with its run): the owner is the
                    # first non-const handle parameter.  A const one is only read (the
                    # options a client is opened with), so the new handle is its own.
                    owners = [q for q in f.params if q.role[0] == "handle"
                              and not q.type.const_base]
                    owner = ("s_" + owners[0].name) if owners else "R_NilValue"
                    fin = "mlor_finalize_" + t if t in api.destructors else "NULL"
                    w('    outv[%d] = PROTECT(mlor_wrap(%s, "%s", %s, %s));' % (i, p.name, t, owner, fin))
                else:
                    sk = p.role[1]
                    if SCALARS.get(sk, ("", "int"))[1] == "int" or sk == "enum":
                        w("    outv[%d] = PROTECT(Rf_ScalarInteger((int)%s));" % (i, p.name))
                    else:
                        w("    outv[%d] = PROTECT(Rf_ScalarReal((double)%s));" % (i, p.name))
                nprot += 1
            if cb:
                w("    if (coll->oom && ret == MLO_OK)")
                w("        ret = MLO_ERR_NO_MEMORY;")
                for j, q in enumerate(cparams):
                    i = len(outs) + j
                    kind = _coll_kind(api, cb, q)
                    sexpt = {"str": "STRSXP", "int": "INTSXP", "double": "REALSXP"}[kind]
                    w("    outv[%d] = PROTECT(Rf_allocVector(%s, (R_xlen_t)coll->n));" % (i, sexpt))
                    nprot += 1
                    w("    for (size_t i = 0; i < coll->n; i++)")
                    if kind == "str":
                        w("        SET_STRING_ELT(outv[%d], (R_xlen_t)i, coll->%s[i] ? "
                          "Rf_mkCharCE(coll->%s[i], CE_UTF8) : NA_STRING);" % (i, q.name, q.name))
                    elif kind == "int":
                        w("        INTEGER(outv[%d])[i] = (int)coll->%s[i];" % (i, q.name))
                    else:
                        w("        REAL(outv[%d])[i] = (double)coll->%s[i];" % (i, q.name))
                w("    mlor_collfree_%s(coll_x);" % cb.name)
            w("    SEXP res = mlor_result((int)ret, %d, outn, outv);" % len(outnames))
            w("    UNPROTECT(%d);" % nprot)
            w("    return res;")
        else:
            w("    return %s;" % res)
        w("}")
        w("")
    w("static const R_CallMethodDef mlor_call_methods[] = {")
    for f in api.functions:
        w('    {"%s", (DL_FUNC)&mlor_%s, %d},' % (f.name, f.name, len(r_args(f))))
    for name, n in R_EXTRA_ROUTINES.items():
        w('    {"%s", (DL_FUNC)&%s, %d},' % (name, name, n))
    w("    {NULL, NULL, 0}};")
    w("")
    w("void R_init_mlo(DllInfo *dll) {")
    w("    mlor_sink_init();")
    w("    R_registerRoutines(dll, NULL, mlor_call_methods, NULL, NULL);")
    w("    R_useDynamicSymbols(dll, FALSE);")
    w("    R_forceSymbols(dll, TRUE);")
    w("}")
    w("")
    return "\n".join(o)


def gen_r_stubs(api, header_name):
    o = []
    w = o.append
    w("# Low-level R stubs of mlo's C ABI: generated by %s from %s.  Do not edit." % (GENERATOR, header_name))
    w("# Each .c_<function>() calls the C glue (mlo_r_glue.c); the functions in mlo.R")
    w("# build the R API on top of these.")
    w("")
    w(".mlo_header_sha256 <- %s" % json.dumps(api.sha256))
    ma, mi, pa = (api.macros.get("MLO_VERSION_" + k, 0) for k in ("MAJOR", "MINOR", "PATCH"))
    w('.mlo_header_version <- "%d.%d.%d"' % (ma, mi, pa))
    w("")
    w(".mlo_enums <- list(")
    items = []
    for name, vals in api.enums.items():
        items.append("  %s = c(%s)" % (name, ", ".join("%s = %dL" % (c, v) for c, v in vals)))
    w(",\n".join(items))
    w(")")
    w("")
    w("# Client options: one argument of mlo_client() per parameter of each")
    w("# mlo_options_set_* setter (see OPTION_KEYWORDS in %s); mlo.R applies them." % GENERATOR)
    w(".mlo_options <- list(")
    items = []
    for opt in api.options:
        if opt.kind == "callback":
            continue  # R installs its own error sink
        items.append("  list(keyword = %s, setter = %s, index = %dL, kind = %s, keep = %s, "
                     "default = %s, scale = %s, values = %s)"
                     % (_r_lit(opt.keyword), _r_lit(".c_" + opt.setter), opt.index + 1,
                        _r_lit(opt.kind), _r_lit(opt.keep), _r_lit(opt.default),
                        _r_lit(opt.scale), _r_lit(opt.values)))
    w(",\n".join(items))
    w(")")
    w(".mlo_option_keywords <- vapply(.mlo_options, function(o) o$keyword, \"\")")
    w("")
    w("# Error statuses -> condition classes, most specific first (mlo_error, error and")
    w("# condition are added by .mlo_stop).")
    w(".mlo_conditions <- list(")
    w(",\n".join("  %s = c(%s)" % (e.status, ", ".join(_r_lit(c) for c in
                                                       r_condition_classes(api, e)))
                 for e in sorted(api.errors, key=lambda e: e.value)))
    w(")")
    w("")
    for f in api.functions:
        args = [p.name for p in r_args(f)]
        if f.doc:
            for ln in f.doc.split("\n")[:1]:
                w("# %s" % ln.strip())
        w(".c_%s <- function(%s) .Call(C_%s%s)" % (f.name, ", ".join(args), f.name,
                                                  "".join(", " + a for a in args)))
    w("")
    return "\n".join(o)


def _r_lit(v):
    """A Python value as an R literal."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return "%dL" % v if abs(v) < 2 ** 31 else repr(float(v))
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "c(%s)" % ", ".join("%s = %s" % (k, _r_lit(x)) for k, x in v.items())
    raise GenError("no R literal for %r" % (v,))


def _rd_escape(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("{", "\\{") \
        .replace("}", "\\}")


def gen_r_rd(api, header_name):
    """man/mlo_client.Rd: the usage and arguments of mlo_client(), from the setters."""
    kws = [o for o in api.options if o.kind != "callback"]
    usage = "mlo_client(" + ", ".join("%s = NULL" % o.keyword for o in kws) + ")"
    # wrap the usage line as R CMD check likes it (under 90 columns)
    lines, cur = [], ""
    for part in usage.split(", "):
        piece = part if not cur else cur + ", " + part
        if len(piece) > 86 and cur:
            lines.append(cur + ",")
            cur = "           " + part
        else:
            cur = piece
    lines.append(cur)
    o = []
    w = o.append
    w("%% Generated by %s from %s: do not edit." % (GENERATOR, header_name))
    w("% The arguments are the client options of the header, one per parameter of each")
    w("% mlo_options_set_* setter.")
    w("\\name{mlo_client}")
    w("\\alias{mlo_client}")
    w("\\title{Open a client of a tracking server}")
    w("\\description{")
    w("\\code{mlo_client} opens a client of one tracking server: its own queue, store and")
    w("sending thread.  Every argument left \\code{NULL} falls back to MLflow's environment")
    w("variable, then to the library's default.  The functions without a \\code{client}")
    w("argument use a default client, opened at the first run from")
    w("\\code{\\link{mlo_set_tracking_uri}} or \\env{MLFLOW_TRACKING_URI}; see")
    w("\\code{\\link{mlo_close}} for closing, flushing and the client's counters.")
    w("}")
    w("\\usage{")
    for ln in lines:
        w(ln)
    w("}")
    w("\\arguments{")
    done = set()
    for opt in kws:
        if opt.setter in done:
            continue
        done.add(opt.setter)
        group = [x for x in kws if x.setter == opt.setter]
        text = opt.doc
        if any(x.scale == 1000 for x in group):
            text = "In seconds (the C setter takes milliseconds). " + text
        text = _rd_escape(text)
        for x in group:
            if x.values:
                text += " \\code{%s}: one of %s." % (x.keyword, ", ".join(
                    '\\code{"%s"}' % k for k in x.values))
        w("\\item{%s}{%s}" % (", ".join(x.keyword for x in group), text))
    w("}")
    w("\\value{")
    w("The client.  Errors are conditions of class \\code{mlo_error} (and a class per kind,")
    w("such as \\code{mlo_invalid_key}, \\code{mlo_timeout}, \\code{mlo_config}).")
    w("}")
    w("\\examples{")
    w("\\dontrun{")
    w("cl <- mlo_client(\"http://127.0.0.1:5000\", queue_bytes = 2^26, backoff_jitter = 0.5)")
    w("run <- mlo_start_run(client = cl)")
    w("mlo_log_metric(\"x\", 1, run_id = run, client = cl)")
    w("mlo_end_run(run_id = run, client = cl)")
    w("mlo_close(cl)")
    w("}")
    w("}")
    w("")
    return "\n".join(o)


def gen_manifest(api, header_name):
    return json.dumps({
        "generator": GENERATOR,
        "header": header_name,
        "header_sha256": api.sha256,
        "functions": {f.name: {"params": [p.name for p in f.params],
                               "r_args": [p.name for p in r_args(f)],
                               "roles": [list(p.role) for p in f.params],
                               "returns": list(f.ret_role)} for f in api.functions},
        "enums": {k: dict(v) for k, v in api.enums.items()},
        "handles": sorted(api.handles),
        "callbacks": sorted(api.callbacks),
        "destructors": api.destructors,
        "options": [o.as_dict() for o in api.options],
        "errors": {e.status: {"python": e.py_class, "r": r_condition_classes(api, e),
                              "family": e.family, "value": e.value} for e in api.errors},
    }, indent=1, sort_keys=True) + "\n"


OUTPUTS = {
    "py": ("_mlo_ffi.py", gen_python),
    "rglue": ("mlo_r_glue.c", gen_r_glue),
    "rstubs": ("mlo_r_stubs.R", gen_r_stubs),
    "rdoc": ("mlo_client.Rd", gen_r_rd),
    "json": ("mlo_bindings.json", gen_manifest),
}


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                os.utime(path)  # ninja compares mtimes: the output is up to date
                return
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--header", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"),
                    help="C compiler used as preprocessor (default $CC or cc)")
    ap.add_argument("--only", action="append", choices=sorted(OUTPUTS),
                    help="write only these outputs (repeatable)")
    ap.add_argument("--py-name", default=None, help="file name for the Python output")
    a = ap.parse_args(argv)
    try:
        api = parse_header(a.header, a.cc)
        if not api.functions:
            raise GenError("no mlo_* function found in %s" % a.header)
        os.makedirs(a.outdir, exist_ok=True)
        for key in a.only or sorted(OUTPUTS):
            fname, fn = OUTPUTS[key]
            if key == "py" and a.py_name:
                fname = a.py_name
            write_if_changed(os.path.join(a.outdir, fname), fn(api, "include/mlo.h"))
    except GenError as e:
        sys.stderr.write("gen_bindings: error: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
