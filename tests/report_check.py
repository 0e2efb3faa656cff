"""Checks of `mlo report` pages for tests/test_report.sh (Debian's python3, stdlib only).

  report_check.py static PAGE.html
      the page as written: valid UTF-8, no control characters, a CSP of default-src 'none',
      exactly one <script> and one <style> carrying the CSP's nonce, no element or attribute
      that could run code or load anything (no on* attribute, no img/iframe/object/embed/link,
      no href/src/xlink:href at all)
  report_check.py hostile DOM CONSOLE
      the DOM Chromium made of the hostile store's page (--dump-dom): the page's script ran
      (html[data-ready=1]), the title is not "PWNED" and no planted markup became an element;
      the planted strings are shown as text; H1's loss line has 3 pieces (NaN and Infinity are
      gaps) and 8 vertices, H2's 5000 points are drawn as min/max per pixel column; no
      console message
  report_check.py mainjob DOM CONSOLE PNG EXPECT
      the main job's 9 runs: 9 rows best first, one chart per metric, each run's loss and
      train_accuracy path with as many vertices as `mlo show` counts points, the gate's
      pass/fail cells as `mlo gate` decides, their colours as the browser computed them (the
      test's self-check writes them into #selfcheck), a screenshot that is not blank and
      shows both gate colours; no console message
Exits 1 with the reasons on failure.
"""
import html.parser
import json
import re
import struct
import sys
import zlib

fails = []


def check(cond, what):
    if not cond:
        fails.append(what)


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []  # (tag, attrs dict)
        self.text = []
        self.stack = []
        self.title = ""
        self.selfcheck = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        cur = self.stack[-1] if self.stack else ""
        if cur == "title" and "body" not in (t for t, a in self.tags):
            self.title += data  # the page's title, not an SVG <title>
        if cur == "pre" and self.tags and any(a.get("id") == "selfcheck" for t, a in self.tags[-3:]):
            self.selfcheck += data
        if cur not in ("script", "style"):
            self.text.append(data)


def parse(path):
    raw = open(path, "rb").read()
    p = Page()
    p.feed(raw.decode("utf-8", errors="replace"))
    return raw, p


def vertices(d):
    return len(re.findall(r"[MLlVv]", d))


def console(path):
    return [l for l in open(path, errors="replace") if ":CONSOLE" in l]


