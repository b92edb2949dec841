# Usage: pip install torch==2.9.0 transformers peft && python3 scripts/torch-peft-bench.py
# (the README's PyTorch + PEFT reference number; compare with `peftc bench`).
# PyTorch + HF PEFT reference throughput: SmolLM2-135M shapes (random weights),
# LoRA r 8 (alpha 16) on all 7 targets, batch 8 x 256, AdamW, f32, CPU.
import time, torch
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, get_peft_model
torch.manual_seed(0)
threads = torch.get_num_threads()
cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                  num_attention_heads=9, num_key_value_heads=3, rope_theta=1e5, tie_word_embeddings=True,
                  max_position_embeddings=2048, rms_norm_eps=1e-5)
model = LlamaForCausalLM(cfg).float()
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
        target_modules=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
ids = (torch.arange(8 * 257).reshape(8, 257) * 7919) % 49152
x, y = ids[:, :-1], ids[:, 1:]
def step():
    out = model(input_ids=x, labels=None)
    loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 49152), y.reshape(-1))
    loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad()
step()
t = time.time(); n = 3
for _ in range(n): step()
dt = (time.time() - t) / n
print(f"torch {torch.__version__}, {threads} threads, attn={model.config._attn_implementation}: step {dt:.2f} s, {8*256/dt:.1f} tokens/s")
