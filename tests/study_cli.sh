#!/usr/bin/env bash
# examples/study end to end on a tiny grid: tables with mean [min–max], a claim that holds and one
# that cannot (the exit code must say so), and a rerun that resumes without running anything.
set -euo pipefail
study=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/spec.json" <<'JSON'
{"name": "tiny", "task": "parity",
 "flags": {"layers": 1, "dim": 8, "heads": 2, "seq-len": 8, "eval-lengths": "16", "train-size": 64,
           "test-size": 16, "batch": 16, "steps": 3, "eval-every": 1},
 "variants": {"no PE": {"pe": "none"}, "RoPE": {"pe": "rope"}},
 "seeds": [0, 1],
 "claims": [{"text": "always", "better": "no PE", "than": ["RoPE"], "margin": -2},
            {"text": "never", "better": "no PE", "than": ["RoPE"], "length": 16, "margin": 2,
             "metric": "sequence_accuracy"}]}
JSON
fail() { echo "study_cli: $*" >&2; exit 1; }
if "$study" "$dir/spec.json" --out-dir "$dir/out" > "$dir/first.txt" 2>&1; then fail "a claim that cannot hold must fail the study"; fi
grep -q "4 to do" "$dir/first.txt" || fail "first run should do 4 runs: $(cat "$dir/first.txt")"
grep -q "claim HOLDS: always" "$dir/out/tiny.md" || fail "the margin -2 claim should hold"
grep -q "claim FAILS: never (sequence_accuracy at length 16" "$dir/out/tiny.md" || fail "the margin 2 claim should fail"
grep -Eq '^\| no PE \(2 seeds\) \| [0-9.]+ \[[0-9.]+–[0-9.]+\] \| [0-9.]+ \[' "$dir/out/tiny.md" || fail "no table row: $(cat "$dir/out/tiny.md")"
for f in tiny_curves.svg tiny_lengths.svg tiny/runs/no_PE__s0.csv tiny/runs/RoPE__s1.json; do
  [ -s "$dir/out/$f" ] || fail "missing $f"
done
"$study" "$dir/spec.json" --out-dir "$dir/out" > "$dir/second.txt" 2>&1 || true
grep -q "0 to do" "$dir/second.txt" || fail "a rerun should resume with nothing to do: $(cat "$dir/second.txt")"
# Changed flags rerun every run; a run that fails then leaves no result of the old flags behind
# to be taken for the new ones.
sed -i 's/"steps": 3/"steps": 3, "lr": -1/' "$dir/spec.json"
if "$study" "$dir/spec.json" --out-dir "$dir/out" > "$dir/third.txt" 2>&1; then fail "runs with a bad flag must fail"; fi
grep -q "4 to do" "$dir/third.txt" || fail "changed flags should rerun every run: $(cat "$dir/third.txt")"
"$study" "$dir/spec.json" --out-dir "$dir/out" > "$dir/fourth.txt" 2>&1 || true
grep -q "4 to do" "$dir/fourth.txt" || fail "failed runs must be rerun, not resumed from an old result: $(cat "$dir/fourth.txt")"
echo "study_cli: ok"
