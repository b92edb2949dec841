#!/usr/bin/env python3
"""Reference numbers for Gemma 3 270M (the Q4_K_M GGUF) on GSM8K, from HF transformers.

Measures, with transformers (AutoModelForCausalLM.from_pretrained(models, gguf_file=...), float32,
eager attention, CPU), the base model's GSM8K test loss on the first 32 test examples, in bits per
predicted token, over all predicted tokens and over the completion only, with peftc's protocol:

  text   = f"Question: {question}\\nAnswer: {answer}"  encoded with NO special tokens,
  tokens = [bos] + ids(text) + [eos]      bos, eos: tokenizer.ggml.bos_token_id / eos_token_id of the GGUF
  prompt = [bos] + ids(f"Question: {question}\\nAnswer:")   (must be a prefix of tokens; checked)
  predicted positions t = 1..n-1 (target tokens[t] given tokens[:t]); completion: t >= len(prompt)
  loss   = -log2 softmax(logits[t-1])[tokens[t]], from float32 logits, log-softmax in float64

Before measuring it checks, and prints:
  - the loaded config against the GGUF metadata and llama.cpp's gemma3 rules (sliding window,
    5:1 local:global layer pattern, rope bases 1e6 / 10000, query_pre_attn_scalar, no softcaps, ...);
  - that the weights transformers loaded equal gguf-py's gguf.quants.dequantize (one tensor of each
    of Q4_K, Q6_K, Q5_0, Q8_0, plus the F32 norms, which it stores as w-1), and how transformers' own
    torch dequantizer (integrations/gguf/dequant.py, used only by its newer GGUF path) compares;
  - an independent float32 forward written here from the raw GGUF tensors with llama.cpp's
    conventions (norm weights used as stored, i.e. (1+w); embeddings * sqrt(hidden); q/k RMSNorm;
    NEOX RoPE with base 10000 on sliding layers and 1e6 on global ones; scores / sqrt(256); tanh GELU;
    tied output) against transformers' logits on example 0.

Writes tests/fixtures/reference/gemma3-270m-gsm8k-base.json.

Run (after `bash scripts/setup.sh --model gemma3-270m`; about 2-4 minutes on 2 CPU cores):
  /work/venv/bin/python scripts/gemma3-reference.py
"""

import argparse
import hashlib
import importlib.metadata as md
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
N_EXAMPLES = 32
DETAIL_EXAMPLES = 2
DETAIL_POSITIONS = (0, 10, 20)
LN2 = math.log(2.0)

problems = []


def problem(msg):
    problems.append(msg)
    print("  PROBLEM:", msg)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def gguf_meta(reader):
    out = {}
    for k, f in reader.fields.items():
        if k in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
            continue
        if k.startswith("GGUF."):
            continue
        v = f.contents()
        out[k] = v
    return out


