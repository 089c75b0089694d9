#!/usr/bin/env bash
# Suite "cli": examples/train and examples/infer given bad input. Every case must end with the
# documented exit code (2: a usage error, 1: a file or configuration error) and a message naming
# the problem, never with a signal (an abort, a segfault: exit code >= 128).
#   tests/bad_input_cli.sh TRAIN INFER CORPUS_DIR
set -uo pipefail
train=$1 infer=$2 corpus=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# expect CODE TEXT CMD...: CMD exits with CODE and its output contains TEXT.
expect() {
  local code=$1 text=$2
  shift 2
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [[ $rc -eq $code && $out == *"$text"* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAIL: %s\n  wanted exit %s and "%s", got exit %s:\n%s\n\n' "$*" "$code" "$text" "$rc" "$(head -c 2000 <<<"$out")"
  fi
}
# refute TEXT CMD...: CMD's output does not contain TEXT (and it did not die of a signal).
refute() {
  local text=$1
  shift
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [[ $rc -lt 128 && $out != *"$text"* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAIL: %s\n  output should not contain "%s" (exit %s):\n%s\n\n' "$*" "$text" "$rc" "$(head -c 2000 <<<"$out")"
  fi
}

# A run small enough to take a fraction of a second.
base=(--vocab 16 --seq-len 8 --kv-pairs 2 --train-size 16 --test-size 4 --layers 1 --batch 4 --eval-every 0
      --threads 1)
small=("${base[@]}" --dim 8 --heads 2 --steps 2)

# ---- train: flag values ----
expect 2 "needs a value" "$train" --steps
expect 2 "--steps needs a value" "$train" --steps --lr 0.1
expect 2 "--steps must be an integer" "$train" --steps abc
expect 2 "--steps must be an integer" "$train" --steps 1.5
expect 2 "--steps must be an integer" "$train" --steps ""
expect 2 "--steps must be an integer" "$train" --steps 99999999999999999999
expect 2 "--steps must be in" "$train" --steps 0
expect 2 "--steps must be in" "$train" --steps -3
expect 2 "--lr must be a number" "$train" --lr nan
expect 2 "--lr must be a number" "$train" --lr -1
expect 2 "--lr must be a number" "$train" --lr 1e-3x
expect 2 "--lr must be a number" "$train" --lr inf
expect 2 "--weight-decay must be a number in" "$train" --weight-decay 11
expect 2 "--eval-lengths must be a comma-separated list" "$train" --task text --eval-lengths 8,x
expect 2 "--dim must be in" "$train" --dim 100000
expect 2 "--mixer must be one of" "$train" --mixer lstm
expect 2 "--pe must be one of" "$train" --pe selective-rope
expect 2 "unknown flag --bogus" "$train" --bogus 1
expect 2 "unexpected argument" "$train" steps=3
expect 2 "given twice" "$train" --steps 3 --steps 4
# ---- train: flags that contradict each other ----
expect 2 "not divisible by num_heads" "$train" --dim 32 --heads 3
expect 2 "--batch must not exceed --train-size" "$train" --batch 100 --train-size 10
expect 2 "--stop-at must be in" "$train" --steps 3 --stop-at 5
expect 2 "--warmup must be in" "$train" --steps 5 --warmup 10
expect 2 "--min-lr must be a number" "$train" --lr 0.1 --min-lr 1
expect 2 "--save-every needs --save" "$train" "${small[@]}" --save-every 1
expect 1 "num_kv_pairs 40" "$train" --kv-pairs 40 --seq-len 8

# ---- train: --save is checked before training ----
expect 1 "no_such_dir" "$train" "${small[@]}" --save "$tmp/no_such_dir/ck.safetensors"
refute "step " "$train" "${small[@]}" --save "$tmp/no_such_dir/ck.safetensors"
echo x >"$tmp/plain_file"
expect 1 "is not a directory" "$train" "${small[@]}" --save "$tmp/plain_file/ck.safetensors"
mkdir "$tmp/a_directory"
expect 1 "not a regular file" "$train" "${small[@]}" --save "$tmp/a_directory"
ln -s "$tmp/plain_file" "$tmp/a_link"
expect 1 "not a regular file" "$train" "${small[@]}" --save "$tmp/a_link"
[[ $(cat "$tmp/plain_file") == x ]] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: the symlink's target changed"; }
# No file can be created in /proc, even by root (for whom permission bits never refuse).
expect 1 "cannot save to '/proc/rotor_ck.safetensors'" "$train" "${small[@]}" --save /proc/rotor_ck.safetensors
refute "step " "$train" "${small[@]}" --save /proc/rotor_ck.safetensors
if [[ $(id -u) -ne 0 ]]; then
  mkdir "$tmp/read_only" && chmod 500 "$tmp/read_only"
  expect 1 "Permission denied" "$train" "${small[@]}" --save "$tmp/read_only/ck.safetensors"
fi

# ---- train: --resume ----
expect 0 "final test accuracy" "$train" "${small[@]}" --save "$tmp/ck.safetensors"
expect 0 "resumed from" "$train" "${base[@]}" --dim 8 --heads 2 --steps 3 --resume "$tmp/ck.safetensors" --save "$tmp/ck2.safetensors"
expect 1 "cannot open" "$train" "${small[@]}" --resume "$tmp/missing.safetensors"
expect 1 "not a regular file" "$train" "${small[@]}" --resume "$tmp/a_directory"
mkfifo "$tmp/a_fifo"  # would block a reader forever
expect 1 "not a regular file" timeout 60 "$train" "${small[@]}" --resume "$tmp/a_fifo"
: >"$tmp/empty.safetensors"
expect 1 "file too short" "$train" "${small[@]}" --resume "$tmp/empty.safetensors"
if [[ $(id -u) -ne 0 ]]; then
  cp "$tmp/ck.safetensors" "$tmp/unreadable.safetensors" && chmod 000 "$tmp/unreadable.safetensors"
  expect 1 "Permission denied" "$train" "${small[@]}" --resume "$tmp/unreadable.safetensors"
fi
head -c 300 /dev/urandom >"$tmp/noise.safetensors"
expect 1 "[safetensors]" "$train" "${small[@]}" --resume "$tmp/noise.safetensors"
head -c 500 "$tmp/ck.safetensors" >"$tmp/cut.safetensors"
expect 1 "[safetensors]" "$train" "${small[@]}" --resume "$tmp/cut.safetensors"
mkdir "$tmp/elsewhere"
cp "$tmp/ck.safetensors" "$tmp/elsewhere/"  # the model file without its optimizer file
expect 1 "cannot open" "$train" "${small[@]}" --resume "$tmp/elsewhere/ck.safetensors"
mkdir "$tmp/torn"  # the model file with a cut optimizer file
cp "$tmp/ck.safetensors" "$tmp/torn/"
for f in "$tmp"/ck.safetensors.optim-*; do head -c 200 "$f" >"$tmp/torn/$(basename "$f")"; done
expect 1 "[safetensors]" "$train" "${small[@]}" --resume "$tmp/torn/ck.safetensors"
expect 1 "num_heads: saved 2, now 4" "$train" "${base[@]}" --dim 8 --heads 4 --steps 2 --resume "$tmp/ck.safetensors"
expect 1 "hidden_size: saved 8, now 16" "$train" "${base[@]}" --dim 16 --heads 2 --steps 2 --resume "$tmp/ck.safetensors"
expect 1 "2 fields differ" "$train" "${base[@]}" --dim 16 --heads 4 --steps 2 --resume "$tmp/ck.safetensors"
expect 1 "num_heads: saved 2, now 4" "$train" "${base[@]}" --dim 16 --heads 4 --steps 2 --resume "$tmp/ck.safetensors"
expect 1 "position_embedding.type: saved \"selective_rope\", now \"rope\"" "$train" "${small[@]}" --pe rope --resume "$tmp/ck.safetensors"
expect 1 "other data" "$train" "${small[@]}" --seed 5 --resume "$tmp/ck.safetensors"
for f in "$corpus"/checkpoint/*.safetensors; do
  case $(basename "$f") in ok_*) continue ;; esac
  refute "terminate called" "$train" "${small[@]}" --resume "$f"
done

# ---- infer ----
ck=$tmp/ck.safetensors
expect 2 "--checkpoint is required" "$infer"
expect 2 "give either" "$infer" --checkpoint "$ck"
expect 2 "go together" "$infer" --checkpoint "$ck" --input "$tmp/x.npy"
expect 2 "give either" "$infer" --checkpoint "$ck" --prompt "1 2" --input "$tmp/x.npy" --output "$tmp/y.npy"
expect 2 "--generate must be an integer" "$infer" --checkpoint "$ck" --prompt 1 --generate abc
expect 2 "--generate must be in" "$infer" --checkpoint "$ck" --prompt 1 --generate -1
expect 2 "--prompt must be token ids" "$infer" --checkpoint "$ck" --prompt "1 x" --generate 1
expect 2 "--prompt must be token ids" "$infer" --checkpoint "$ck" --prompt "1 99999999999999999999" --generate 1
expect 2 "--prompt is empty" "$infer" --checkpoint "$ck" --prompt " " --generate 1
expect 1 "outside the vocabulary" "$infer" --checkpoint "$ck" --prompt "1 16" --generate 1
expect 1 "outside the vocabulary" "$infer" --checkpoint "$ck" --prompt "-1" --generate 1
expect 0 "generated:" "$infer" --checkpoint "$ck" --prompt "1 2 3" --generate 3
expect 2 "--prompt needs --generate" "$infer" --checkpoint "$ck" --prompt "1 2 3"
expect 2 "--top-p must be" "$infer" --checkpoint "$ck" --prompt "1 2 3" --generate 3 --top-p 0
expect 2 "--top-p must be" "$infer" --checkpoint "$ck" --prompt "1 2 3" --generate 3 --top-p 1.5
expect 1 "cannot open" "$infer" --checkpoint "$tmp/missing.safetensors" --prompt 1 --generate 1
expect 1 "[safetensors]" "$infer" --checkpoint "$tmp/noise.safetensors" --prompt 1 --generate 1
expect 1 "[safetensors]" "$infer" --checkpoint "$tmp/cut.safetensors" --prompt 1 --generate 1
expect 1 "[load_npy]" "$infer" --checkpoint "$ck" --input "$tmp/noise.safetensors" --output "$tmp/y.npy"
expect 1 "int64 [B, T]" "$infer" --checkpoint "$ck" --input "$corpus/npy/ok_float32.npy" --output "$tmp/y.npy"
expect 1 "int64 [B, T]" "$infer" --checkpoint "$ck" --input "$corpus/npy/ok_float32_2d.npy" --output "$tmp/y.npy"
expect 1 "[save_npy]" "$infer" --checkpoint "$ck" --input "$corpus/npy/ok_ids.npy" --output "$tmp/no_such_dir/y.npy"
expect 0 "wrote" "$infer" --checkpoint "$ck" --input "$corpus/npy/ok_ids.npy" --output "$tmp/y.npy"
# Every malformed checkpoint of the corpus: a clear error (exit 1), never a crash.
for f in "$corpus"/checkpoint/*.safetensors; do
  case $(basename "$f") in
    ok_*) expect 0 "generated:" "$infer" --checkpoint "$f" --prompt "1 2" --generate 1 ;;
    any_*) refute "terminate called" "$infer" --checkpoint "$f" --prompt "1 2" --generate 1 ;;
    *) expect 1 "[" "$infer" --checkpoint "$f" --prompt "1 2" --generate 1 ;;
  esac
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
