"""Reading the code blocks of markdown pages, shared by the install and docs suites."""
import re


def section(text, title):
    """The text of the '## title' section, up to the next '## ' heading (None when absent)."""
    m = re.search(r"^## " + re.escape(title) + r"\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    return m.group(1) if m else None


# The note before a ```text block: '<!-- tolerance X -->' compares its numbers to within a
# relative X; '<!-- varies by machine; claim: LABEL >= X -->' compares only its words, and
# requires the last number printed after LABEL to be at least X (a training curve, whose
# figures depend on the machine's rounding, and the claim about it that holds everywhere).
_note = r"(?:<!-- (?:tolerance ([0-9.]+)|varies by machine; claim: (.+?) >= ([0-9.]+)) -->\n)?"


def _tolerance(m):
    if m.group(1):
        return float(m.group(1))
    if m.group(2):
        return (m.group(2), float(m.group(3)))
    return 0.02


def fenced_blocks(text):
    """[(language, body, tolerance)] of every ``` block in order; tolerance as in _note
    (default 0.02)."""
    blocks = []
    for m in re.finditer("^" + _note + r"```(\w*)\n(.*?)^```", text, re.S | re.M):
        blocks.append((m.group(4), m.group(5), _tolerance(m)))
    return blocks


def with_outputs(text):
    """[(language, body, output or None, tolerance)]: each block with the ```text block that
    follows it directly (only blank lines or a tolerance note in between)."""
    out = []
    matches = list(re.finditer("^" + _note + r"```(\w*)\n(.*?)^```[ \t]*\n?", text, re.S | re.M))
    i = 0
    while i < len(matches):
        m = matches[i]
        lang, body = m.group(4), m.group(5)
        if lang != "text" and i + 1 < len(matches):
            n = matches[i + 1]
            between = text[m.end():n.start()]
            if n.group(4) == "text" and between.strip() == "":
                out.append((lang, body, n.group(5), _tolerance(n)))
                i += 2
                continue
        out.append((lang, body, None, 0.02))
        i += 1
    return out


_number = re.compile(r"^[-+]?\d+(\.(\d+))?([eE][-+]?\d+)?$")


def same_output(printed, quoted, tolerance=0.02):
    """Text equal word for word; numbers equal to the quoted precision, up to a relative
    `tolerance` (float rounding differs between instruction sets, and training amplifies it).
    A (label, X) tolerance compares words only and checks the claim of _note."""
    a, b = printed.split(), quoted.split()
    if len(a) != len(b):
        return False
    if isinstance(tolerance, tuple):
        label, least = tolerance
        found = re.findall(re.escape(label) + r"\s+([-+]?[0-9.]+)", printed)
        if not found or float(found[-1]) < least:
            return False
    for x, y in zip(a, b):
        x, y = x.strip(",;()[]"), y.strip(",;()[]")
        mx, my = _number.match(x), _number.match(y)
        if not (mx and my):
            if x != y:
                return False
            continue
        if isinstance(tolerance, tuple):
            continue
        fx, fy = float(x), float(y)
        unit = 10.0 ** -len(my.group(2) or "")
        if my.group(3):
            unit *= 10.0 ** int(my.group(3)[1:])
        if abs(fx - fy) > 1.5 * unit + tolerance * max(abs(fx), abs(fy)):
            return False
    return True