def check_config(cfg, meta):
    """The loaded config against the GGUF and llama.cpp's gemma3 rules."""
    print("\n== config vs GGUF metadata ==")
    a = "gemma3"
    n_layer = meta[f"{a}.block_count"]
    rows = [
        ("hidden_size", meta[f"{a}.embedding_length"], cfg.hidden_size),
        ("num_hidden_layers", n_layer, cfg.num_hidden_layers),
        ("intermediate_size", meta[f"{a}.feed_forward_length"], cfg.intermediate_size),
        ("num_attention_heads", meta[f"{a}.attention.head_count"], cfg.num_attention_heads),
        ("num_key_value_heads", meta[f"{a}.attention.head_count_kv"], cfg.num_key_value_heads),
        ("head_dim (key_length)", meta[f"{a}.attention.key_length"], cfg.head_dim),
        ("value_length", meta[f"{a}.attention.value_length"], cfg.head_dim),
        ("rms_norm_eps", meta[f"{a}.attention.layer_norm_rms_epsilon"], cfg.rms_norm_eps),
        ("max_position_embeddings", meta[f"{a}.context_length"], cfg.max_position_embeddings),
        ("sliding_window", meta[f"{a}.attention.sliding_window"], cfg.sliding_window),
        ("rope theta (full_attention)", meta[f"{a}.rope.freq_base"], cfg.rope_parameters["full_attention"]["rope_theta"]),
        ("vocab_size (len tokens)", None, cfg.vocab_size),
        ("bos_token_id", meta["tokenizer.ggml.bos_token_id"], cfg.bos_token_id),
        ("eos_token_id", meta["tokenizer.ggml.eos_token_id"], cfg.eos_token_id),
        ("pad_token_id", meta["tokenizer.ggml.padding_token_id"], cfg.pad_token_id),
    ]
    for name, g, c in rows:
        same = g is None or (abs(g - c) <= 1e-6 * abs(g) if isinstance(g, float) else g == c)
        print(f"  {name:30s} gguf={g!r:>14} config={c!r}{'' if same else '   <-- DIFFERS'}")
        if not same:
            problem(f"config {name}: gguf {g!r} vs config {c!r}")
    # Not in the file: what llama.cpp hard-codes for gemma3 (src/llama-model.cpp) vs transformers' defaults.
    swa_llama = [il % 6 < 5 for il in range(n_layer)]  # hparams.set_swa_pattern(6)
    swa_hf = [t == "sliding_attention" for t in cfg.layer_types]
    local_base = cfg.rope_parameters["sliding_attention"]["rope_theta"]
    head_dim = meta[f"{a}.attention.key_length"]
    rules = [
        ("layer_types (sliding where il%6<5)", swa_llama == swa_hf,
         "full layers: " + str([i for i, s in enumerate(swa_hf) if not s])),
        ("rope local base 10000 (sliding layers)", local_base == 10000.0, f"config {local_base}"),
        ("query_pre_attn_scalar**-0.5 == 1/sqrt(head_dim)", abs(cfg.query_pre_attn_scalar ** -0.5 - head_dim ** -0.5) < 1e-12,
         f"query_pre_attn_scalar {cfg.query_pre_attn_scalar}"),
        ("no attn_logit_softcapping", cfg.attn_logit_softcapping is None, f"{cfg.attn_logit_softcapping}"),
        ("no final_logit_softcapping", cfg.final_logit_softcapping is None, f"{cfg.final_logit_softcapping}"),
        ("rope_type default (no scaling) both", all(cfg.rope_parameters[t]["rope_type"] == "default" for t in cfg.rope_parameters),
         json.dumps(cfg.rope_parameters)),
        ("hidden_activation gelu_pytorch_tanh", cfg.hidden_activation == "gelu_pytorch_tanh", cfg.hidden_activation),
        ("tie_word_embeddings (no output.weight)", cfg.tie_word_embeddings is True, str(cfg.tie_word_embeddings)),
        ("attention_bias False", cfg.attention_bias is False, str(cfg.attention_bias)),
        ("use_bidirectional_attention False", not cfg.use_bidirectional_attention, str(cfg.use_bidirectional_attention)),
    ]
    for name, ok, detail in rules:
        print(f"  {name:48s} {'ok' if ok else 'DIFFERS'}   ({detail})")
        if not ok:
            problem(f"config rule {name}: {detail}")


