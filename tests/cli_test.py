#!/usr/bin/env python3
"""Suite "cli": the example programs answer --help, list what they can run, and reject bad
arguments with exit status 2 and a message that names the problem (never "0 cases, exit 0")."""
import subprocess
import sys

gradcheck, train, infer = sys.argv[1:4]
failures = []


def expect(cmd, code, *needles, stream="stdout"):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    text = r.stdout if stream == "stdout" else r.stderr
    ok = r.returncode == code and all(n in text for n in needles)
    print(("ok   " if ok else "FAIL ") + " ".join(cmd[1:]) + f"  (exit {r.returncode})")
    if not ok:
        failures.append(f"{cmd}: expected exit {code} and {needles} in {stream}, got exit {r.returncode}\n"
                        f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}")
    return r.stdout


expect([gradcheck, "--help"], 0, "usage: gradcheck", "--list")
names = expect([gradcheck, "--list"], 0, "matmul").split()
if len(names) < 50 or len(set(names)) != len(names):
    failures.append(f"gradcheck --list gave {len(names)} names ({len(set(names))} distinct)")
expect([gradcheck, "--list", "rope"], 0, "selective_rope")
expect([gradcheck, "no_such_case"], 2, "no gradcheck case matches 'no_such_case'", stream="stderr")
expect([gradcheck, "matmul", "no_such_case"], 2, "no_such_case", stream="stderr")
expect([gradcheck, "--bogus"], 2, "unknown flag --bogus", stream="stderr")
out = expect([gradcheck, names[0]], 0, names[0], "0 failed")

expect([train, "--help"], 0, "usage: train")
expect([train, "--seqlen", "32"], 2, "unknown flag --seqlen (did you mean --seq-len?)", stream="stderr")
expect([train, "--steps", "abc"], 2, "--steps must be an integer", stream="stderr")
expect([train, "--mixer", "lstm"], 2, "--mixer must be one of", stream="stderr")
expect([infer], 2, "--checkpoint is required", stream="stderr")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("cli: all checks passed")
