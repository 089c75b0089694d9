#!/usr/bin/env python3
"""Suite "install": rotor as a user of the installed library sees it.

Installs the build into a temporary prefix, then checks that
  - the shared and the static library, rotor.pc and the headers are there, every public header
    of the source tree under include/rotor/<layer>/ and no private one;
  - every installed header compiles on its own (nothing it includes was left out);
  - the program of the README's "Use rotor in your own program" section, built with the very
    command shown there, prints what the README says it prints;
  - the same program links against librotor.a with `pkg-config --static` (Libs.private is right)
    and then needs no librotor.so;
  - a meson project that takes rotor as a subproject with -Dexamples/tests/bench=false configures
    with only the library to build, through dependency('rotor').
"""
import argparse
import concurrent.futures
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LAYERS = ["core", "kernels", "autograd", "nn"]


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def run(cmd, env=None, cwd=None, shell=False):
    shown = cmd if shell else shlex.join(cmd)
    print("$ " + shown)
    r = subprocess.run(cmd, env=env, cwd=cwd, shell=shell, capture_output=True, text=True,
                       executable="/bin/bash" if shell else None)
    if r.returncode != 0:
        fail(f"exit {r.returncode}: {shown}\n{r.stdout}{r.stderr}")
    return r.stdout


def readme_section(readme, title):
    """The text of the '## title' section, up to the next '## ' heading."""
    m = re.search(r"^## " + re.escape(title) + r"\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    if not m:
        fail(f"README.md has no section '## {title}'")
    return m.group(1)


def fenced_blocks(text):
    """(language, body) of every ``` block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)


def same_output(printed, quoted):
    """Text equal word for word; numbers equal to the quoted precision, up to a relative 2%
    (float rounding differs between instruction sets, and training amplifies it a little)."""
    a, b = printed.split(), quoted.split()
    if len(a) != len(b):
        return False
    number = re.compile(r"^[-+]?\d+(\.(\d+))?([eE][-+]?\d+)?$")
    for x, y in zip(a, b):
        mx, my = number.match(x), number.match(y)
        if not (mx and my):
            if x != y:
                return False
            continue
        fx, fy = float(x), float(y)
        unit = 10.0 ** -len(my.group(2) or "")
        if my.group(3):
            unit *= 10.0 ** int(my.group(3)[1:])
        if abs(fx - fy) > 1.5 * unit + 0.02 * max(abs(fx), abs(fy)):
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meson", required=True)
    ap.add_argument("--source", required=True, type=Path)
    ap.add_argument("--build", required=True, type=Path)
    ap.add_argument("--private", nargs="*", default=[])
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rotor-install-"))
    try:
        check(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("install: all checks passed")


def check(args, tmp):
    stage = tmp / "stage"
    run([args.meson, "install", "-C", str(args.build), "--no-rebuild", "--quiet", "--destdir", str(stage)])

    # The staged tree is $stage/<prefix>/...; relocate rotor.pc to it, as if configured with
    # --prefix=$stage/<prefix> (only the prefix line changes).
    pcs = list(stage.rglob("pkgconfig/rotor.pc"))
    if len(pcs) != 1:
        fail(f"expected one rotor.pc, found {pcs}")
    pc = pcs[0]
    text = pc.read_text()
    m = re.search(r"^prefix=(.*)$", text, re.M)
    if not m:
        fail("rotor.pc has no prefix= line")
    prefix = Path(str(stage) + m.group(1))
    pc.write_text(text.replace(m.group(0), f"prefix={prefix}", 1))
    print(f"rotor.pc:\n{pc.read_text()}")
    if "xsimd" in text:
        fail("rotor.pc requires xsimd, which no installed header includes")
    libdir = pc.parent.parent

    # Libraries: shared (with its soname link) and static.
    for name in ["librotor.so", "librotor.a"]:
        if not (libdir / name).exists():
            fail(f"{name} is not installed in {libdir}")

    # Headers: exactly the public ones of each layer, plus rotor.h and version.h.
    inc = prefix / "include" / "rotor"
    private = set(args.private)
    installed = {str(p.relative_to(inc)) for p in inc.rglob("*.h")}
    expected = {"rotor.h", "version.h"}
    for layer in LAYERS:
        for h in (args.source / layer).glob("*.h"):
            rel = f"{layer}/{h.name}"
            if rel not in private:
                expected.add(rel)
    if installed != expected:
        fail(f"installed headers differ from the public ones: missing {sorted(expected - installed)}, "
             f"extra {sorted(installed - expected)} (a header only the library needs goes into "
             "rotor_private_headers, every other one into its layer's install_headers)")
    # The umbrella header includes every public header of core, autograd and nn.
    umbrella = (inc / "rotor.h").read_text()
    for rel in sorted(expected):
        if rel.split("/")[0] in ("core", "autograd", "nn") and f'"rotor/{rel}"' not in umbrella:
            fail(f"rotor/rotor.h does not include rotor/{rel}")

    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = str(pc.parent) + os.pathsep + env.get("PKG_CONFIG_PATH", "")
    cflags = shlex.split(run(["pkg-config", "--cflags", "rotor"], env=env))
    def compile_alone(rel):
        one = tmp / ("header_" + rel.replace("/", "_") + ".cpp")
        one.write_text(f"#include <rotor/{rel}>\n")
        r = subprocess.run(["c++", "-std=c++20", "-fsyntax-only", str(one)] + cflags, capture_output=True, text=True)
        return rel, r.returncode, r.stderr
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for rel, code, err in pool.map(compile_alone, sorted(expected)):
            if code != 0:
                fail(f"<rotor/{rel}> does not compile on its own against the installed headers:\n{err}")
    print(f"{len(expected)} installed headers compile on their own")

    # The README's program, with the README's command.
    readme = (args.source / "README.md").read_text()
    section = readme_section(readme, "Use rotor in your own program")
    blocks = fenced_blocks(section)
    programs = [b for lang, b in blocks if lang == "cpp"]
    commands = [line for lang, b in blocks if lang in ("sh", "console") for line in b.splitlines()
                if line.startswith("c++ ")]
    outputs = [b for lang, b in blocks if lang == "text"]
    if len(programs) != 1 or len(commands) != 1 or len(outputs) != 1:
        fail("the README section needs one cpp block (the program), one sh block with the c++ command "
             "and one text block (its output)")
    app = tmp / "app"
    app.mkdir()
    (app / "app.cpp").write_text(programs[0])
    run(commands[0], env=env, cwd=app, shell=True)
    run_env = dict(env)
    run_env["LD_LIBRARY_PATH"] = str(libdir) + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    out = run(["./a.out"], env=run_env, cwd=app)
    print(out, end="")
    if not same_output(out, outputs[0]):
        fail(f"the README says the program prints\n{outputs[0]}but it printed\n{out}")

    # Static: librotor.a in place of -lrotor, the rest from Libs.private / Requires.private.
    static_libs = run(["pkg-config", "--static", "--libs", "rotor"], env=env).split()
    static_libs = [str(libdir / "librotor.a") if f == "-lrotor" else f for f in static_libs]
    run(["c++", "-std=c++20", "app.cpp", "-o", "app_static"] + cflags + static_libs, env=env, cwd=app)
    needed = run(["readelf", "-d", "app_static"], cwd=app)
    if "librotor" in needed:
        fail("app_static still needs librotor.so")
    out_static = run(["./app_static"], cwd=app)
    if out_static != out:
        fail("the statically linked program prints something else than the shared one")
    print("static link: same output, no librotor.so needed")

    # As a subproject: only the library is configured to build.
    parent = tmp / "parent"
    (parent / "subprojects").mkdir(parents=True)
    os.symlink(args.source.resolve(), parent / "subprojects" / "rotor")
    (parent / "app.cpp").write_text(programs[0])
    (parent / "meson.build").write_text(
        "project('parent', 'cpp', default_options: ['cpp_std=c++20'])\n"
        "rotor = dependency('rotor', fallback: 'rotor', default_options: ['examples=false', 'tests=false', 'bench=false'])\n"
        "executable('app', 'app.cpp', dependencies: rotor)\n")
    run([args.meson, "setup", "--force-fallback-for=rotor", str(parent / "build"), str(parent)])
    targets = run([args.meson, "introspect", "--targets", str(parent / "build")])
    names = sorted(set(re.findall(r'"name": "([^"]+)"', targets)))
    if names != ["app", "rotor"]:
        fail(f"as a subproject rotor should build only its library, but the targets are {names}")
    print(f"subproject targets: {names}")


if __name__ == "__main__":
    main()
