#!/usr/bin/env python3
"""Tiny random-weight models of every family peftc loads, as test fixtures.

For each family this writes, under tests/fixtures/models/:

  tiny-<family>/config.json, model.safetensors, generation_config.json
      transformers 5 `save_pretrained` output (float32, safetensors)
  tiny-<family>/tokenizer.json
      a byte-level BPE with exactly the 256 ByteLevel alphabet tokens, no merges
  tiny-<family>.gguf
      the same weights laid out the way llama.cpp's convert_hf_to_gguf.py lays
      them out for that architecture (all tensors F32, gpt2 byte tokenizer)
  tiny-<family>.gguf.json
      which reference logits the GGUF must reproduce and why they may differ
      from the HF ones (config values a GGUF cannot carry)
  tiny-<family>.logits.safetensors
      `ids` int64 [40] and `logits` f32 [40, 256]: transformers' eager float32
      forward of the HF model on `ids` (batch 1, no padding)
  tiny-<family>.gguf.logits.safetensors   (only where the GGUF model differs)
  tiny-phi3.gguf.nowindow.logits.safetensors   (what llama.cpp computes for phi3)

Every norm weight and bias is perturbed away from its init and the script
asserts that each feature (norms, biases, windows, soft-caps, RoPE variants,
...) changes the logits. The GGUF files are read back with gguf-py and checked
against gguf-py's tensor list for the architecture, and against transformers'
own GGUF loader where it supports the architecture. If `llama_cpp`
(llama-cpp-python) is importable, every GGUF is also run through llama.cpp.

Deterministic and idempotent: rerunning rewrites identical files.

Run by hand from the repository root:

    /work/venv/bin/python scripts/make-tiny-models.py

(needs torch, transformers 5, gguf (gguf-py), safetensors, numpy, tokenizers).
See tests/fixtures/models/README.md for what each fixture is.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import sys
import zlib
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import gguf  # noqa: E402
import safetensors  # noqa: E402
from gguf.constants import MODEL_ARCH, MODEL_TENSORS, TENSOR_NAMES, GGUFValueType  # noqa: E402
from safetensors.numpy import save_file as save_numpy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "models"

SEQ_LEN = 40
VOCAB = 256
BOS_ID = 1
EOS_ID = 2
WEIGHT_STD = 0.15  # every projection / embedding weight ~ N(0, WEIGHT_STD)
NORM_NOISE_STD = 0.2  # norm weights = init (1, or 0 for Gemma) + N(0, NORM_NOISE_STD)
BIAS_STD = 0.3  # biases (init 0) ~ N(0, BIAS_STD)
BITE = 1e-4  # a feature "bites" when it moves some logit by more than this

# The fixed input: 40 ids in [0, 256), the same for every family.
IDS = np.random.RandomState(0).randint(0, VOCAB, size=SEQ_LEN).astype(np.int64)

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=128,
    initializer_range=WEIGHT_STD,
    bos_token_id=BOS_ID,
    eos_token_id=EOS_ID,
    pad_token_id=None,
)

GEMMA_FAMILIES = {"gemma", "gemma2", "gemma3"}

# family -> (config class, config kwargs beyond COMMON, GGUF arch)
FAMILIES: dict[str, tuple[type, dict, MODEL_ARCH]] = {
    "llama": (
        transformers.LlamaConfig,
        dict(num_key_value_heads=2, tie_word_embeddings=False,
             rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        MODEL_ARCH.LLAMA,
    ),
    "llama3": (
        transformers.LlamaConfig,
        dict(num_key_value_heads=2, tie_word_embeddings=True,
             rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 64}),
        MODEL_ARCH.LLAMA,
    ),
    "gemma": (
        transformers.GemmaConfig,
        dict(num_key_value_heads=1, head_dim=32, hidden_act="gelu_pytorch_tanh", tie_word_embeddings=True,
             rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        MODEL_ARCH.GEMMA,
    ),
    "gemma2": (
        transformers.Gemma2Config,
        dict(num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24, attn_logit_softcapping=2.0,
             final_logit_softcapping=1.5, sliding_window=8, tie_word_embeddings=True,
             hidden_activation="gelu_pytorch_tanh",
             rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        MODEL_ARCH.GEMMA2,
    ),
    "gemma3": (
        transformers.Gemma3TextConfig,
        dict(num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16, sliding_window=8,
             layer_types=["sliding_attention", "full_attention"], tie_word_embeddings=True,
             hidden_activation="gelu_pytorch_tanh",
             rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                              "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}),
        MODEL_ARCH.GEMMA3,
    ),
    "qwen2": (
        transformers.Qwen2Config,
        dict(num_key_value_heads=2, tie_word_embeddings=True,
             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        MODEL_ARCH.QWEN2,
    ),
    "mistral": (
        transformers.MistralConfig,
        dict(num_key_value_heads=2, sliding_window=8, tie_word_embeddings=False,
             rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        MODEL_ARCH.LLAMA,
    ),
    "phi3": (
        transformers.Phi3Config,
        dict(num_key_value_heads=2, sliding_window=8, tie_word_embeddings=False,
             original_max_position_embeddings=128,
             rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0}),
        MODEL_ARCH.PHI3,
    ),
}

# For each family, the config changes that turn the HF model into the model
# the GGUF can represent (as llama.cpp reads it), with the reason. Empty: the
# GGUF reproduces the HF logits.
GGUF_OVERRIDES: dict[str, tuple[dict, list[str]]] = {
    "gemma2": (
        {"query_pre_attn_scalar": 16},
        ["GGUF has no key for query_pre_attn_scalar; llama.cpp scales scores by 1/sqrt(head_dim) "
         "(1/sqrt(hidden/heads) only for the 46-layer 27B), so the GGUF model is the HF model with "
         "query_pre_attn_scalar = head_dim = 16 (HF fixture: 24)."],
    ),
    "gemma3": (
        {"layer_types": ["sliding_attention", "sliding_attention"]},
        ["GGUF has no key llama.cpp reads for gemma3's layer_types: llama.cpp hard-codes "
         "set_swa_pattern(6) (layer il slides iff il % 6 < 5), so with 2 layers BOTH layers slide "
         "(window 8, RoPE base 10000). The GGUF model is the HF model with layer_types "
         "[sliding_attention, sliding_attention] (HF fixture: [sliding_attention, full_attention]); "
         "gemma3.rope.freq_base (1e6, the full-attention base) is then unused by the GGUF reference.",
         "gemma3.rope.freq_base_swa = 10000 is written (the converter writes it from "
         "rope_parameters.sliding_attention.rope_theta) but llama.cpp ignores it and hard-codes 10000 "
         "for SWA layers; the values agree here.",
         "query_pre_attn_scalar = 16 = head_dim, which is what llama.cpp uses (1/sqrt(head_dim) "
         "unless 62 layers), so it needs no override."],
    ),
    "mistral": (
        {"sliding_window": None},
        ["convert_hf_to_gguf.py converts MistralForCausalLM with LlamaModel to arch `llama` and writes "
         "no sliding window, so the GGUF model is the HF model with sliding_window = None "
         "(HF fixture: 8, which bites at 40 tokens). q/k are permuted (arch llama)."],
    ),
}

# Extra notes for the GGUF json where the GGUF reproduces the HF logits.
GGUF_NOTES: dict[str, list[str]] = {
    "llama": ["arch llama: attn_q/attn_k rows permuted as convert_hf_to_gguf.py LlamaModel.permute "
              "(k with n_head_kv); undo before use."],
    "llama3": ["arch llama: attn_q/attn_k permuted. The llama3 RoPE scaling is carried only by the "
               "rope_freqs.weight tensor (F32 [head_dim/2] divisors; inv_freq = base^(-2i/d) / rope_freqs[i]); "
               "no rope.scaling.* keys are written.",
               "rope_freqs was computed with original_max_position_embeddings = 64 from rope_parameters. "
               "convert_hf_to_gguf.py reads original_max_position_embeddings from the TOP level of the config "
               "with a default of 8192, and a transformers-5 config keeps it only inside rope_parameters, so "
               "the real converter would write different factors for this model; these are the factors that "
               "reproduce HF."],
    "gemma": ["Every *norm.weight stored as w + 1. No rope.freq_base key (llama.cpp default 10000 = HF). "
              "Tied: no output.weight."],
    "qwen2": ["q/k/v biases as blk.N.attn_{q,k,v}.bias; no permutation; tied: no output.weight."],
    "phi3": ["Fused blk.N.attn_qkv.weight (rows q|k|v) and blk.N.ffn_up.weight [2*ff] (rows gate|up, "
             "ggml swiglu takes the first half as gate); no ffn_gate; no permutation.",
             "phi3.attention.sliding_window = 8 is written and the reference logits honour it (= the HF "
             "logits). NOTE: llama.cpp's phi3 loader currently DISABLES Phi SWA whenever n_swa > 0 "
             "(llama.cpp PR 13676: swa_type NONE, n_swa 0), so llama.cpp itself would compute the no-window "
             "logits; those are saved as tiny-phi3.gguf.nowindow.logits.safetensors.",
             "general.name is `tiny-phi`, not `tiny-phi3`: llama.cpp's vocabulary loader special-cases any "
             "general.name containing `phi3`/`phi-3` and then fails on a vocabulary without </s>, <unk>, <s>, "
             "<|endoftext|>."],
}


# general.name. llama.cpp's vocabulary loader applies a Phi-3 token-attribute
# hack to any model whose general.name contains "phi3" or "phi-3" (it looks up
# "</s>", "<unk>", "<s>", "<|endoftext|>" with unordered_map::at and fails to
# load our byte vocabulary), so the phi3 file is named without it.
GGUF_NAME = {"phi3": "tiny-phi"}


# ---------------------------------------------------------------- tokenizer

def bytes_to_unicode() -> list[tuple[int, str]]:
    """GPT-2's byte -> printable-character map, in its standard order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


