#!/usr/bin/env python3
"""Suite "mpi", part 2: examples/train under mpirun.

  - R ranks (2, 3) write the log, model file and optimizer file of one process with
    --grad-accum R, byte for byte (the log carries the loss to 17 digits), with the gradients
    reduced during the backward or after it, in one bucket or many;
  - a checkpoint saved by 2 ranks resumes on 1 rank (--grad-accum 2: the bytes of the
    uninterrupted run) and on 3 ranks (the bytes of one process that resumes with --grad-accum 3);
  - faults: a rank killed mid-run stops the job within seconds with rank 0's note naming the last
    checkpoint, which then resumes; ranks started with other flags, other data, or a file one
    rank cannot read fail before training with one message, from rank 0.

usage: mpi_test.py MPIRUN TRAIN TEXT_DIR [mpirun options...]"""
import filecmp
import json
import os
import struct
import shutil
import subprocess
import sys
import tempfile
import time

mpirun, train, text_dir = sys.argv[1:4]
train, text_dir = os.path.abspath(train), os.path.abspath(text_dir)  # the runs start in directories of their own
mpi_opts = sys.argv[4:]
failures = []
TINY = ["--task", "mqar", "--vocab", "32", "--seq-len", "16", "--kv-pairs", "2", "--train-size", "96",
        "--test-size", "16", "--layers", "2", "--dim", "16", "--heads", "2", "--batch", "12", "--eval-every", "0",
        "--threads", "1", "--warmup", "1", "--lr", "1e-2", "--pe", "selective_rope", "--pe-rank", "4"]


def run(cmd, cwd, ranks=None, timeout=300):
    if ranks:
        cmd = [mpirun] + mpi_opts + ["-np", str(ranks)] + cmd
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=timeout)
    r.seconds = time.monotonic() - t0
    return r


def check(ok, what, r=None):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what + ("" if r is None else f"\nexit {r.returncode}\nstdout: {r.stdout[-3000:]}\n"
                                                    f"stderr: {r.stderr[-3000:]}"))


def ran(r, what):
    check(r.returncode == 0, what + " runs", r)
    return r.returncode == 0


def same_files(a, b, names, what):
    for n in names:
        pa, pb = os.path.join(a, n), os.path.join(b, n)
        ok = os.path.exists(pa) and os.path.exists(pb) and filecmp.cmp(pa, pb, shallow=False)
        check(ok, f"{what}: {n} identical")


def log_rows(path):
    """step, loss, accuracy, lr, grad_norm: the columns every step writes"""
    with open(path) as f:
        return [[c for i, c in enumerate(line.split(",")) if i in (0, 1, 2, 4, 5)] for line in f.read().splitlines()[1:]]


