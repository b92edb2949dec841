#!/usr/bin/env python3
"""HF PEFT's trainable-parameter count for LoRA r 8 on all seven projections
(q, k, v, o, gate, up, down) of every preset peftc knows, from each model's
published config shapes, instantiated on the meta device (no weights, no
download). The numbers are pinned in tests/it/lang_counts.rs
(`presets_count_like_hf_peft`). Run by hand: pip install torch transformers peft.
"""
import torch
import transformers as t
from peft import LoraConfig, get_peft_model

PRESETS = {
    "smollm2-135m": (t.LlamaConfig, dict(num_hidden_layers=30, hidden_size=576, intermediate_size=1536,
                     num_attention_heads=9, num_key_value_heads=3, head_dim=64, vocab_size=49152)),
    "llama-3.1-8b": (t.LlamaConfig, dict(num_hidden_layers=32, hidden_size=4096, intermediate_size=14336,
                     num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=128256)),
    "llama-3.2-1b": (t.LlamaConfig, dict(num_hidden_layers=16, hidden_size=2048, intermediate_size=8192,
                     num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256)),
    "gemma-2b": (t.GemmaConfig, dict(num_hidden_layers=18, hidden_size=2048, intermediate_size=16384,
                 num_attention_heads=8, num_key_value_heads=1, head_dim=256, vocab_size=256000)),
    "gemma-2-2b": (t.Gemma2Config, dict(num_hidden_layers=26, hidden_size=2304, intermediate_size=9216,
                   num_attention_heads=8, num_key_value_heads=4, head_dim=256, vocab_size=256000)),
    "gemma-3-270m": (t.Gemma3TextConfig, dict(num_hidden_layers=18, hidden_size=640, intermediate_size=2048,
                     num_attention_heads=4, num_key_value_heads=1, head_dim=256, vocab_size=262144)),
    "qwen2.5-0.5b": (t.Qwen2Config, dict(num_hidden_layers=24, hidden_size=896, intermediate_size=4864,
                     num_attention_heads=14, num_key_value_heads=2, vocab_size=151936)),
    "mistral-7b": (t.MistralConfig, dict(num_hidden_layers=32, hidden_size=4096, intermediate_size=14336,
                   num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=32768)),
}

for name, (cls, kw) in PRESETS.items():
    cfg = cls(**kw)
    with torch.device("meta"):
        model = t.AutoModelForCausalLM.from_config(cfg)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in peft.parameters() if p.requires_grad)
    print(f'("{name}", {trainable}),')