BYTE_TOKENS = [ch for _, ch in bytes_to_unicode()]  # id i -> BYTE_TOKENS[i]


def tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {ch: i for i, ch in enumerate(BYTE_TOKENS)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # self-check: every byte is one token; decode inverts encode
    text = "Hello, wörld! 12 \u00e9\u4e2d\n"
    enc = tok.encode(text)
    assert len(enc.ids) == len(text.encode("utf-8")), enc.ids
    byte_of = {i: b for i, (b, _) in enumerate(bytes_to_unicode())}
    assert bytes(byte_of[i] for i in enc.ids) == text.encode("utf-8")
    assert tok.decode(enc.ids) == text
    assert tok.get_vocab_size() == VOCAB
    return tok.to_str(pretty=True) + "\n"


# ---------------------------------------------------------------- weights

def is_norm(name: str) -> bool:
    return name.endswith("norm.weight")


def norm_init(family: str) -> float:
    return 0.0 if family in GEMMA_FAMILIES else 1.0


def build_model(family: str) -> torch.nn.Module:
    cls, kw, _ = FAMILIES[family]
    cfg = cls(**COMMON, **kw)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    gen = torch.Generator().manual_seed(zlib.crc32(family.encode()))
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if is_norm(name):
                p.copy_(norm_init(family) + NORM_NOISE_STD * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(BIAS_STD * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(WEIGHT_STD * torch.randn(p.shape, generator=gen))
    return model.eval()


def load_hf(family: str, overrides: dict | None = None) -> torch.nn.Module:
    d = OUT / f"tiny-{family}"
    cls = FAMILIES[family][0]
    cfg_dict = json.loads((d / "config.json").read_text())
    for k, v in (overrides or {}).items():
        cfg_dict[k] = copy.deepcopy(v)
    cfg = cls.from_dict(cfg_dict)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        d, config=cfg, attn_implementation="eager", dtype=torch.float32)
    return model.eval()


@torch.no_grad()
def logits_of(model: torch.nn.Module) -> np.ndarray:
    ids = torch.from_numpy(IDS).unsqueeze(0)
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
    return out.logits[0].float().numpy().copy()


def save_logits(path: Path, logits: np.ndarray) -> None:
    assert logits.shape == (SEQ_LEN, VOCAB) and logits.dtype == np.float32
    save_numpy({"ids": IDS.copy(), "logits": np.ascontiguousarray(logits)}, str(path))


# ---------------------------------------------------------------- checks

CHECKS: list[tuple[str, str, float, str]] = []


def bite(family: str, what: str, ref: np.ndarray, other: np.ndarray, threshold: float = BITE) -> None:
    diff = np.abs(ref - other)
    rows = np.nonzero(diff.max(axis=1) > threshold)[0]
    first = int(rows[0]) if len(rows) else -1
    CHECKS.append((family, what, float(diff.max()), f"first row {first}"))
    assert diff.max() > threshold, f"{family}: {what} does not change the logits (max |d| {diff.max():.3g})"


def window_bite(family: str, what: str, ref: np.ndarray, other: np.ndarray, window: int) -> None:
    bite(family, what, ref, other)
    # a window only matters from position `window` on: earlier rows are identical
    early = float(np.abs(ref[:window] - other[:window]).max())
    assert early == 0.0, f"{family}: {what} changes rows before the window ({early})"


def reset_group_bites(family: str, ref: np.ndarray) -> None:
    """Resetting each norm / bias kind to its init changes the logits."""
    model = load_hf(family)
    groups: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        if is_norm(name) or name.endswith(".bias"):
            key = ".".join("N" if part.isdigit() else part for part in name.split("."))
            groups.setdefault(key, []).append(name)
    assert groups, family
    for key, names in sorted(groups.items()):
        m = load_hf(family)
        params = dict(m.named_parameters())
        with torch.no_grad():
            for n in names:
                params[n].fill_(norm_init(family) if is_norm(n) else 0.0)
        bite(family, f"{key} reset to init", ref, logits_of(m))


def feature_checks(family: str, ref: np.ndarray) -> None:
    reset_group_bites(family, ref)
    if family == "llama3":
        scaled = load_hf(family).model.rotary_emb.inv_freq.double().numpy()
        plain = load_hf(family, {"rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}})
        unscaled = plain.model.rotary_emb.inv_freq.double().numpy()
        ratio = unscaled / scaled
        n_same = int(np.sum(np.isclose(ratio, 1.0)))
        n_div = int(np.sum(np.isclose(ratio, 8.0)))
        n_smooth = len(ratio) - n_same - n_div
        CHECKS.append((family, f"inv_freq pairs: {n_same} unchanged, {n_smooth} smoothed, {n_div} divided by 8",
                       float(np.abs(ratio - 1).max()), "max |unscaled/scaled - 1|"))
        assert n_same > 0 and n_smooth > 0 and n_div > 0, "llama3 scaling should exercise all three branches"
        ff = llama3_rope_freqs(json.loads((OUT / "tiny-llama3" / "config.json").read_text())["rope_parameters"], 16)
        rel = float(np.abs(unscaled / ff.astype(np.float64) / scaled - 1).max())
        CHECKS.append((family, "rope_freqs divisors reproduce HF inv_freq", rel, "max rel err (not a bite)"))
        assert rel < 1e-6
        bite(family, "rope llama3 scaling -> default (same theta)", ref, logits_of(plain))
    if family == "gemma":
        m = load_hf(family)
        m.model.embed_tokens.embed_scale.fill_(1.0)
        bite(family, "embedding * sqrt(hidden) removed", ref, logits_of(m))
        m = load_hf(family)
        for layer in m.model.layers:
            layer.mlp.act_fn = torch.nn.GELU()  # exact erf GELU instead of tanh approximation
        bite(family, "gelu_pytorch_tanh -> exact gelu", ref, logits_of(m), threshold=1e-6)
    if family == "gemma2":
        window_bite(family, "no sliding window (layer_types all full)", ref,
                    logits_of(load_hf(family, {"layer_types": ["full_attention", "full_attention"]})), 8)
        bite(family, "attn_logit_softcapping 2.0 -> None", ref,
             logits_of(load_hf(family, {"attn_logit_softcapping": None})))
        bite(family, "final_logit_softcapping 1.5 -> None", ref,
             logits_of(load_hf(family, {"final_logit_softcapping": None})))
        bite(family, "query_pre_attn_scalar 24 -> 16 (head_dim)", ref,
             logits_of(load_hf(family, {"query_pre_attn_scalar": 16})))
        m = load_hf(family)
        m.model.embed_tokens.embed_scale.fill_(1.0)
        bite(family, "embedding * sqrt(hidden) removed", ref, logits_of(m))
    if family == "gemma3":
        # (layer_types would also switch the RoPE base, so widen the window instead)
        window_bite(family, "sliding_window 8 -> 4096 (no window)", ref,
                    logits_of(load_hf(family, {"sliding_window": 4096})), 8)
        bite(family, "layer 1 sliding too (GGUF/llama.cpp pattern)", ref,
             logits_of(load_hf(family, {"layer_types": ["sliding_attention", "sliding_attention"]})))
        rp = json.loads((OUT / "tiny-gemma3" / "config.json").read_text())["rope_parameters"]
        local = copy.deepcopy(rp)
        local["sliding_attention"]["rope_theta"] = 1000000.0
        bite(family, "sliding-layer rope_theta 10000 -> 1e6", ref, logits_of(load_hf(family, {"rope_parameters": local})))
        glob = copy.deepcopy(rp)
        glob["full_attention"]["rope_theta"] = 10000.0
        bite(family, "full-layer rope_theta 1e6 -> 10000", ref, logits_of(load_hf(family, {"rope_parameters": glob})))
        bite(family, "query_pre_attn_scalar 16 -> 32", ref, logits_of(load_hf(family, {"query_pre_attn_scalar": 32})))
        m = load_hf(family)
        m.model.embed_tokens.embed_scale.fill_(1.0)
        bite(family, "embedding * sqrt(hidden) removed", ref, logits_of(m))
    if family == "qwen2":
        bite(family, "rope_theta 1e6 -> 10000", ref,
             logits_of(load_hf(family, {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}})))
    if family in ("mistral", "phi3"):
        window_bite(family, "sliding_window 8 -> None", ref, logits_of(load_hf(family, {"sliding_window": None})), 8)


# ---------------------------------------------------------------- GGUF

class Writer(gguf.GGUFWriter):
    """GGUFWriter that can also write an empty array (gguf-py refuses to).

    llama.cpp requires `tokenizer.ggml.merges` for a gpt2 vocabulary, and ours
    has no merges."""

    def _pack_val(self, val, vtype, add_vtype, sub_type=None):
        if vtype == GGUFValueType.ARRAY and sub_type is not None and len(val) == 0:
            out = bytearray()
            if add_vtype:
                out += self._pack("I", vtype)
            out += self._pack("I", sub_type)
            out += self._pack("Q", 0)
            return bytes(out)
        return super()._pack_val(val, vtype, add_vtype, sub_type)


def llama_permute(w: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf.py LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


def llama3_rope_freqs(rp: dict, head_dim: int) -> np.ndarray:
    """convert_hf_to_gguf.py LlamaModel.generate_extra_tensors (rope_freqs divisors)."""
    base = rp["rope_theta"]
    freqs = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    factor = rp["factor"]
    low, high = rp["low_freq_factor"], rp["high_freq_factor"]
    old_ctx = rp["original_max_position_embeddings"]
    low_wl, high_wl = old_ctx / low, old_ctx / high
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < high_wl:
            out.append(1)
        elif wl > low_wl:
            out.append(factor)
        else:
            s = (old_ctx / wl - low) / (high - low)
            out.append(1 / ((1 - s) / factor + s))
    return torch.tensor(out, dtype=torch.float32).numpy()


def gguf_metadata(family: str, cfg: dict) -> list[tuple[str, object]]:
    """(GGUFWriter method, value) in the order convert_hf_to_gguf.py writes them."""
    arch = FAMILIES[family][2]
    rp = cfg["rope_parameters"]
    m: list[tuple[str, object]] = []
    if arch in (MODEL_ARCH.LLAMA, MODEL_ARCH.QWEN2, MODEL_ARCH.GEMMA3):
        # TextModel.set_gguf_parameters
        m += [("add_block_count", cfg["num_hidden_layers"]),
              ("add_context_length", cfg["max_position_embeddings"]),
              ("add_embedding_length", cfg["hidden_size"]),
              ("add_feed_forward_length", cfg["intermediate_size"]),
              ("add_head_count", cfg["num_attention_heads"]),
              ("add_head_count_kv", cfg["num_key_value_heads"])]
        full = rp.get("full_attention", rp)
        m.append(("add_rope_freq_base", full["rope_theta"]))
        if "sliding_attention" in rp:
            m.append(("add_rope_freq_base_swa", rp["sliding_attention"]["rope_theta"]))
        m.append(("add_layer_norm_rms_eps", cfg["rms_norm_eps"]))
        if cfg.get("head_dim") is not None:
            m += [("add_key_length", cfg["head_dim"]), ("add_value_length", cfg["head_dim"])]
        m.append(("add_file_type", gguf.LlamaFileType.ALL_F32))
        if arch == MODEL_ARCH.LLAMA:
            m += [("add_vocab_size", cfg["vocab_size"]),
                  ("add_rope_dimension_count", cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])]
        if arch == MODEL_ARCH.GEMMA3:
            # Gemma3Model.set_gguf_parameters re-adds context/head/eps/key/value/freq_base with the
            # same values (not repeated here), then:
            assert cfg.get("attn_logit_softcapping") is None
            if cfg.get("final_logit_softcapping"):
                m.append(("add_final_logit_softcapping", cfg["final_logit_softcapping"]))
            if cfg.get("sliding_window_pattern") != 1:
                m.append(("add_sliding_window", cfg["sliding_window"]))
    elif arch in (MODEL_ARCH.GEMMA, MODEL_ARCH.GEMMA2):
        m += [("add_context_length", cfg["max_position_embeddings"]),
              ("add_embedding_length", cfg["hidden_size"]),
              ("add_block_count", cfg["num_hidden_layers"]),
              ("add_feed_forward_length", cfg["intermediate_size"]),
              ("add_head_count", cfg["num_attention_heads"]),
              ("add_head_count_kv", cfg["num_key_value_heads"]),
              ("add_layer_norm_rms_eps", cfg["rms_norm_eps"]),
              ("add_key_length", cfg["head_dim"]),
              ("add_value_length", cfg["head_dim"]),
              ("add_file_type", gguf.LlamaFileType.ALL_F32)]
        if arch == MODEL_ARCH.GEMMA2:
            m += [("add_attn_logit_softcapping", cfg["attn_logit_softcapping"]),
                  ("add_final_logit_softcapping", cfg["final_logit_softcapping"]),
                  ("add_sliding_window", cfg["sliding_window"])]
    elif arch == MODEL_ARCH.PHI3:
        rot = rp.get("partial_rotary_factor", 1.0)
        m += [("add_context_length", cfg["max_position_embeddings"]),
              ("add_rope_scaling_orig_ctx_len", cfg["original_max_position_embeddings"]),
              ("add_embedding_length", cfg["hidden_size"]),
              ("add_feed_forward_length", cfg["intermediate_size"]),
              ("add_block_count", cfg["num_hidden_layers"]),
              ("add_head_count", cfg["num_attention_heads"]),
              ("add_head_count_kv", cfg["num_key_value_heads"]),
              ("add_layer_norm_rms_eps", cfg["rms_norm_eps"]),
              ("add_rope_dimension_count", int(rot * cfg["hidden_size"]) // cfg["num_attention_heads"]),
              ("add_rope_freq_base", rp["rope_theta"]),
              ("add_file_type", gguf.LlamaFileType.ALL_F32),
              ("add_sliding_window", cfg.get("sliding_window") or 0)]
    else:
        raise AssertionError(arch)
    return m


def gguf_tensors(family: str, cfg: dict, state: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    arch = FAMILIES[family][2]
    tmap = gguf.get_tensor_name_map(arch, cfg["num_hidden_layers"])
    out: list[tuple[str, np.ndarray]] = []
    rp = cfg["rope_parameters"]
    if arch == MODEL_ARCH.LLAMA and rp.get("rope_type") == "llama3":
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        out.append((TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", llama3_rope_freqs(rp, head_dim)))
    for name in sorted(state):
        w = state[name].astype(np.float32)
        if arch in (MODEL_ARCH.GEMMA, MODEL_ARCH.GEMMA2) and name == "lm_head.weight":
            continue
        if arch == MODEL_ARCH.LLAMA:
            if name.endswith(("q_proj.weight", "q_proj.bias")):
                w = llama_permute(w, cfg["num_attention_heads"], cfg["num_attention_heads"])
            if name.endswith(("k_proj.weight", "k_proj.bias")):
                w = llama_permute(w, cfg["num_attention_heads"], cfg["num_key_value_heads"])
        if family in GEMMA_FAMILIES and name.endswith("norm.weight"):
            w = w + np.float32(1.0)
        new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        assert new is not None, f"{family}: no GGUF name for {name}"
        out.append((new, np.ascontiguousarray(w, dtype=np.float32)))
    return out


def write_gguf(family: str) -> Path:
    d = OUT / f"tiny-{family}"
    cfg = json.loads((d / "config.json").read_text())
    arch = FAMILIES[family][2]
    path = OUT / f"tiny-{family}.gguf"
    with safetensors.safe_open(str(d / "model.safetensors"), "np") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    w = Writer(str(path), gguf.MODEL_ARCH_NAMES[arch])
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(GGUF_NAME.get(family, f"tiny-{family}"))
    for method, value in gguf_metadata(family, cfg):
        getattr(w, method)(value)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    # TextModel._set_vocab_gpt2 + SpecialVocab
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(BYTE_TOKENS)
    w.add_token_types([gguf.TokenType.NORMAL] * VOCAB)
    w.add_key_value(gguf.Keys.Tokenizer.MERGES, [], GGUFValueType.ARRAY, sub_type=GGUFValueType.STRING)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    for name, t in gguf_tensors(family, cfg, state):
        w.add_tensor(name, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def field_value(field):
    if hasattr(field, "contents"):
        return field.contents()
    raise RuntimeError("gguf-py too old: GGUFReader field has no contents()")


def check_gguf(family: str, path: Path) -> dict:
    """Read the GGUF back; names and shapes as llama.cpp expects; data round-trips."""
    arch = FAMILIES[family][2]
    d = OUT / f"tiny-{family}"
    cfg = json.loads((d / "config.json").read_text())
    r = gguf.GGUFReader(str(path))
    allowed = {TENSOR_NAMES[t] for t in MODEL_TENSORS[arch]}
    L = cfg["num_hidden_layers"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    nh, nkv, H, F, V = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"], cfg["intermediate_size"], VOCAB
    tied = cfg["tie_word_embeddings"]
    # expected ne (innermost first), as llama.cpp's create_tensor calls ask for them
    exp: dict[str, list[int]] = {"token_embd.weight": [H, V], "output_norm.weight": [H]}
    if not tied:
        exp["output.weight"] = [H, V]
    for i in range(L):
        b = f"blk.{i}."
        exp[b + "attn_norm.weight"] = [H]
        exp[b + "attn_output.weight"] = [nh * hd, H]
        exp[b + "ffn_down.weight"] = [F, H]
        if arch == MODEL_ARCH.PHI3:
            exp[b + "attn_qkv.weight"] = [H, (nh + 2 * nkv) * hd]
            exp[b + "ffn_up.weight"] = [H, 2 * F]
        else:
            exp[b + "attn_q.weight"] = [H, nh * hd]
            exp[b + "attn_k.weight"] = [H, nkv * hd]
            exp[b + "attn_v.weight"] = [H, nkv * hd]
            exp[b + "ffn_gate.weight"] = [H, F]
            exp[b + "ffn_up.weight"] = [H, F]
        exp[b + "ffn_norm.weight"] = [H]
        if arch in (MODEL_ARCH.GEMMA2, MODEL_ARCH.GEMMA3):
            exp[b + "post_attention_norm.weight"] = [H]
            exp[b + "post_ffw_norm.weight"] = [H]
        if arch == MODEL_ARCH.GEMMA3:
            exp[b + "attn_q_norm.weight"] = [hd]
            exp[b + "attn_k_norm.weight"] = [hd]
        if arch == MODEL_ARCH.QWEN2:
            exp[b + "attn_q.bias"] = [nh * hd]
            exp[b + "attn_k.bias"] = [nkv * hd]
            exp[b + "attn_v.bias"] = [nkv * hd]
    if family == "llama3":
        exp["rope_freqs.weight"] = [hd // 2]
    got = {t.name: [int(x) for x in t.shape] for t in r.tensors}
    assert got == exp, f"{family}: GGUF tensors differ\n got {sorted(got.items())}\n exp {sorted(exp.items())}"
    for t in r.tensors:
        generic = t.name.rsplit(".", 1)[0]
        if generic.startswith("blk."):
            generic = "blk.{bid}." + generic.split(".", 2)[2]
        assert generic in allowed, f"{family}: {t.name} not in gguf-py MODEL_TENSORS[{arch.name}]"
        assert t.tensor_type == gguf.GGMLQuantizationType.F32, (t.name, t.tensor_type)
    # data round trip against the safetensors (undoing permutation / +1)
    with safetensors.safe_open(str(d / "model.safetensors"), "np") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    tmap = gguf.get_tensor_name_map(arch, L)
    by_name = {t.name: np.asarray(t.data) for t in r.tensors}
    for name, w in state.items():
        if name == "lm_head.weight" and tied:
            continue
        g = by_name[tmap.get_name(name, try_suffixes=(".weight", ".bias"))].reshape(w.shape)
        exp_w = w
        if arch == MODEL_ARCH.LLAMA and name.endswith(("q_proj.weight", "q_proj.bias")):
            exp_w = llama_permute(w, nh, nh)
        if arch == MODEL_ARCH.LLAMA and name.endswith(("k_proj.weight", "k_proj.bias")):
            exp_w = llama_permute(w, nh, nkv)
        if family in GEMMA_FAMILIES and name.endswith("norm.weight"):
            exp_w = w + np.float32(1.0)
        assert np.array_equal(g, exp_w), f"{family}: {name} data mismatch"
    meta = {}
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        v = field_value(field)
        if key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
            v = f"[{len(v)} items]"
        meta[key] = v
    assert field_value(r.fields["tokenizer.ggml.tokens"]) == BYTE_TOKENS
    assert field_value(r.fields["tokenizer.ggml.merges"]) == []
    return meta


CROSSCHECK_IGNORE = {"architectures", "dtype", "transformers_version", "initializer_range", "_name_or_path",
                     "quantization_config", "use_cache", "_sliding_window_pattern", "model_type"}


def hf_gguf_crosscheck(family: str, path: Path, ref: np.ndarray) -> str:
    """transformers' own GGUF loader on our file vs the GGUF reference logits.

    Reports the config values the loader gets wrong (it ignores some GGUF keys
    and defaults others), the raw logits difference, and the difference once
    those values are forced to the GGUF reference model's: ~0 means the tensor
    layout (names, permutation, +1 norms, fusing) is read back exactly."""
    overrides = GGUF_OVERRIDES.get(family, ({}, []))[0]
    want = json.loads((OUT / f"tiny-{family}" / "config.json").read_text())
    want.update(copy.deepcopy(overrides))
    kw = dict(gguf_file=path.name, attn_implementation="eager", dtype=torch.float32, pad_token_id=None)
    try:
        m = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), **kw).eval()
    except Exception as e:  # unsupported architecture
        return f"not loadable ({type(e).__name__}: {str(e).splitlines()[0][:80]})"
    got = m.config.to_dict()
    diffs = {}
    for k, v in want.items():
        if k in CROSSCHECK_IGNORE:
            continue
        g = got.get(k)
        same = (math.isclose(g, v, rel_tol=1e-6) if isinstance(v, float) and isinstance(g, (int, float)) else g == v)
        if not same:
            diffs[k] = (g, v)
    raw = np.abs(logits_of(m) - ref).max()
    line = f"raw max |d| {raw:.3g}"
    if diffs:
        forced = {k: copy.deepcopy(v) for k, (_, v) in diffs.items()}
        m2 = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), **kw, **forced).eval()
        fixed = np.abs(logits_of(m2) - ref).max()
        line += (f"; loader config differs: " + ", ".join(f"{k}={g!r} (want {v!r})" for k, (g, v) in diffs.items())
                 + f"; with those forced: max |d| {fixed:.3g}")
        assert fixed < 1e-4, f"{family}: transformers' GGUF loader disagrees even with the config forced"
    else:
        assert raw < 1e-4, f"{family}: transformers' GGUF loader disagrees"
    return line


def llama_cpp_check(family: str, path: Path) -> str | None:
    """Optional: run the GGUF through llama.cpp itself (llama-cpp-python, if
    importable) and compare with the GGUF reference logits.

    llama.cpp's CPU GELU goes through an f16 lookup table, so the Gemma
    families agree only to ~1e-3 (most rows to 1e-6); the others to ~1e-5.
    For phi3 llama.cpp disables the sliding window, so it is compared with the
    no-window logits."""
    try:
        import llama_cpp
    except ImportError:
        return None
    side = json.loads((OUT / f"tiny-{family}.gguf.json").read_text())
    ref_file = side.get("llama_cpp_runtime_logits", side["reference_logits"])
    with safetensors.safe_open(str(OUT / ref_file), "np") as f:
        ref = f.get_tensor("logits")
    llm = llama_cpp.Llama(str(path), n_ctx=64, n_batch=64, n_ubatch=64, logits_all=True, verbose=False,
                          n_threads=1, type_k=0, type_v=0, flash_attn=False)  # f32 KV cache
    llm.eval(IDS.tolist())
    got = np.array(llm.scores[:SEQ_LEN], dtype=np.float32)
    diff = float(np.abs(got - ref).max())
    tol = 5e-3 if family in GEMMA_FAMILIES else 1e-4
    assert diff < tol, f"{family}: llama.cpp disagrees with {ref_file} ({diff})"
    return f"max |d| {diff:.3g} vs {ref_file}"


# ---------------------------------------------------------------- main

def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def main() -> None:
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    OUT.mkdir(parents=True, exist_ok=True)
    tok_json = tokenizer_json()
    metas: dict[str, dict] = {}
    crosschecks: dict[str, str] = {}
    lcpp_checks: dict[str, str] = {}
    for family in FAMILIES:
        d = OUT / f"tiny-{family}"
        if d.exists():
            shutil.rmtree(d)
        for stale in OUT.glob(f"tiny-{family}.*"):
            stale.unlink()
        model = build_model(family)
        model.save_pretrained(d, safe_serialization=True)
        (d / "tokenizer.json").write_text(tok_json, encoding="utf-8")

        # reference logits from the reloaded (saved) model
        ref = logits_of(load_hf(family))
        assert np.abs(ref - logits_of(model)).max() == 0.0, f"{family}: save/load changed the logits"
        save_logits(OUT / f"tiny-{family}.logits.safetensors", ref)
        feature_checks(family, ref)

        path = write_gguf(family)
        metas[family] = check_gguf(family, path)

        overrides, notes = GGUF_OVERRIDES.get(family, ({}, []))
        notes = notes + GGUF_NOTES.get(family, [])
        if overrides:
            gguf_ref = logits_of(load_hf(family, overrides))
            bite(family, f"GGUF model ({', '.join(overrides)}) differs from HF", ref, gguf_ref)
            ref_name = f"tiny-{family}.gguf.logits.safetensors"
            save_logits(OUT / ref_name, gguf_ref)
        else:
            gguf_ref = ref
            ref_name = f"tiny-{family}.logits.safetensors"
        sidecar = {
            "family": family,
            "gguf_arch": gguf.MODEL_ARCH_NAMES[FAMILIES[family][2]],
            "reference_logits": ref_name,
            "hf_config_overrides": overrides,
            "notes": notes,
        }
        if family == "phi3":
            nowin = logits_of(load_hf(family, {"sliding_window": None}))
            save_logits(OUT / "tiny-phi3.gguf.nowindow.logits.safetensors", nowin)
            sidecar["llama_cpp_runtime_logits"] = "tiny-phi3.gguf.nowindow.logits.safetensors"
        (OUT / f"tiny-{family}.gguf.json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        crosschecks[family] = hf_gguf_crosscheck(family, path, gguf_ref)
        lcpp = llama_cpp_check(family, path)
        if lcpp is not None:
            lcpp_checks[family] = lcpp

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"gguf-py {getattr(gguf, '__version__', None) or _dist_version('gguf')}, "
          f"tokenizers {_dist_version('tokenizers')}, safetensors {safetensors.__version__}, numpy {np.__version__}")
    print("\nfeature bites (max |d logits| against the fixture's logits; must exceed the threshold)")
    w = max(len(c[1]) for c in CHECKS)
    for fam, what, val, extra in CHECKS:
        print(f"  {fam:8s} {what:{w}s} {val:10.4g}  {extra}")
    print("\ntransformers GGUF loader vs the GGUF reference logits")
    for fam, res in crosschecks.items():
        print(f"  {fam:8s} {res}")
    print("\nllama.cpp (llama-cpp-python) vs the GGUF reference logits")
    if not lcpp_checks:
        print("  skipped: llama_cpp not importable")
    for fam, res in lcpp_checks.items():
        print(f"  {fam:8s} {res}")
    print("\nGGUF metadata")
    for fam, meta in metas.items():
        print(f"  {fam}:")
        for k, v in meta.items():
            print(f"    {k} = {v}")
    print("\nfiles")
    total = 0
    for p in sorted(OUT.rglob("*")):
        if p.is_file() and p.name != "README.md":
            total += p.stat().st_size
            print(f"  {p.relative_to(OUT)}  {p.stat().st_size}  {sha(p)}")
    print(f"  total {total} bytes")


def _dist_version(name: str) -> str:
    from importlib.metadata import version
    return version(name)


if __name__ == "__main__":
    sys.exit(main())