def tensors(path):
    """A safetensors file's tensors (names, shapes, dtypes, offsets and bytes), without its metadata."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    return header, raw[8 + n:]


def same_tensors(a, b, what):
    ok = os.path.exists(a) and os.path.exists(b) and tensors(a) == tensors(b)
    check(ok, f"{what}: {os.path.basename(a)} and {os.path.basename(b)} hold the same tensors, byte for byte")


def run_dir(root, name):
    d = os.path.join(root, name)
    os.makedirs(d)
    return d


FILES = ["log.csv", "m.st", "m.st.optim-a.safetensors"]
OUT = ["--log", "log.csv", "--save", "m.st"]

with tempfile.TemporaryDirectory() as tmp:
    # 1. Bit identity: R ranks == one process with --grad-accum R.
    for ranks in (2, 3):
        alone = run_dir(tmp, f"alone{ranks}")
        if not ran(run([train] + TINY + ["--steps", "5", "--grad-accum", str(ranks)] + OUT, alone),
                   f"one process --grad-accum {ranks}"):
            continue
        for extra in ([], ["--overlap", "0", "--bucket-kb", "4"]):
            d = run_dir(tmp, f"r{ranks}{len(extra)}")
            r = run([train] + TINY + ["--steps", "5"] + extra + OUT, d, ranks=ranks)
            label = f"{ranks} ranks {' '.join(extra) or '(overlap, one bucket)'}"
            if ran(r, label):
                check("data parallel: %d ranks" % ranks in r.stdout, f"{label}: rank 0 says how it runs", r)
                check(r.stdout.count("model: gla") == 1, f"{label}: only rank 0 prints", r)
                same_files(alone, d, FILES, f"{label} vs --grad-accum {ranks}")
    r = run([train] + TINY + ["--steps", "2", "--grad-accum", "3"], tmp, ranks=3)
    check(r.returncode == 2 and "multiple of --grad-accum x the number of ranks (3 x 3)" in r.stderr
          and r.stderr.count("error:") == 1, "3 ranks x --grad-accum 3 do not split a batch of 12: one message", r)

    # 2. Resume across rank counts: 8 steps, saved after 4 by 2 ranks.
    full = run_dir(tmp, "full")
    ran(run([train] + TINY + ["--steps", "8", "--grad-accum", "2"] + OUT, full), "uninterrupted, --grad-accum 2")
    half = run_dir(tmp, "half")
    if ran(run([train] + TINY + ["--steps", "8", "--stop-at", "4"] + OUT, half, ranks=2), "2 ranks, stop at step 4"):
        one = shutil.copytree(half, os.path.join(tmp, "one"))
        if ran(run([train] + TINY + ["--steps", "8", "--grad-accum", "2", "--resume", "m.st"] + OUT, one),
               "resume on 1 rank (--grad-accum 2)"):
            same_tensors(os.path.join(full, "m.st"), os.path.join(one, "m.st"), "resumed on 1 rank vs uninterrupted")
            same_tensors(os.path.join(full, "m.st.optim-a.safetensors"), os.path.join(one, "m.st.optim-b.safetensors"),
                         "resumed on 1 rank vs uninterrupted")
            check(log_rows(os.path.join(full, "log.csv")) == log_rows(os.path.join(one, "log.csv")),
                  "resumed on 1 rank: the log's losses are the uninterrupted run's")
        three = shutil.copytree(half, os.path.join(tmp, "three"))
        # The reference: one process does steps 1-4 as 2 micro-batches, 5-8 as 3.
        ref = run_dir(tmp, "ref3")
        ran(run([train] + TINY + ["--steps", "8", "--stop-at", "4", "--grad-accum", "2"] + OUT, ref), "reference part 1")
        ran(run([train] + TINY + ["--steps", "8", "--grad-accum", "3", "--resume", "m.st"] + OUT, ref), "reference part 2")
        r = run([train] + TINY + ["--steps", "8", "--resume", "m.st"] + OUT, three, ranks=3)
        if ran(r, "resume on 3 ranks"):
            check("resumed from m.st at step 4" in r.stdout, "3 ranks: resumed at step 4", r)
            same_files(ref, three, ["log.csv", "m.st", "m.st.optim-b.safetensors"], "resumed on 3 ranks vs one process")
            a, b = log_rows(os.path.join(full, "log.csv")), log_rows(os.path.join(three, "log.csv"))
            close = len(a) == len(b) == 8 and all(abs(float(x[1]) - float(y[1])) <= 1e-5 * abs(float(x[1]))
                                                  for x, y in zip(a, b))
            check(close, "resumed on 3 ranks: losses within 1e-5 of the uninterrupted run (another summation order)")

    # 3. Faults.
    # A rank killed (SIGKILL) once a checkpoint exists: the launcher stops the job, rank 0 says
    # where the last checkpoint is, and that checkpoint resumes.
    kill = run_dir(tmp, "kill")
    killer = ('if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then (while [ ! -e m.st ]; do sleep 0.05; done; sleep 0.3; '
              'date +%s.%N > killed_at; kill -9 $$) & fi; exec "$0" "$@"')
    r = run(["sh", "-c", killer, train] + TINY + ["--steps", "1000000", "--save-every", "3"] + OUT, kill, ranks=2,
            timeout=120)
    ended = time.time()
    check(r.returncode != 0, "a killed rank ends the job", r)
    check("rank 0: the launcher is stopping the job: another rank died or failed" in r.stderr
          and "the last checkpoint, of step" in r.stderr and "is m.st" in r.stderr,
          "rank 0 says the job is stopping and names the last checkpoint", r)
    if os.path.exists(os.path.join(kill, "killed_at")):
        with open(os.path.join(kill, "killed_at")) as f:
            delay = ended - float(f.read())
        check(delay < 20, f"the job ended {delay:.1f} s after the kill")
    r2 = run([train] + TINY + ["--steps", "1000000", "--stop-at", "1", "--resume", "m.st"], kill)
    check(r2.returncode == 0 and "stop-at" not in r2.stderr, "the last checkpoint loads", r2)
    # 1 step beyond the saved one: resume to the saved step + 1.
    saved = [l for l in r.stderr.splitlines() if "the last checkpoint, of step" in l]
    if saved:
        step = int(saved[-1].split("of step ")[1].split(",")[0])
        r3 = run([train] + TINY + ["--steps", "1000000", "--stop-at", str(step + 1), "--resume", "m.st"], kill)
        check(r3.returncode == 0 and f"resumed from m.st at step {step}" in r3.stdout,
              f"the last checkpoint (step {step}) resumes", r3)

    # Bad input on one rank.
    r = run([mpirun] + mpi_opts + ["-np", "1", train] + TINY + ["--steps", "2", ":", "-np", "1", train] + TINY +
            ["--steps", "3"], tmp)
    check(r.returncode == 2 and r.stderr.count("the ranks disagree on the command line") == 1
          and "rank(s) 1 differ from rank 0" in r.stderr, "a rank started with other flags: one message", r)
    text = run_dir(tmp, "text")
    for rank in ("0", "1"):
        os.makedirs(os.path.join(text, rank))
        shutil.copy(os.path.join(text_dir, sorted(os.listdir(text_dir))[0]), os.path.join(text, rank, "corpus.txt"))
    with open(os.path.join(text, "1", "corpus.txt"), "a") as f:
        f.write("\n%\nA document only rank 1 has.\n")
    in_rank_dir = 'cd "$OMPI_COMM_WORLD_RANK" && exec "$0" "$@"'
    TEXT = ["--task", "text", "--data", "corpus.txt", "--seq-len", "16", "--eval-windows", "4", "--eval-lengths", "32",
            "--layers", "1", "--dim", "16", "--heads", "2", "--batch", "4", "--steps", "2", "--threads", "1"]
    r = run(["sh", "-c", in_rank_dir, train] + TEXT, text, ranks=2)
    check(r.returncode == 1 and r.stderr.count("the ranks disagree on the training data") == 1,
          "a rank that reads other data: one message from rank 0", r)
    os.remove(os.path.join(text, "1", "corpus.txt"))
    r = run(["sh", "-c", in_rank_dir, train] + TEXT, text, ranks=2)
    check(r.returncode == 1 and "1 of 2 ranks failed" in r.stderr and "rank 1: " in r.stderr
          and r.stderr.count("ranks failed") == 1, "a rank that cannot read its data: rank 0 names it, once", r)
    shutil.copy(os.path.join(text, "0", "corpus.txt"), os.path.join(text, "1", "corpus.txt"))
    r = run(["sh", "-c", in_rank_dir, train] + TEXT + ["--save", "sub/m.st"], text, ranks=2)
    check(r.returncode == 1 and "1 of 2 ranks failed" in r.stderr and "rank 0: " in r.stderr,
          "rank 0 cannot save: every rank stops before training", r)

if failures:
    print(f"\n{len(failures)} failure(s):")
    for f in failures:
        print("-" * 70 + "\n" + f)
    sys.exit(1)
print("all mpi train checks passed")
