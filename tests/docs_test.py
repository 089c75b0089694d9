#!/usr/bin/env python3
"""Suite "docs": what the documentation says is what the code does.

  citations  every docs/<page>.md a file of the repository names exists; every relative link
             of a markdown page resolves (file and #anchor); "step N of docs/selective_rope.md"
             names a step the page has; nothing cites a document outside the repository.
  tutorial   each tutorial page NN_name.md (under docs, tutorial) has its program; every
             C++ block of the page is a passage of that program; the program prints what the
             page's last ```text block shows.
  ops        docs/ops.md lists, header by header, exactly the functions, operators and classes
             declared at the top level of the public headers in OPS_HEADERS.
  readme     every C++ block of README.md compiles (a block without main() is the body of the
             declared prelude) against the in-tree library and runs; a ```text block right after
             a C++ block is what it prints.
"""
import argparse
import concurrent.futures
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_util import fenced_blocks, same_output, with_outputs  # noqa: E402

failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message)


# ---- citations -----------------------------------------------------------------------------

TEXT = {".cpp", ".h", ".md", ".build", ".py", ".txt", ".in", ".json", ""}
SKIP_DIRS = {".git", "subprojects", "results", "node_modules"}


def repository_files(root):
    """Tracked files when this is a git checkout, else every file outside build directories."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True).stdout
        files = [root / f for f in out.decode().split("\0") if f]
        if files:
            return [f for f in files if f.is_file()]
    except (OSError, subprocess.CalledProcessError):
        pass
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith("build")]
        found += [Path(dirpath) / f for f in filenames]
    return found


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"[`*_]", "", heading.strip().lower())
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(page):
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", page.read_text(), re.M)}


def check_citations(root):
    files = [f for f in repository_files(root) if f.suffix in TEXT and "LICENSE" not in f.name]
    cited = 0
    py_files = [f.relative_to(root) for f in files if f.suffix == ".py"]
    for f in files:
        try:
            text = f.read_text()
        except UnicodeDecodeError:
            continue
        rel = f.relative_to(root)
        if "MATH" + ".md" in text:
            fail(f"{rel} cites the MATH spec, which is not in the repository: cite a page of docs/")
        for m in re.finditer(r"(?<![\w/.-])([\w/-]+\.py)\b", text):
            if not any(str(g).endswith(m.group(1)) for g in py_files):
                fail(f"{rel} names {m.group(1)}, which is not a file of this repository: describe what it does instead")
        for m in re.finditer(r"(?<![\w/.])docs/([\w/.-]+?\.md)", text):
            cited += 1
            if not (root / "docs" / m.group(1)).is_file():
                fail(f"{rel} cites docs/{m.group(1)}, which does not exist")
        for m in re.finditer(r"docs/selective_rope\.md,? steps? (\d+)(?:\s*[-–]\s*(\d+))?|steps? (\d+)(?:\s*[-–]\s*(\d+))? of docs/selective_rope\.md", text):
            steps = [int(x) for x in m.groups() if x]
            page = (root / "docs/selective_rope.md").read_text() if (root / "docs/selective_rope.md").exists() else ""
            for n in range(min(steps), max(steps) + 1):
                if not re.search(rf"^{n}\. \*\*", page, re.M):
                    fail(f"{rel} cites step {n} of docs/selective_rope.md, which has no step {n}")
        if f.suffix == ".md":
            for m in re.finditer(r"\]\(([^)\s]+)\)", text):
                target = m.group(1)
                if re.match(r"[a-z]+:", target):
                    continue
                path, _, anchor = target.partition("#")
                dest = (f.parent / path).resolve() if path else f
                if not dest.exists():
                    fail(f"{rel} links to {target}, which does not exist")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    fail(f"{rel} links to {target}: {dest.name} has no heading with anchor #{anchor}")
    print(f"citations: {len(files)} files, {cited} citations of docs/ pages")


# ---- ops.md ----------------------------------------------------------------------------------

# The public headers docs/ops.md covers (paths under include/, as a user includes them).
OPS_HEADERS = [
    "rotor/version.h",
    "rotor/core/tensor.h", "rotor/core/generator.h", "rotor/core/npy.h", "rotor/core/safetensors.h",
    "rotor/core/parallel.h", "rotor/core/json.h",
    "rotor/autograd/ops.h", "rotor/autograd/node.h", "rotor/autograd/gradcheck.h", "rotor/autograd/rope.h",
    "rotor/autograd/gla.h", "rotor/autograd/gated_delta.h", "rotor/autograd/attention.h", "rotor/autograd/scan.h",
    "rotor/autograd/fused.h",
    "rotor/nn/module.h", "rotor/nn/layers.h", "rotor/nn/containers.h", "rotor/nn/sampling.h", "rotor/nn/functional.h", "rotor/nn/rotary.h", "rotor/nn/gla.h",
    "rotor/nn/gated_deltanet.h", "rotor/nn/attention.h", "rotor/nn/model.h", "rotor/nn/loss.h", "rotor/nn/optim.h",
    "rotor/nn/init.h", "rotor/nn/checkpoint.h", "rotor/nn/trainer.h", "rotor/nn/data.h", "rotor/nn/distributed.h",
    "rotor/nn/text.h", "rotor/nn/mqar.h", "rotor/nn/tasks.h", "rotor/nn/copying.h", "rotor/nn/state_tracking.h", "rotor/nn/recall.h",
    "rotor/nn/gradcheck_case.h",
]

# A top-level declaration: a line at column 0 (not a directive, comment, type or namespace
# line) whose name is followed by "("; or a class with a body.
_DECL = re.compile(r"^(?!#|//|using|return|namespace|template|typedef|enum|struct|class|static_assert|extern|"
                   r"ROTOR_|\}|\{)(?:inline\s+|constexpr\s+|static\s+|\[\[\w+\]\]\s+)*[\w:<>,*&\s]*?[\s*&]"
                   r"(operator\s*[^\s(]+|~?\w+)\s*\(")
_CLASS = re.compile(r"^class\s+(\w+)\b(?![^;{]*;)")


def declared_names(path):
    text = re.sub(r"/\*.*?\*/", "", re.sub(r"//[^\n]*", "", path.read_text()), flags=re.S)
    names = set()
    for line in text.splitlines():
        if line[:1].isspace():
            continue
        m = _CLASS.match(line) or _DECL.match(line)
        if m:
            names.add(re.sub(r"\s+", "", m.group(1)))
    return names


def listed_names(ops_md):
    """{header: names} from the '## rotor/....h' sections' '- `name(...)` — ...' lines."""
    sections, current = {}, None
    for line in ops_md.splitlines():
        m = re.match(r"^## (rotor/\S+\.h)\s*$", line)
        if m:
            current = sections.setdefault(m.group(1), set())
        elif line.startswith("## "):
            current = None
        elif current is not None and line.startswith("- "):
            head = line[2:].split(" — ")[0]
            for span in re.findall(r"`([^`]+)`", head):
                name = span.split("(")[0].strip()
                if re.fullmatch(r"operator\S+|~?\w+", name):
                    current.add(name)
    return sections


