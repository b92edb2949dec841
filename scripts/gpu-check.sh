#!/usr/bin/env bash
# Issue 10's GPU measurements in one run (about 10 minutes on an H200), on a
# machine without internet: binaries from scripts/gpu-build.sh in gpu/bin/,
# the model in models/ and GSM8K in data/gsm8k (carried over), torch +
# transformers + peft installed. Prints one table and writes everything under
# $OUT (default gpu/out):
#   1. fusion check: the first 20 real training steps of specs/compare
#      (batch 16, max_len 512) on the unfused and the fused cuda build and on
#      the CPU; fusion is accepted only if its per-step losses match the
#      unfused build's within 1e-3 (and both the CPU's);
#   2. the bench matrix: {cuda, fusion} × {f32, bf16} × {8×256, 16×512, 64×256}
#      (peftc bench, warm-up 3, 10 timed steps, host reads per step, phases),
#      and scripts/torch-peft-bench.py at the same shapes, f32 and bf16
#      autocast, in the same run;
#   3. one epoch of PEFT-equivalent LoRA on all of GSM8K with its losses.
# GPU_CHECK_DRY=1 runs the same steps on the CPU binary with tiny sizes, to
# check the script itself where there is no GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu/out}
BIN=${GPU_BIN:-gpu/bin}
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then
    BUILDS="cpu"; BACKEND=ndarray; PRECISIONS="f32"; SHAPES="2x16 2x32"; STEPS=2; WARM=1; CHECK_STEPS=2
    TORCH_DEVICE=cpu; EPOCH_TRAIN=16; EPOCH_TEST=8
else
    BUILDS="cuda fusion"; BACKEND=cuda; PRECISIONS="f32 bf16"; SHAPES="8x256 16x512 64x256"; STEPS=10; WARM=3; CHECK_STEPS=20
    TORCH_DEVICE=cuda; EPOCH_TRAIN=all; EPOCH_TEST=all
fi
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi") > "$OUT/gpu.txt" 2>&1
sha256sum "$MODEL" >> "$OUT/gpu.txt"

# 1. Fusion check: per-step losses of the first real batches.
losses() { grep '^losses' "$1" | sed 's/^losses *//; s/ (bits.*//'; }
CHECK_BUILDS="$BUILDS cpu"; [ "$BUILDS" = cpu ] && CHECK_BUILDS=cpu
for b in $CHECK_BUILDS; do
    be=$BACKEND; [ "$b" = cpu ] && be=ndarray
    timeout 600 "$BIN/peftc-$b" bench --scheme specs/compare/compare.peft --data --backend "$be" \
        --warmup 0 --steps "$CHECK_STEPS" > "$OUT/check-$b.txt" 2>&1 || echo "check $b failed (see $OUT/check-$b.txt)"
done
FUSION_OK=$($PY - "$OUT" $BUILDS <<'PY'
import sys
out, builds = sys.argv[1], sys.argv[2:]
def read(b):
    try:
        for l in open(f"{out}/check-{b}.txt"):
            if l.startswith("losses"):
                return [float(x) for x in l.split()[1:] if x[0].isdigit()]
    except OSError:
        pass
    return None
cpu, unf, fus = read("cpu"), read(builds[0]), read(builds[-1])
ok = all(x is not None for x in (cpu, unf, fus)) and len(unf) == len(fus) and len(unf) > 0
d_fu = max((abs(a - b) for a, b in zip(unf, fus)), default=float("nan")) if ok else float("nan")
d_uc = max((abs(a - b) for a, b in zip(unf, cpu)), default=float("nan")) if ok else float("nan")
print(f"{'yes' if ok and d_fu <= 1e-3 else 'no'} (max |fused - unfused| {d_fu:.2e}, |unfused - cpu| {d_uc:.2e} bits over {len(unf or [])} steps)")
PY
)
[ "${GPU_CHECK_DRY:-0}" = 1 ] && FUSION_OK="$FUSION_OK [dry run: the CPU build against itself]"
echo "fusion accepted: $FUSION_OK" | tee "$OUT/fusion.txt"