def check_weights(model, reader):
    """Loaded parameters vs gguf-py's dequantize; transformers' torch dequantizer vs gguf-py."""
    import gguf
    from gguf import GGMLQuantizationType as Q

    print("\n== dequantization ==")
    sd = model.state_dict()
    by_name = {t.name: t for t in reader.tensors}
    hf = {
        "blk.0.attn_output.weight": "model.layers.0.self_attn.o_proj.weight",
        "blk.0.ffn_down.weight": "model.layers.0.mlp.down_proj.weight",
        "blk.2.ffn_down.weight": "model.layers.2.mlp.down_proj.weight",
        "blk.0.attn_q.weight": "model.layers.0.self_attn.q_proj.weight",
        "blk.0.attn_v.weight": "model.layers.0.self_attn.v_proj.weight",
        "token_embd.weight": "model.embed_tokens.weight",
        "blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
        "blk.0.post_attention_norm.weight": "model.layers.0.post_attention_layernorm.weight",
        "blk.0.ffn_norm.weight": "model.layers.0.pre_feedforward_layernorm.weight",
        "blk.0.post_ffw_norm.weight": "model.layers.0.post_feedforward_layernorm.weight",
        "blk.0.attn_q_norm.weight": "model.layers.0.self_attn.q_norm.weight",
        "blk.0.attn_k_norm.weight": "model.layers.0.self_attn.k_norm.weight",
        "output_norm.weight": "model.norm.weight",
    }
    result = {}
    try:
        from transformers.integrations.gguf import dequant as tdq
    except Exception:  # noqa: BLE001
        tdq = None
    for gname, pname in hf.items():
        t = by_name[gname]
        ref = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        is_norm = "norm" in gname
        expect = torch.from_numpy(ref - np.float32(1.0) if is_norm else ref)
        got = sd[pname].detach()
        exact = got.shape == expect.shape and torch.equal(got, expect)
        diff = float((got - expect).abs().max()) if got.shape == expect.shape else float("nan")
        line = f"  {gname:34s} {t.tensor_type.name:5s} -> {pname:50s} {tuple(got.shape)} " + \
               ("exact" if exact else f"max|diff| {diff:.3g}") + (" (stored w; HF holds w-1)" if is_norm else "")
        entry = {"ggml_type": t.tensor_type.name, "hf_param": pname, "equal_to_gguf_py": exact}
        if tdq is not None and t.tensor_type in (Q.Q4_K, Q.Q6_K, Q.Q8_0, Q.Q5_0):
            raw = torch.from_numpy(np.ascontiguousarray(t.data).view(np.uint8).reshape(-1).copy())
            try:
                alt = tdq.dequantize(raw, int(t.tensor_type)).reshape(ref.shape).numpy()
                d2 = float(np.abs(alt - ref).max())
                entry["transformers_torch_dequant_max_abs_diff"] = d2
                line += f" | transformers torch dequant: {'exact' if d2 == 0 else f'max|diff| {d2:.3g}'}"
            except Exception as e:  # noqa: BLE001
                entry["transformers_torch_dequant"] = f"unsupported: {e}".split(". Supported")[0]
                line += f" | transformers torch dequant: unsupported ({t.tensor_type.name})"
        print(line)
        if not exact:
            problem(f"{gname} loaded weight differs from gguf-py dequantize (max {diff})")
        result[gname] = entry
    return result