def header_path(root, build, header):
    for base in (root / "include", build / "include"):
        if (base / header).exists():
            return base / header
    if (root / "include" / (header + ".in")).exists():  # generated (version.h)
        return root / "include" / (header + ".in")
    return None


def check_ops(root, build):
    page = root / "docs" / "ops.md"
    if not page.exists():
        fail("docs/ops.md does not exist")
        return
    sections = listed_names(page.read_text())
    total = 0
    for header in OPS_HEADERS:
        path = header_path(root, build, header)
        if path is None:
            fail(f"{header} (in OPS_HEADERS) does not exist")
            continue
        declared = declared_names(path)
        listed = sections.get(header)
        if listed is None:
            fail(f"docs/ops.md has no section '## {header}' for: {', '.join(sorted(declared))}")
            continue
        total += len(declared)
        if declared - listed:
            fail(f"docs/ops.md, section {header}: add a line for {', '.join(sorted(declared - listed))}")
        if listed - declared:
            fail(f"docs/ops.md, section {header}: {', '.join(sorted(listed - declared))} not declared in {header}")
    for header in sorted(set(sections) - set(OPS_HEADERS)):
        fail(f"docs/ops.md has a section for {header}, which is not in OPS_HEADERS of tests/docs_test.py")
    print(f"ops: {total} names declared in {len(OPS_HEADERS)} headers")


# ---- tutorial --------------------------------------------------------------------------------

def lines_of(code):
    return [line.strip() for line in code.splitlines() if line.strip()]


def is_passage(block, program):
    """Whether the block's lines occur, in order and consecutively, among the program's."""
    b, p = lines_of(block), lines_of(program)
    return any(p[i:i + len(b)] == b for i in range(len(p) - len(b) + 1))


