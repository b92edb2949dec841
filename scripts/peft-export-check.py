#!/usr/bin/env python3
"""HF PEFT on peftc's exports, by hand (transformers + peft from PyPI):
loads the base model with PeftModel.from_pretrained(base, PEFT_DIR) and
compares its logits with transformers' logits of the `peftc merge` output.

    peftc export-peft runs/E/R --out peft-R && peftc merge runs/E/R --out merged-R
    python scripts/peft-export-check.py BASE_HF_DIR peft-R merged-R

Measured on the tiny Phi-3 (fused qkv_proj / gate_up_proj; targets q, v, o,
gate, up, down, so k's rows of the fused B are zero) and Qwen2 (biases)
fixtures, LoRA r 8 and DoRA: max |Δlogit| 4.5e-6 to 5.9e-6 while the adapters
moved the logits by 3.3 to 5.8 (transformers 5.24, peft 0.21.2).
"""
import sys

import peft
import torch
import transformers

base_dir, peft_dir, merged_dir = sys.argv[1:4]
ids = torch.tensor([[172, 47, 117, 192, 67, 251, 195, 103, 9, 211, 21, 242, 36, 87, 70, 216, 88, 140, 58, 193]])
load = lambda d: transformers.AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
base = load(base_dir)
with torch.no_grad():
    before = base(ids).logits
    adapted = peft.PeftModel.from_pretrained(base, peft_dir).eval()(ids).logits
    merged = load(merged_dir)(ids).logits
diff = (adapted - merged).abs().max().item()
print(f"PEFT vs peftc merge: max |dlogit| {diff:.2e}; the adapter moved the logits by {(adapted - before).abs().max().item():.2f}")
sys.exit(0 if diff < 1e-4 else 1)