# 2. The bench matrix and PyTorch + PEFT at the same shapes.
: > "$OUT/summary.txt"
for b in $BUILDS; do for p in $PRECISIONS; do for s in $SHAPES; do
    bs=${s%x*}; sq=${s#*x}
    # GPU memory, sampled every 200 ms while the bench runs (peak in MiB).
    (nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$OUT/mem-$b-$p-$s.txt" 2>/dev/null &
     echo $! > "$OUT/mem.pid"; wait) &
    timeout 300 "$BIN/peftc-$b" bench --model "$MODEL" --scheme specs/compare/compare.peft --backend "$BACKEND" \
        --precision "$p" --batch "$bs" --seq "$sq" --warmup "$WARM" --steps "$STEPS" --phases > "$OUT/bench-$b-$p-$s.txt" 2>&1
    kill "$(cat "$OUT/mem.pid" 2>/dev/null)" 2>/dev/null; wait 2>/dev/null
    mib=$(sort -n "$OUT/mem-$b-$p-$s.txt" 2>/dev/null | tail -1); mib=${mib:-?}
    grep '^summary' "$OUT/bench-$b-$p-$s.txt" | sed "s/^summary */build=$b gpu_mib=$mib /" >> "$OUT/summary.txt" || echo "build=$b precision=$p shape=$s failed" >> "$OUT/summary.txt"
done; done; done
for p in $PRECISIONS; do for s in $SHAPES; do
    bs=${s%x*}; sq=${s#*x}; flag=""; [ "$p" = bf16 ] && flag=--bf16
    timeout 300 $PY scripts/torch-peft-bench.py --device "$TORCH_DEVICE" --batch "$bs" --seq "$sq" \
        --warmup "$WARM" --steps "$STEPS" $flag > "$OUT/torch-$p-$s.txt" 2>&1
    grep '^summary' "$OUT/torch-$p-$s.txt" | sed "s/^summary */build=torch /" >> "$OUT/summary.txt" || echo "build=torch precision=$p shape=$s failed" >> "$OUT/summary.txt"
done; done

# 3. One epoch of the PEFT-equivalent LoRA on GSM8K (the fused build if accepted).
best=${BUILDS##* }; case "$FUSION_OK" in yes*) ;; *) best=${BUILDS%% *};; esac
mkdir -p "$OUT/epoch/specs"
sed -e "s|train: 512, test: 256|train: $EPOCH_TRAIN, test: $EPOCH_TEST|; s|epochs: 2|epochs: 1|" \
    -e "s|\"../schemes.peft\"|\"$PWD/specs/schemes.peft\"|; s|\"../../models/|\"$PWD/models/|; s|\"../../data/gsm8k\"|\"$PWD/data/gsm8k\"|" \
    specs/compare/compare.peft > "$OUT/epoch/specs/epoch.peft"
be=$BACKEND; [ "$best" = cpu ] && be=ndarray
timeout 900 "$BIN/peftc-$best" run "$OUT/epoch/specs" --backend "$be" --quiet --runs-dir "$OUT/epoch/runs" \
    --reports-dir "$OUT/epoch/reports" > "$OUT/epoch.txt" 2>&1 || echo "epoch run failed (see $OUT/epoch.txt)"

# The table.
$PY - "$OUT" <<'PY'
import sys, json, glob
out = sys.argv[1]
rows = []
for l in open(f"{out}/summary.txt"):
    kv = dict(x.split("=", 1) for x in l.split() if "=" in x)
    rows.append(kv)
print("| build | precision | batch × seq | step s | tokens/s | host reads/step | MFU % | GPU MiB |")
print("|---|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r.get('build')} | {r.get('precision')} | {r.get('batch','?')} × {r.get('seq', r.get('shape','?'))} | {r.get('step_s','—')} | {r.get('tokens_per_s','failed')} | {r.get('host_reads_per_step','—')} | {r.get('mfu_pct','—')} | {r.get('gpu_mib','—')} |")
print()
print("fusion accepted:", open(f"{out}/fusion.txt").read().split(":", 1)[1].strip())
for m in glob.glob(f"{out}/epoch/runs/*/*/metrics.json"):
    j = json.load(open(m))
    e = j["epochs"][-1] if j["epochs"] else {}
    print(f"epoch run {j['run_name']}: {j['status']['state']}, train {e.get('train_bits', float('nan')):.4f} bits, test {e.get('test_bits_all', float('nan')):.4f} bits, {j['train_tokens_per_s']:.0f} tokens/s, base {j['base']['test_bits_all']:.4f}")
PY