def static(page):
    raw, p = parse(page)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fails.append(f"not UTF-8: {e}")
    bad = sorted({b for b in raw if b < 0x20 and b not in (9, 10)} | ({0x7F} & set(raw)))
    check(not bad, f"control bytes in the page: {bad}")
    metas = [a for t, a in p.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    check(len(metas) == 1, "one CSP meta")
    csp = metas[0].get("content", "") if metas else ""
    check("default-src 'none'" in csp, f"CSP default-src 'none': {csp}")
    m = re.search(r"script-src 'nonce-([0-9a-f]{32})'", csp)
    check(m is not None, "CSP nonce for scripts")
    nonce = m.group(1) if m else None
    scripts = [a for t, a in p.tags if t == "script"]
    styles = [a for t, a in p.tags if t == "style"]
    check(len(scripts) == 1, f"{len(scripts)} script elements, want 1")
    check(all(a.get("nonce") == nonce for a in scripts + styles), "script/style nonce = the CSP's")
    for t, a in p.tags:
        check(t not in ("img", "iframe", "object", "embed", "link", "base", "form", "a", "foreignobject",
                        "image", "use", "animate", "set"), f"element <{t}>")
        for k in a:
            check(not k.startswith("on"), f"attribute {k} on <{t}>")
            check(k not in ("href", "src", "xlink:href", "action", "srcdoc"), f"attribute {k} on <{t}>")
    return p


def hostile(dom, err):
    raw, p = parse(dom)
    html_tag = [a for t, a in p.tags if t == "html"]
    check(html_tag and html_tag[0].get("data-ready") == "1", "the page's script did not run")
    check("PWNED" not in p.title, f"title changed: {p.title!r}")
    check(p.title.startswith("mlo report"), f"title {p.title!r}")
    check(sum(1 for t, a in p.tags if t == "script") == 1, "one script element in the DOM")
    for t, a in p.tags:
        check(t not in ("img", "iframe", "object", "embed"), f"planted <{t}> became an element")
        for k in a:
            check(not k.startswith("on"), f"planted attribute {k} on <{t}>")
    text = "".join(p.text)
    for s in ("h1<script>document.title='PWNED'</script>\"'&amp;\u2401\u241b",
              "\"><img src=x onerror=\"document.title='PWNED'\">",
              "</td></tr></table><script>document.title='PWNED'</script>",
              "'onmouseover='document.title=\"PWNED\"",
              "s3://b/</script><script>document.title='PWNED'</script>",
              "\u2407bell \ufffd\ufffd bad UTF-8"):
        check(s in text, f"planted string not shown as text: {s!r}")
    charts = [a for t, a in p.tags if t == "figure"]
    keys = sorted(a.get("data-metric") for a in charts)
    want = sorted(["acc<script>document.title='PWNED'</script>", "loss", "system/cpu", "lat.p50",
                   "lat.p95", "lat.p99"])
    check(keys == want, f"charts {keys}")
    paths = {}
    cur = None
    for t, a in p.tags:
        if t == "figure":
            cur = a.get("data-metric")
        if t in ("h2", "details") or (t == "svg" and "parcoords" in a.get("class", "")):
            cur = None
        if t == "path" and "s" in a.get("class", "").split() and cur:
            paths[(cur, a.get("data-run"))] = a
    h1 = paths.get(("loss", "eeee0000000000000000000000000005"))
    h2 = paths.get(("loss", "ffff0000000000000000000000000006"))
    check(h1 is not None and h2 is not None, "loss paths of H1 and H2")
    if h1:
        check(h1["d"].count("M") == 3, f"H1 loss: 3 pieces around NaN and Infinity: {h1['d']}")
        check(vertices(h1["d"]) == 8 and h1.get("data-points") == "8", f"H1 loss vertices: {h1['d']}")
    if h2:
        n = vertices(h2["d"])
        check(h2.get("data-decimated") == "1" and h2.get("data-points") == "5000",
              f"H2 loss decimated: {h2.get('data-decimated')} {h2.get('data-points')}")
        check(300 <= n <= 2 * 412, f"H2 loss: {n} vertices for 5000 points, want 1 or 2 per column")
    headings = [d.strip() for d in p.text]
    for h in ("Metrics", "System metrics", "Histogram quantiles"):
        check(h in headings, f"heading {h}")
    c = console(err)
    check(not c, f"console messages: {c}")


def png_pixels(path):
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG")
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            bpp = {2: 3, 6: 4}[ctype]
            assert depth == 8
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    out = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(bytes(line))
        prev = line
    return w, h, bpp, out


def mainjob(dom, err, png, expect_path):
    expect = json.load(open(expect_path))
    raw, p = parse(dom)
    rows = [a for t, a in p.tags if t == "tr" and a.get("data-run")]
    check(len(rows) == 9, f"{len(rows)} rows, want 9")
    order = [a["data-run"] for a in rows]
    check(order == expect["best_first"], f"rows not best first: {order}")
    charts = [a.get("data-metric") for t, a in p.tags if t == "figure"]
    svgs = [a for t, a in p.tags if t == "svg" and "chart" in a.get("class", "").split()]
    check(sorted(charts) == sorted(expect["metrics"]) and len(svgs) == len(expect["metrics"]),
          f"one svg per metric: {charts}, {len(svgs)} svgs")
    cur = None
    seen = 0
    for t, a in p.tags:
        if t == "figure":
            cur = a.get("data-metric")
        if t in ("h2", "details") or (t == "svg" and "parcoords" in a.get("class", "")):
            cur = None
        if t == "path" and cur in ("loss", "train_accuracy"):
            want = expect["points"][a["data-run"]][cur]
            got = vertices(a["d"])
            check(got == want and a.get("data-points") == str(want),
                  f"{cur} of {a['data-run']}: {got} vertices, want {want}")
            seen += 1
    check(seen == 18, f"{seen} loss/train_accuracy paths, want 18")
    gate = [a.get("class", "") for t, a in p.tags if t == "td" and "gate" in a.get("class", "").split()]
    npass = sum("pass" in c.split() for c in gate)
    check(len(gate) == 9 and npass == expect["passes"], f"gate cells {gate}, want {expect['passes']} pass")
    try:
        sc = json.loads(p.selfcheck)
    except ValueError:
        sc = {}
        fails.append(f"no self-check result: {p.selfcheck!r}")
    check(sc.get("pass_bg") == "rgb(218, 251, 225)" and sc.get("pass_fg") == "rgb(26, 127, 55)",
          f"pass colours {sc}")
    if expect["passes"] < 9:
        check(sc.get("fail_bg") == "rgb(255, 235, 233)" and sc.get("fail_fg") == "rgb(207, 34, 46)",
              f"fail colours {sc}")
    check(sc.get("ready") == "1", f"the page's script did not run: {sc}")
    c = console(err)
    check(not c, f"console messages: {c}")
    w, h, bpp, px = png_pixels(png)
    colours, nonwhite, green, red = set(), 0, 0, 0
    for line in px[::2]:
        for i in range(0, len(line), bpp * 2):
            rgb = tuple(line[i:i + 3])
            colours.add(rgb)
            nonwhite += rgb != (255, 255, 255)
            green += abs(rgb[0] - 218) < 6 and abs(rgb[1] - 251) < 6 and abs(rgb[2] - 225) < 6
            red += abs(rgb[0] - 255) < 6 and abs(rgb[1] - 235) < 6 and abs(rgb[2] - 233) < 6
    total = (h // 2 + h % 2) * ((w + 1) // 2)
    check(nonwhite > total * 0.03 and len(colours) > 50,
          f"screenshot looks blank: {nonwhite} of {total} sampled pixels not white, {len(colours)} colours")
    check(green > 20, f"no pass-green in the screenshot ({green} pixels)")
    check(expect["passes"] == 9 or red > 20, f"no fail-red in the screenshot ({red} pixels)")


def main():
    cmd = sys.argv[1]
    if cmd == "static":
        static(sys.argv[2])
    elif cmd == "hostile":
        hostile(sys.argv[2], sys.argv[3])
    elif cmd == "mainjob":
        mainjob(*sys.argv[2:6])
    else:
        sys.exit(f"unknown check {cmd}")
    for f in fails:
        print("FAIL:", f)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