def manual_forward(reader, meta, ids):
    """Independent float32 Gemma 3 forward from the GGUF tensors, llama.cpp conventions."""
    import gguf

    a = "gemma3"
    W = {}

    def w(name):
        if name not in W:
            t = next(t for t in reader.tensors if t.name == name)
            W[name] = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32))
        return W[name]

    H = meta[f"{a}.embedding_length"]
    nh, nkv, hd = meta[f"{a}.attention.head_count"], meta[f"{a}.attention.head_count_kv"], meta[f"{a}.attention.key_length"]
    eps = meta[f"{a}.attention.layer_norm_rms_epsilon"]
    L = meta[f"{a}.block_count"]
    base_global = meta[f"{a}.rope.freq_base"]
    window = meta[f"{a}.attention.sliding_window"]
    T = len(ids)

    def rms(x, g):  # g is the stored weight (already 1 + w)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g

    def rope(x, base):  # x [heads, T, hd], NEOX (rotate half)
        inv = 1.0 / (base ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
        cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    emb = w("token_embd.weight")
    h = emb[torch.tensor(ids)] * torch.tensor(math.sqrt(H), dtype=torch.float32)
    qpos, kpos = torch.arange(T)[:, None], torch.arange(T)[None, :]
    for il in range(L):
        p = f"blk.{il}."
        swa = il % 6 < 5
        x = rms(h, w(p + "attn_norm.weight"))
        q = (x @ w(p + "attn_q.weight").T).view(T, nh, hd).transpose(0, 1)
        k = (x @ w(p + "attn_k.weight").T).view(T, nkv, hd).transpose(0, 1)
        v = (x @ w(p + "attn_v.weight").T).view(T, nkv, hd).transpose(0, 1)
        q, k = rms(q, w(p + "attn_q_norm.weight")), rms(k, w(p + "attn_k_norm.weight"))
        base = 10000.0 if swa else base_global
        q, k = rope(q, base), rope(k, base)
        k, v = k.repeat_interleave(nh // nkv, 0), v.repeat_interleave(nh // nkv, 0)
        s = (q @ k.transpose(1, 2)) * (hd ** -0.5)
        allowed = kpos <= qpos
        if swa:
            allowed &= kpos > qpos - window
        s = s.masked_fill(~allowed, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(T, nh * hd)
        o = o @ w(p + "attn_output.weight").T
        h = h + rms(o, w(p + "post_attention_norm.weight"))
        x = rms(h, w(p + "ffn_norm.weight"))
        g = torch.nn.functional.gelu(x @ w(p + "ffn_gate.weight").T, approximate="tanh")
        m = (g * (x @ w(p + "ffn_up.weight").T)) @ w(p + "ffn_down.weight").T
        h = h + rms(m, w(p + "post_ffw_norm.weight"))
    return rms(h, w("output_norm.weight")) @ emb.T


def compact_json(obj, indent=0, width=300):
    """JSON with one line per small object and every list of scalars (token ids) on one line."""
    one = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    flat_numbers = isinstance(obj, list) and all(not isinstance(x, (dict, list)) for x in obj)
    if not isinstance(obj, (dict, list)) or flat_numbers or len(one) + indent <= width:
        return one
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k)}: {compact_json(v, indent + 1, width)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    items = [inner + compact_json(v, indent + 1, width) for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "reference" / "gemma3-270m-gsm8k-base.json"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    import gguf
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    models = Path(a.models)
    path = models / GGUF_NAME
    if not path.is_file():
        sys.exit(f"error: {path} not found: run `bash scripts/setup.sh --model gemma3-270m`")
    digest = sha256(path)
    print(f"model: {path} sha256 {digest}")
    if digest != GGUF_SHA256:
        sys.exit(f"error: sha256 mismatch, want {GGUF_SHA256}")
    vers = {p: md.version(p) for p in ("transformers", "torch", "gguf", "tokenizers", "numpy")}
    print("versions:", vers)

    reader = gguf.GGUFReader(str(path))
    meta = gguf_meta(reader)
    bos, eos = int(meta["tokenizer.ggml.bos_token_id"]), int(meta["tokenizer.ggml.eos_token_id"])
    tokens_field = reader.fields["tokenizer.ggml.tokens"]
    tok_str = lambda i: tokens_field.contents(i)  # noqa: E731
    print(f"GGUF general.name={meta.get('general.name')!r}: bos id {bos} {tok_str(bos)!r}, eos id {eos} {tok_str(eos)!r}"
          f" (tokenizer.ggml.eos_token_id; <end_of_turn> is id 106 {tok_str(106)!r})")

    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(str(models), gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(str(models), gguf_file=GGUF_NAME, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    print(f"loaded {type(model).__name__} in {time.time() - t0:.1f}s; attn {model.config._attn_implementation}; "
          f"param dtype {next(model.parameters()).dtype}")
    cfg = model.config
    check_config(cfg, meta)
    es = model.model.embed_tokens.embed_scale
    es_ok = float(es) == float(np.float32(math.sqrt(cfg.hidden_size)))
    print(f"  embed_scale {float(es)!r} (sqrt({cfg.hidden_size}) in f32 {float(np.float32(math.sqrt(cfg.hidden_size)))!r}) "
          f"{'ok' if es_ok else 'DIFFERS'}")
    if not es_ok:
        problem("embed_scale")
    rot = model.model.rotary_emb
    for lt, base in (("sliding_attention", 10000.0), ("full_attention", meta["gemma3.rope.freq_base"])):
        inv = getattr(rot, f"{lt}_inv_freq")
        want = 1.0 / (base ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float) / cfg.head_dim))
        print(f"  rotary {lt}: inv_freq[1]={float(inv[1]):.6g} matches base {base:g}: {torch.allclose(inv, want)}")
        if not torch.allclose(inv, want):
            problem(f"rope inv_freq {lt}")
    att = model.model.layers[0].self_attn
    print(f"  layer0 attn scaling {att.scaling} (1/sqrt(256) = {256 ** -0.5}), sliding_window {att.sliding_window}; "
          f"layer5 sliding_window {model.model.layers[5].self_attn.sliding_window}")
    dq = check_weights(model, reader)

    # Data and tokenization.
    data_path = Path(a.data)
    if not data_path.is_file():
        data_path = ROOT / "data" / "gsm8k" / "test.jsonl"
    rows = [json.loads(line) for line in data_path.read_text().splitlines() if line.strip()][:N_EXAMPLES]
    seqs = []
    for ex in rows:
        full = [bos] + tok(f"Question: {ex['question']}\nAnswer: {ex['answer']}", add_special_tokens=False)["input_ids"] + [eos]
        prompt = [bos] + tok(f"Question: {ex['question']}\nAnswer:", add_special_tokens=False)["input_ids"]
        if full[: len(prompt)] != prompt:
            problem("prompt tokens are not a prefix of the full tokens")
        seqs.append((full, len(prompt)))
    lens = [len(s) for s, _ in seqs]
    print(f"\n== data == {len(seqs)} examples from {data_path}; lengths (incl. bos, eos) min {min(lens)} max {max(lens)} "
          f"(sliding window {cfg.sliding_window}: {'never bites' if max(lens) <= cfg.sliding_window else 'BITES'})")

    # Independent forward on example 0.
    with torch.no_grad():
        ids0 = seqs[0][0]
        ref_logits = model(torch.tensor([ids0])).logits[0]
        man = manual_forward(reader, meta, ids0)
        d = (ref_logits - man).abs()
        same_top = bool((ref_logits.argmax(-1) == man.argmax(-1)).all())
        print(f"\n== independent llama.cpp-convention forward vs transformers (example 0, {len(ids0)} tokens) ==\n"
              f"  max|logit diff| {float(d.max()):.3g}, mean {float(d.mean()):.3g}, logit scale max|l| {float(ref_logits.abs().max()):.3g}; "
              f"argmax equal at every position: {same_top}")
        if float(d.max()) > 1e-2 or not same_top:
            problem("independent forward disagrees with transformers")
        indep = {"max_abs_logit_diff": float(d.max()), "mean_abs_logit_diff": float(d.mean()), "argmax_equal": same_top}
        del man

    # Losses.
    per, details = [], []
    t0 = time.time()
    with torch.no_grad():
        for i, (ids, plen) in enumerate(seqs):
            logits = model(torch.tensor([ids])).logits[0]  # [n, V] float32
            lp = torch.log_softmax(logits[:-1].double(), -1)
            tgt = torch.tensor(ids[1:])
            bits = (-lp.gather(1, tgt[:, None])[:, 0] / LN2).numpy()  # bits[t-1] for target position t
            comp = bits[plen - 1:]  # targets t >= plen
            per.append({"index": i, "n_tokens": len(ids), "prompt_tokens": plen, "n_predicted": len(bits),
                        "n_completion": len(comp), "sum_bits_all": float(bits.sum()), "sum_bits_completion": float(comp.sum()),
                        "mean_bits_all": float(bits.mean()), "mean_bits_completion": float(comp.mean())})
            if i < DETAIL_EXAMPLES:
                pos = []
                for p in DETAIL_POSITIONS:
                    v, k = torch.topk(logits[p], 5)
                    pos.append({"position": p, "top5": [[int(a_), float(b_)] for a_, b_ in zip(k, v)]})
                details.append({"test_index": i, "token_ids": ids, "prompt_tokens": plen,
                                "loss_bits_all": float(bits.mean()), "loss_bits_completion": float(comp.mean()),
                                "positions": pos})
            print(f"  ex {i:2d}: n {len(ids):3d} prompt {plen:3d}  all {bits.mean():.4f}  completion {comp.mean():.4f}")
    print(f"  forward of {len(seqs)} examples: {time.time() - t0:.1f}s")

    n_all = sum(p["n_predicted"] for p in per)
    n_comp = sum(p["n_completion"] for p in per)
    agg = {
        "examples": len(per),
        "predicted_tokens": n_all,
        "completion_tokens": n_comp,
        "token_weighted_bits_all": sum(p["sum_bits_all"] for p in per) / n_all,
        "token_weighted_bits_completion": sum(p["sum_bits_completion"] for p in per) / n_comp,
        "mean_of_example_means_bits_all": float(np.mean([p["mean_bits_all"] for p in per])),
        "mean_of_example_means_bits_completion": float(np.mean([p["mean_bits_completion"] for p in per])),
    }
    print("\n== aggregate ==")
    for k, v in agg.items():
        print(f"  {k}: {v}")
    if not 0.5 < agg["token_weighted_bits_all"] < 5:
        problem(f"implausible loss {agg['token_weighted_bits_all']}")

    out = {
        "model": f"{GGUF_NAME} (sha256 {digest}), GGUF general.name {meta.get('general.name')!r}, "
                 "loaded by transformers' GGUF loader (gguf-py dequantize) to float32",
        "versions": vers,
        "runtime": "CPU, float32, attn_implementation=eager, batch 1, no padding",
        "bos_id": bos, "bos_token": tok_str(bos), "eos_id": eos, "eos_token": tok_str(eos),
        "eos_source": "tokenizer.ggml.eos_token_id of the GGUF",
        "protocol": ("tokens = [bos] + ids('Question: {question}\\nAnswer: {answer}') + [eos], the text encoded with no special "
                     "tokens (transformers tokenizer built from the GGUF); prompt = [bos] + ids('Question: {question}\\nAnswer:'), "
                     "a prefix of tokens, and prompt_tokens counts the bos; predicted positions t = 1..n-1; completion = "
                     "targets t >= prompt_tokens (answer tokens and eos). loss = -log2 softmax(logits[t-1])[tokens[t]], "
                     "float32 logits, log-softmax in float64"),
        "data": f"first {N_EXAMPLES} examples of GSM8K test.jsonl; max sequence length {max(lens)} tokens (< sliding window "
                f"{cfg.sliding_window}, so the window never bites)",
        "averaging": ("token_weighted_*: sum of per-token bits over all 32 sequences / number of those tokens (what a batch "
                      "loss over all tokens gives); mean_of_example_means_*: the plain mean of the 32 per-sequence means"),
        "aggregate": agg,
        "per_example": per,
        "examples": details,
        "checks": {
            "dequantization": dq,
            "independent_forward_example0": indep,
            "config": {k: getattr(cfg, k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                                                   "head_dim", "intermediate_size", "rms_norm_eps", "sliding_window",
                                                   "query_pre_attn_scalar", "vocab_size", "max_position_embeddings",
                                                   "hidden_activation", "tie_word_embeddings", "final_logit_softcapping",
                                                   "attn_logit_softcapping", "layer_types", "rope_parameters")},
            "embed_scale": float(es),
            "problems": problems,
        },
    }
    outp = Path(a.out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    text = compact_json(out)
    assert json.loads(text) == json.loads(json.dumps(out))
    outp.write_text(text + "\n")
    print(f"\nwrote {outp} ({outp.stat().st_size} bytes)")
    if problems:
        print(f"{len(problems)} PROBLEM(S):", *problems, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
