"""YAML as MLflow writes it (yaml.safe_dump(..., default_flow_style=False)), with the
standard library: dump() emits the same text PyYAML's safe_dump does for the data of
model files (mappings, sequences, str, int, float, bool, None), including its quoting
rules (a string that would read back as another type is quoted, a timestamp-like one
too) and its folding of long scalars at 80 columns; load() reads that subset back (block
mappings and sequences, plain, single- and double-quoted scalars, possibly folded, and
empty or simple flow collections) and is used when PyYAML is not importable."""

import math
import re

BEST_WIDTH = 80
INDENT = 2

# PyYAML's implicit resolvers (yaml/resolver.py): a plain scalar matching one of these
# reads back as something else than a string, so such strings are quoted.
_BOOL = re.compile(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off"
                   r"|OFF)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
                    r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
                    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                  r"|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_TIMESTAMP = re.compile(r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
                        r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
                        r"(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
                        r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$")
_OTHER = re.compile(r"^(?:<<|=)$")


def _resolves_to_non_str(s):
    return any(r.match(s) for r in (_BOOL, _FLOAT, _INT, _NULL, _TIMESTAMP, _OTHER))


def _printable(ch):
    # allow_unicode=False (safe_dump's default): only printable ASCII and newline
    return ch == "\n" or " " <= ch <= "~"


_ESCAPES = {"\0": "0", "\x07": "a", "\x08": "b", "\x09": "t", "\x0A": "n", "\x0B": "v",
            "\x0C": "f", "\x0D": "r", "\x1B": "e", '"': '"', "\\": "\\", "\x85": "N",
            "\xA0": "_", "\u2028": "L", "\u2029": "P"}


def _style(s):
    """"plain", "single" or "double": the style PyYAML's emitter picks for s in a block
    context (yaml/emitter.py analyze_scalar + choose_scalar_style)."""
    if s == "":
        return "single"
    if any(not _printable(c) for c in s):
        return "double"
    if "\n" in s:
        # PyYAML writes these single-quoted over several lines; double quotes read back
        # the same
        return "double"
    if s[0] == " " or s[-1] == " ":
        return "single"
    block_ok = True
    for i, ch in enumerate(s):
        nxt = s[i + 1] if i + 1 < len(s) else None
        followed_by_ws = nxt is None or nxt in " \t"
        if i == 0:
            if ch in "#,[]{}&*!|>'\"%@`":
                block_ok = False
            elif ch in "?:" and followed_by_ws:
                block_ok = False
            elif ch == "-" and followed_by_ws:
                block_ok = False
        else:
            if ch == ":" and followed_by_ws:
                block_ok = False
            if ch == "#" and s[i - 1] in " \t":
                block_ok = False
    if block_ok and not _resolves_to_non_str(s):
        return "plain"
    return "single"


class _Writer:
    def __init__(self):
        self.out = []
        self.column = 0

    def write(self, text):
        self.out.append(text)
        nl = text.rfind("\n")
        self.column = len(text) - nl - 1 if nl >= 0 else self.column + len(text)

    def newline(self, indent):
        self.write("\n" + " " * indent)

    def folded(self, text, indent, quote):
        """A plain (quote "") or single-quoted scalar, folded at a single space once the
        line is past BEST_WIDTH, as PyYAML's write_plain / write_single_quoted do."""
        if quote:
            self.write(quote)
        spaces = False
        start = end = 0
        n = len(text)
        while end <= n:
            ch = text[end] if end < n else None
            if spaces:
                if ch is None or ch != " ":
                    if start + 1 == end and self.column > BEST_WIDTH and \
                            (not quote or (start != 0 and end != n)):
                        self.newline(indent)
                    else:
                        self.write(text[start:end])
                    start = end
            elif ch is None or ch == " " or ch == "'":
                if start < end:
                    self.write(text[start:end])
                    start = end
            if quote and ch == "'":
                self.write("''")
                start = end + 1
            if ch is not None:
                spaces = ch == " "
            end += 1
        if quote:
            self.write(quote)


def _write_double_quoted(w, text, indent):
    """PyYAML's write_double_quoted: escapes, and folds with a backslash past
    BEST_WIDTH."""
    w.write('"')
    start = end = 0
    n = len(text)
    while end <= n:
        ch = text[end] if end < n else None
        if ch is None or ch in '"\\\x85\u2028\u2029\uFEFF' or not " " <= ch <= "~":
            if start < end:
                w.write(text[start:end])
                start = end
            if ch is not None:
                if ch in _ESCAPES:
                    data = "\\" + _ESCAPES[ch]
                elif ch <= "\xFF":
                    data = "\\x%02X" % ord(ch)
                elif ch <= "\uFFFF":
                    data = "\\u%04X" % ord(ch)
                else:
                    data = "\\U%08X" % ord(ch)
                w.write(data)
                start = end + 1
        if 0 < end < n - 1 and (ch == " " or start >= end) and \
                w.column + (end - start) > BEST_WIDTH:
            data = text[start:end] + "\\"
            if start < end:
                start = end
            w.write(data)
            w.newline(indent)
            if text[start] == " ":
                w.write("\\")
        end += 1
    w.write('"')


def _float(f):
    if math.isnan(f):
        return ".nan"
    if math.isinf(f):
        return ".inf" if f > 0 else "-.inf"
    r = repr(f).lower()
    if "." not in r and "e" in r:
        r = r.replace("e", ".0e", 1)
    return r


def _scalar(w, v, indent):
    if v is None:
        w.write("null")
    elif v is True:
        w.write("true")
    elif v is False:
        w.write("false")
    elif isinstance(v, int):
        w.write(str(v))
    elif isinstance(v, float):
        w.write(_float(v))
    else:
        s = str(v)
        style = _style(s)
        if style == "plain":
            w.folded(s, indent, "")
        elif style == "single":
            w.folded(s, indent, "'")
        else:
            _write_double_quoted(w, s, indent)


def _is_collection(v):
    return isinstance(v, (dict, list, tuple)) and len(v) > 0


def _node(w, v, indent, sort_keys):
    """Writes v, the cursor being right after "key:" / "-" (a space is written first for
    a scalar or an empty collection)."""
    if isinstance(v, dict) and v:
        items = sorted(v.items(), key=lambda kv: str(kv[0])) if sort_keys else list(v.items())
        for k, x in items:
            w.newline(indent)
            _mapping_entry(w, k, x, indent, sort_keys)
    elif isinstance(v, (list, tuple)) and v:
        for x in v:
            w.newline(indent)
            _sequence_entry(w, x, indent, sort_keys)
    else:
        w.write(" ")
        if isinstance(v, dict):
            w.write("{}")
        elif isinstance(v, (list, tuple)):
            w.write("[]")
        else:
            _scalar(w, v, indent + INDENT)


def _mapping_entry(w, k, v, indent, sort_keys):
    _scalar(w, k, indent + INDENT)
    w.write(":")
    if isinstance(v, dict) and v:
        _node(w, v, indent + INDENT, sort_keys)
    elif isinstance(v, (list, tuple)) and v:
        _node(w, v, indent, sort_keys)  # PyYAML's indentless sequence under a key
    else:
        _node(w, v, indent, sort_keys)


def _sequence_entry(w, x, indent, sort_keys):
    w.write("-")
    if isinstance(x, dict) and x:
        items = sorted(x.items(), key=lambda kv: str(kv[0])) if sort_keys else list(x.items())
        w.write(" ")
        for j, (k, y) in enumerate(items):
            if j:
                w.newline(indent + INDENT)
            _mapping_entry(w, k, y, indent + INDENT, sort_keys)
    elif isinstance(x, (list, tuple)) and x:
        w.write(" ")
        for j, y in enumerate(x):
            if j:
                w.newline(indent + INDENT)
            _sequence_entry(w, y, indent + INDENT, sort_keys)
    else:
        _node(w, x, indent, sort_keys)


def dump(data, sort_keys=True):
    """The text yaml.safe_dump(data, default_flow_style=False, sort_keys=sort_keys)
    gives."""
    w = _Writer()
    if isinstance(data, dict) and data:
        items = sorted(data.items(), key=lambda kv: str(kv[0])) if sort_keys else \
            list(data.items())
        for i, (k, v) in enumerate(items):
            if i:
                w.newline(0)
            _mapping_entry(w, k, v, 0, sort_keys)
        w.write("\n")
    elif isinstance(data, (list, tuple)) and data:
        for i, x in enumerate(data):
            if i:
                w.newline(0)
            _sequence_entry(w, x, 0, sort_keys)
        w.write("\n")
    else:
        _scalar(w, data, INDENT) if not isinstance(data, (dict, list, tuple)) else \
            w.write("{}" if isinstance(data, dict) else "[]")
        w.write("\n...\n" if not isinstance(data, (dict, list, tuple)) else "\n")
    return "".join(w.out)


# ---- reading ---------------------------------------------------------------------------------


class YAMLError(ValueError):
    pass


def _plain_value(s):
    if _NULL.match(s):
        return None
    if _BOOL.match(s):
        return s.lower() in ("yes", "true", "on")
    if _INT.match(s) and not re.search(r"[:bx]", s) and not re.match(r"^[-+]?0[0-7_]+$", s):
        return int(s.replace("_", ""))
    if _INT.match(s):
        t = s.replace("_", "")
        sign = -1 if t.startswith("-") else 1
        t = t.lstrip("+-")
        if t.startswith("0b"):
            return sign * int(t[2:], 2)
        if t.startswith("0x"):
            return sign * int(t[2:], 16)
        if ":" not in t:
            return sign * int(t, 8)
        return s
    if _FLOAT.match(s) and ":" not in s:
        t = s.replace("_", "").lower()
        if t.endswith(".nan"):
            return math.nan
        if t.endswith(".inf"):
            return -math.inf if t.startswith("-") else math.inf
        return float(t)
    return s


def _split_flow(text):
    items, depth, cur, quote = [], 0, "", None
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        items.append(cur.strip())
    return items


def _flow(text):
    text = text.strip()
    if text.startswith("["):
        if not text.endswith("]"):
            raise YAMLError("unterminated flow sequence %r" % text)
        return [_flow(x) for x in _split_flow(text[1:-1])]
    if text.startswith("{"):
        if not text.endswith("}"):
            raise YAMLError("unterminated flow mapping %r" % text)
        out = {}
        for item in _split_flow(text[1:-1]):
            k, _, v = item.partition(":")
            out[_flow(k)] = _flow(v) if v.strip() else None
        return out
    return _scalar_text(text)


def _scalar_text(text):
    """A complete scalar (already joined across lines)."""
    t = text.strip()
    if t.startswith("'"):
        if not t.endswith("'") or len(t) < 2:
            raise YAMLError("unterminated single-quoted scalar %r" % t)
        return t[1:-1].replace("''", "'")
    if t.startswith('"'):
        return _double(t)
    if t.startswith("[") or t.startswith("{"):
        return _flow(t)
    return _plain_value(t)


def _double(t):
    if not t.endswith('"') or len(t) < 2:
        raise YAMLError("unterminated double-quoted scalar %r" % t)
    body = t[1:-1]
    out, i = [], 0
    esc = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v",
           "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\",
           "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            c = body[i + 1]
            if c in esc:
                out.append(esc[c])
                i += 2
                continue
            n = {"x": 2, "u": 4, "U": 8}.get(c)
            if n:
                out.append(chr(int(body[i + 2:i + 2 + n], 16)))
                i += 2 + n
                continue
            raise YAMLError("bad escape \\%s" % c)
        out.append(ch)
        i += 1
    return "".join(out)


def _fold(lines):
    """Joins the lines of a multi-line scalar as YAML folds them: a line break between
    two lines is a space, an empty line a newline."""
    out = ""
    empty = 0
    for n, ln in enumerate(lines):
        s = ln.strip() if n else ln.rstrip()
        if not s:
            empty += 1
            continue
        if out:
            out += "\n" * empty if empty else " "
        empty = 0
        out += s
    return out


class _Lines:
    def __init__(self, text):
        self.lines = []
        for raw in text.splitlines():
            if raw.rstrip() in ("---", "..."):
                continue
            self.lines.append(raw.rstrip())
        self.i = 0

    def peek(self):
        while self.i < len(self.lines) and not self.lines[self.i].strip():
            self.i += 1
        return self.lines[self.i] if self.i < len(self.lines) else None


def _indent_of(line):
    return len(line) - len(line.lstrip(" "))


def _continued(ls, first, min_indent):
    """The text of a scalar starting with `first`, plus its continuation lines (more
    indented than min_indent, or up to the closing quote)."""
    parts = [first]
    quote = first.strip()[:1] if first.strip()[:1] in "'\"" else None

    def closed():
        text = " ".join(p.strip() for p in parts)
        if quote == "'":
            body = text.strip()[1:]
            return re.search(r"(?:^|[^'])(?:'')*'$", body) is not None and body != ""
        if quote == '"':
            body = text.strip()[1:]
            return re.search(r'(?:^|[^\\])(?:\\\\)*"$', body) is not None and body != ""
        return True

    if quote:
        while not closed():
            if ls.i >= len(ls.lines):
                raise YAMLError("unterminated quoted scalar")
            parts.append(ls.lines[ls.i])
            ls.i += 1
        if quote == "'":
            return _scalar_text(_fold(parts))
        # double quotes: a line ending in an (unescaped) backslash joins the next one
        # without a space; other line breaks fold as usual
        text = parts[0].rstrip()
        for ln in parts[1:]:
            m = re.search(r"(\\+)$", text)
            if m and len(m.group(1)) % 2 == 1:
                text = text[:-1] + ln.lstrip()
            else:
                text = text + " " + ln.strip()
        return _double(text.strip())
    while True:
        line = ls.peek()
        if line is None or _indent_of(line) <= min_indent or line.lstrip().startswith("- ") and \
                _indent_of(line) <= min_indent:
            break
        if re.match(r"^\s*[^'\"\s][^:]*:( |$)", line) and _indent_of(line) <= min_indent + INDENT:
            break
        parts.append(line)
        ls.i += 1
    return _scalar_text(_fold(parts))


_KEY = re.compile(r"""^('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^'"\s#][^:]*?)\s*:(?:\s+(.*)|$)""")


def _parse_block(ls, indent):
    line = ls.peek()
    if line is None:
        return None
    ind = _indent_of(line)
    body = line.strip()
    if body == "-" or body.startswith("- "):
        return _parse_seq(ls, ind)
    return _parse_map(ls, ind)


def _value_after(ls, rest, key_indent, seq_ok):
    """The value of a mapping key (or a sequence item) whose text after ':' is rest."""
    if rest is None or rest == "":
        nxt = ls.peek()
        if nxt is None:
            return None
        ni = _indent_of(nxt)
        if ni > key_indent:
            return _parse_block(ls, ni)
        if seq_ok and ni == key_indent and (nxt.strip() == "-" or nxt.strip().startswith("- ")):
            return _parse_seq(ls, ni)
        return None
    return _continued(ls, rest, key_indent)


def _parse_map(ls, indent):
    out = {}
    while True:
        line = ls.peek()
        if line is None or _indent_of(line) != indent:
            break
        body = line.strip()
        if body == "-" or body.startswith("- "):
            break
        m = _KEY.match(body)
        if not m:
            raise YAMLError("expected 'key: value', got %r" % line)
        ls.i += 1
        key = _scalar_text(m.group(1))
        out[key] = _value_after(ls, m.group(2), indent, True)
    return out


def _parse_seq(ls, indent):
    out = []
    while True:
        line = ls.peek()
        if line is None or _indent_of(line) != indent:
            break
        body = line.strip()
        if not (body == "-" or body.startswith("- ")):
            break
        ls.i += 1
        rest = body[1:].strip()
        item_indent = indent + 2
        if not rest:
            out.append(_value_after(ls, None, indent, False))
        elif rest == "-" or rest.startswith("- "):
            # "- - a": a nested sequence starting on this line
            ls.lines[ls.i - 1] = " " * item_indent + rest
            ls.i -= 1
            out.append(_parse_seq(ls, item_indent))
        elif _KEY.match(rest) and not rest.startswith(("'", '"', "[", "{")) or \
                (rest[:1] in "'\"" and _KEY.match(rest) and
                 _KEY.match(rest).group(1) != rest):
            # "- key: value": a mapping whose other keys follow at item_indent
            ls.lines[ls.i - 1] = " " * item_indent + rest
            ls.i -= 1
            out.append(_parse_map(ls, item_indent))
        else:
            out.append(_continued(ls, rest, indent))
    return out


def load(text):
    """The data of a YAML document in the subset dump() writes (see the module doc)."""
    ls = _Lines(text)
    first = ls.peek()
    if first is None:
        return None
    if _indent_of(first) == 0 and not (first.strip() == "-" or first.startswith("- ")) \
            and not _KEY.match(first.strip()):
        return _continued(ls, first, -1)
    out = _parse_block(ls, 0)
    if ls.peek() is not None:
        raise YAMLError("unexpected line %r" % ls.peek())
    return out


def safe_load(text):
    """PyYAML's safe_load when it is importable, else load()."""
    try:
        import yaml
    except ImportError:
        return load(text)
    return yaml.safe_load(text)
