# Usage: pip install torch==2.9.0 transformers peft && python3 scripts/torch-peft-bench.py
#   [--batch 8] [--seq 256] [--device cpu|cuda] [--bf16] [--steps 3] [--warmup 1]
# (the README's PyTorch + PEFT reference number; compare with `peftc bench`).
# PyTorch + HF PEFT reference throughput: SmolLM2-135M shapes (random weights),
# LoRA r 8 (alpha 16) on all 7 targets, AdamW, f32 (or bf16 autocast on the
# GPU), global-norm clipping at 1.0. The last line is a `summary` line in the
# format of `peftc bench`'s, which scripts/gpu-check.sh tabulates.
import argparse, time, torch
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, get_peft_model

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=8)
p.add_argument("--seq", type=int, default=256)
p.add_argument("--device", default="cpu")
p.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
p.add_argument("--steps", type=int, default=3)
p.add_argument("--warmup", type=int, default=1)
a = p.parse_args()

torch.manual_seed(0)
threads = torch.get_num_threads()
dev = torch.device(a.device)
cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                  num_attention_heads=9, num_key_value_heads=3, rope_theta=1e5, tie_word_embeddings=True,
                  max_position_embeddings=8192, rms_norm_eps=1e-5)
model = LlamaForCausalLM(cfg).float().to(dev)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
        target_modules=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
ids = ((torch.arange(a.batch * (a.seq + 1)).reshape(a.batch, a.seq + 1) * 7919) % 49152).to(dev)
x, y = ids[:, :-1], ids[:, 1:]


def step():
    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.bf16):
        out = model(input_ids=x, labels=None)
    loss = torch.nn.functional.cross_entropy(out.logits.float().reshape(-1, 49152), y.reshape(-1))
    loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad()


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


for _ in range(a.warmup):
    step()
sync()
if dev.type == "cuda":
    torch.cuda.reset_peak_memory_stats()
t = time.time()
for _ in range(a.steps):
    step()
sync()
dt = (time.time() - t) / a.steps
tps = a.batch * a.seq / dt
mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")
print(f"torch {torch.__version__}, {threads} threads, attn={model.config._attn_implementation}, {a.device}: step {dt:.3f} s, {tps:.1f} tokens/s, peak {mem:.2f} GiB")
print(f"summary      backend=torch-{a.device} precision={'bf16' if a.bf16 else 'f32'} batch={a.batch} seq={a.seq} step_s={dt:.4f} tokens_per_s={tps:.1f} gpu_mib={mem * 1024:.0f}")