def check_tutorial(root, programs):
    pages = sorted((root / "docs" / "tutorial").glob("[0-9][0-9]_*.md"))
    if not pages:
        fail("docs/tutorial has no steps")
    build = (root / "examples" / "meson.build").read_text()
    for page in pages:
        name = page.stem
        source = root / "examples" / "tutorial" / f"{name}.cpp"
        if not source.exists():
            fail(f"docs/tutorial/{page.name} has no program examples/tutorial/{name}.cpp")
            continue
        if f"'{name}'" not in build:
            fail(f"examples/meson.build does not build tutorial step {name}")
        program = source.read_text()
        text = page.read_text()
        if f"examples/tutorial/{name}.cpp" not in text or f"build/examples/tutorial_{name}" not in text:
            fail(f"docs/tutorial/{page.name} does not name its program and the command that runs it")
        blocks = fenced_blocks(text)
        for lang, body, _ in blocks:
            if lang == "cpp" and not is_passage(body, program):
                fail(f"docs/tutorial/{page.name}: a C++ block is not a passage of {source.name}:\n{body}")
        outputs = [(body, tol) for lang, body, tol in blocks if lang == "text"]
        exe = programs.get(f"tutorial_{name}")
        if not outputs or exe is None:
            fail(f"docs/tutorial/{page.name}: no output block, or no program tutorial_{name} to run")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([exe], capture_output=True, text=True, cwd=tmp, timeout=600)
        if r.returncode != 0:
            fail(f"tutorial_{name} exited with {r.returncode}:\n{r.stdout}{r.stderr}")
        elif not same_output(r.stdout, outputs[-1][0], outputs[-1][1]):
            fail(f"docs/tutorial/{page.name} shows\n{outputs[-1][0]}but tutorial_{name} prints\n{r.stdout}")
        else:
            print(f"tutorial {name}: {len(blocks)} blocks, output as shown")


# ---- README ----------------------------------------------------------------------------------

PRELUDE_MARK = "// the snippet goes here"


def check_readme(root, build, lib):
    readme = (root / "README.md").read_text()
    blocks = [b for b in with_outputs(readme) if b[0] == "cpp"]
    preludes = [b for b in blocks if PRELUDE_MARK in b[1]]
    if len(preludes) != 1:
        fail(f"README.md should declare one prelude (a C++ block with the line '{PRELUDE_MARK}'), found {len(preludes)}")
        return
    prelude = preludes[0][1]
    flags = shlex.split(subprocess.run(["pkg-config", "--cflags", "--libs", "tbb", "openblas"], capture_output=True,
                                       text=True, check=True).stdout)
    programs = []
    for lang, body, output, tol in blocks:
        if PRELUDE_MARK in body:
            continue
        if re.search(r"\bint main\(", body):
            programs.append((body, output, tol))
        else:
            indented = "".join("  " + line if line.strip() else line for line in body.splitlines(True))
            programs.append((prelude.replace("  " + PRELUDE_MARK + "\n", indented), output, tol))

    def build_and_run(i):
        source, output, tol = programs[i]
        with tempfile.TemporaryDirectory() as tmp:
            cpp = Path(tmp) / "snippet.cpp"
            cpp.write_text(source)
            cmd = ["c++", "-std=c++20", "-I" + str(root / "include"), "-I" + str(build / "include"), str(cpp),
                   "-o", str(Path(tmp) / "snippet"), lib, "-Wl,-rpath," + str(Path(lib).parent)] + flags
            c = subprocess.run(cmd, capture_output=True, text=True)
            if c.returncode != 0:
                return f"README C++ block {i + 1} does not compile:\n{source}\n{c.stderr[-3000:]}"
            r = subprocess.run([str(Path(tmp) / "snippet")], capture_output=True, text=True, cwd=tmp, timeout=600)
            if r.returncode != 0:
                return f"README C++ block {i + 1} exits with {r.returncode}:\n{source}\n{r.stdout}{r.stderr}"
            if output is not None and not same_output(r.stdout, output, tol):
                return f"README C++ block {i + 1} should print\n{output}but prints\n{r.stdout}"
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for i, problem in enumerate(pool.map(build_and_run, range(len(programs)))):
            if problem:
                fail(problem)
            else:
                print(f"README block {i + 1} of {len(programs)}: compiles, runs"
                      + (", prints what the README shows" if programs[i][1] is not None else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True, type=Path)
    ap.add_argument("--build", required=True, type=Path)
    ap.add_argument("--lib", required=True, help="the in-tree shared library")
    ap.add_argument("--programs", nargs="*", default=[], help="the tutorial executables")
    ap.add_argument("--only", choices=["citations", "ops", "tutorial", "readme"])
    args = ap.parse_args()
    root = args.source.resolve()
    programs = {Path(p).name: str(Path(p).resolve()) for p in args.programs}
    if args.only in (None, "citations"):
        check_citations(root)
    if args.only in (None, "ops"):
        check_ops(root, args.build.resolve())
    if args.only in (None, "tutorial"):
        check_tutorial(root, programs)
    if args.only in (None, "readme"):
        check_readme(root, args.build.resolve(), str(Path(args.lib).resolve()))
    if failures:
        print(f"\n{len(failures)} problem(s)")
        sys.exit(1)
    print("docs: all checks passed")


if __name__ == "__main__":
    main()
