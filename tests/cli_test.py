#!/usr/bin/env python3
"""Suite "cli": the example programs answer --help, list what they can run, and reject bad
arguments with exit status 2 and a message that names the problem (never "0 cases, exit 0");
train --task text resumes bit-identically and infer writes text from its checkpoint."""
import os
import shutil
import subprocess
import sys
import tempfile

gradcheck, train, infer, text_dir = sys.argv[1:5]
failures = []


def expect(cmd, code, *needles, stream="stdout"):
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=120)
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

# ---- text: train on the shipped sample, resume, sample ----
sample = os.path.join(text_dir, "sayings.txt")
tmp = tempfile.mkdtemp()
text = [train, "--task", "text", "--data", sample, "--val-fraction", "0.2", "--seq-len", "24", "--eval-windows", "8",
        "--eval-lengths", "48", "--dim", "16", "--heads", "2", "--layers", "1", "--batch", "4", "--steps", "12",
        "--eval-every", "4", "--threads", "1"]
straight, pieces, ck = (os.path.join(tmp, n) for n in ("straight.csv", "pieces.csv", "ck.safetensors"))
expect(text + ["--log", straight], 0, "final validation", "bits per byte", "train 2566 bytes")
expect(text + ["--log", pieces, "--stop-at", "6", "--save", ck], 0, "final validation")
expect(text + ["--log", pieces, "--resume", ck, "--save", ck], 0, "resumed from", "final validation")
# The same rows, bit for bit, except the evaluation that stopping at step 6 adds.
one, two = (open(f).read().splitlines() for f in (straight, pieces))
two[6] = ",".join(two[6].split(",")[:3] + [""] + two[6].split(",")[4:6] + ["", "", ""])
if one != two:
    failures.append(f"train --task text: a run stopped at step 6 and resumed logs other numbers than one run:\n{one}\n{two}")
log = open(straight).read().splitlines()
if not log[0].endswith("test_bits_per_byte") or not log[4].split(",")[-1]:
    failures.append(f"train --task text: no bits per byte in the log at step 4: {log[:5]}")
expect([train, "--task", "text", "--data", os.path.join(tmp, "missing.txt")], 1, "does not exist", stream="stderr")
expect([train, "--task", "text", "--vocab", os.path.join(tmp, "missing.vocab")], 1, "cannot open", stream="stderr")

gen = [infer, "--checkpoint", ck, "--prompt", "Early to ", "--generate", "40"]
a = expect(gen + ["--seed", "5"], 0, "Early to ")
if a != expect(gen + ["--seed", "5"], 0, "Early to "):
    failures.append("infer: the same seed wrote different text")
if a == expect(gen + ["--seed", "6"], 0, "Early to "):
    failures.append("infer: seeds 5 and 6 wrote the same 40 bytes")
# Sampling among the single most likely token is greedy decoding.
if expect(gen + ["--top-k", "1", "--seed", "7"], 0) != expect(gen + ["--temperature", "0"], 0):
    failures.append("infer: --top-k 1 differs from --temperature 0")
# A nucleus smaller than any one token's probability is greedy too; a wider one samples.
if expect(gen + ["--top-p", "1e-9", "--seed", "7"], 0) != expect(gen + ["--temperature", "0"], 0):
    failures.append("infer: --top-p 1e-9 differs from --temperature 0")
if expect(gen + ["--top-p", "0.9", "--seed", "5"], 0) == expect(gen + ["--top-p", "0.9", "--seed", "6"], 0):
    failures.append("infer: --top-p 0.9 with seeds 5 and 6 wrote the same 40 bytes")
raw = subprocess.run(gen, capture_output=True, timeout=120).stdout
if b"generated:" in raw or not raw.startswith(b"Early to ") or len(raw) < len("Early to ") + 40:
    failures.append(f"infer: a text model should print the prompt and 40 bytes of text, got {raw!r}")
expect(gen + ["--temperature", "-1"], 2, "--temperature must be a number", stream="stderr")

shutil.rmtree(tmp)

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("cli: all checks passed")
