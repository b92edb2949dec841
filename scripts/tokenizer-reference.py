#!/usr/bin/env python3
"""Reference token ids for peftc's GGUF tokenizers (SmolLM2 and Gemma 3), from HF transformers.

For the first 100 GSM8K test examples, full_text = f"Question: {q}\\nAnswer: {a}" is encoded with NO
special tokens (add_special_tokens=False) by the tokenizer that transformers builds from each GGUF
(AutoTokenizer.from_pretrained(models_dir, gguf_file=...)), and the ids are written to

  tests/fixtures/reference/tokenizer-ids-smollm2.json
  tests/fixtures/reference/tokenizer-ids-gemma3.json

as {"source": ..., "versions": ..., "examples": [{"index": i, "ids": [...]}, ...]} with one example per
line. Checks, printed (any failure exits non-zero):
  - SmolLM2: the ids equal those of shared/reference/smollm2-135m-tokenizer.json
    (tokenizers.Tokenizer.from_file), the tokenizer transformers built earlier and saved.
  - Gemma 3: the ids equal an independent re-implementation written here from the GGUF metadata
    alone (SentencePiece-style BPE: pieces merged best-score-first, byte fallback, added tokens
    matched whole), i.e. the algorithm peftc re-implements in Rust. It also reports where
    llama.cpp's handling of the user-defined space-run tokens ("  ", "   ", ...) would differ.
It also saves the tokenizer.json transformers builds from the Gemma 3 GGUF to
/tmp/gemma3-tokenizer-from-gguf.json (not committed) and prints its structure.

Run (after `bash scripts/setup.sh --model gemma3-270m`):
  /work/venv/bin/python scripts/tokenizer-reference.py
"""

import argparse
import collections
import importlib.metadata as md
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_EXAMPLES = 100


def versions():
    return {p: md.version(p) for p in ("transformers", "tokenizers", "gguf")}


def write_ids(path: Path, source: str, ids_list):
    """Pretty outer object, one line per example (compact)."""
    head = json.dumps({"source": source, "versions": versions()}, indent=1, ensure_ascii=False)[:-2]
    lines = [json.dumps({"index": i, "ids": ids}, separators=(",", ":")) for i, ids in enumerate(ids_list)]
    text = head + ',\n "examples": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
    json.loads(text)  # well-formed
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def read_gguf_vocab(path: Path):
    import gguf

    r = gguf.GGUFReader(str(path))
    f = r.fields
    n = len(f["tokenizer.ggml.tokens"].data)
    tokens = [f["tokenizer.ggml.tokens"].contents(i) for i in range(n)]
    scores = list(f["tokenizer.ggml.scores"].contents())
    types = list(f["tokenizer.ggml.token_type"].contents())
    meta = {k: f[k].contents() for k in f if k.startswith("tokenizer.ggml.") and k not in
            ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges")}
    return tokens, scores, types, meta


class SpmBpe:
    """Independent SentencePiece-BPE encoder built from GGUF metadata only (no transformers code).

    - Added tokens, matched whole (longest match first, scanning left to right) before the model:
      token_type 3 (control, e.g. <bos>, <start_of_turn>) and 4 (user-defined, e.g. "\\n", "\\n\\n",
      "\\t\\t", "[multimodal]"). `space_runs_whole` chooses whether the user-defined tokens made only of
      spaces ("  ", "   ", ...) are matched whole too (llama.cpp does; transformers does not: it respells
      them "▁▁"... in the vocabulary and so they are never added tokens).
    - Each remaining segment: " " -> "▁" (no prefix space), split into characters; a character not
      in the vocabulary becomes its UTF-8 bytes <0xXX> (byte fallback); then repeatedly merge the
      adjacent pair whose concatenation is a vocabulary token with the best rank (lowest id, which
      for normal tokens is also the highest tokenizer.ggml.scores), leftmost first on ties.
    """

    def __init__(self, tokens, types, space_runs_whole: bool):
        self.ids = {}
        for i, t in enumerate(tokens):
            if " " in t and not t.strip():
                t = "\u2581" * len(t)  # how the vocabulary holds space-run tokens for the model
            self.ids.setdefault(t, i)
        added = [t for t, ty in zip(tokens, types) if ty == 3 or (ty == 4 and (space_runs_whole or t.strip() or " " not in t))]
        self.added = sorted(set(added), key=len, reverse=True)
        self.added_ids = {t: i for i, t in enumerate(tokens) if t in set(added)}
        self.by_first = collections.defaultdict(list)
        for t in self.added:
            self.by_first[t[0]].append(t)

    def encode(self, text: str):
        out, seg, i = [], [], 0
        while i < len(text):
            hit = next((t for t in self.by_first.get(text[i], ()) if text.startswith(t, i)), None)
            if hit is None:
                seg.append(text[i])
                i += 1
                continue
            out += self._bpe("".join(seg))
            seg = []
            out.append(self.added_ids[hit])
            i += len(hit)
        return out + self._bpe("".join(seg))

    def _bpe(self, s: str):
        if not s:
            return []
        syms = []
        for ch in s.replace(" ", "\u2581"):
            if ch in self.ids:
                syms.append(ch)
            else:
                syms += [f"<0x{b:02X}>" for b in ch.encode("utf-8")]
        while True:
            best, at = None, -1
            for k in range(len(syms) - 1):
                j = self.ids.get(syms[k] + syms[k + 1])
                if j is not None and (best is None or j < best):
                    best, at = j, k
            if best is None:
                break
            syms[at:at + 2] = [syms[at] + syms[at + 1]]
        return [self.ids[t] for t in syms]


def describe_tokenizer_json(path: Path, tokens, types):
    tj = json.loads(path.read_text())
    m = tj["model"]
    print(f"\n== structure of {path} ==")
    print("model.type:", m["type"], "| byte_fallback:", m.get("byte_fallback"), "| fuse_unk:", m.get("fuse_unk"),
          "| unk_token:", m.get("unk_token"), "| ignore_merges:", m.get("ignore_merges"),
          "| dropout:", m.get("dropout"), "| continuing_subword_prefix:", m.get("continuing_subword_prefix"),
          "| end_of_word_suffix:", m.get("end_of_word_suffix"))
    print("vocab size:", len(m["vocab"]), "| merges:", len(m["merges"]), "| first 10 merges:", m["merges"][:10])
    print("normalizer:", json.dumps(tj["normalizer"], ensure_ascii=False))
    print("pre_tokenizer:", json.dumps(tj["pre_tokenizer"], ensure_ascii=False))
    print("decoder:", json.dumps(tj["decoder"], ensure_ascii=False))
    print("post_processor:", json.dumps(tj["post_processor"], ensure_ascii=False)[:600])
    added = tj["added_tokens"]
    spec = collections.Counter((a["special"], a["normalized"], a["lstrip"], a["rstrip"], a["single_word"]) for a in added)
    print("added_tokens:", len(added), "| by (special, normalized, lstrip, rstrip, single_word):", dict(spec))
    print("  non-special added tokens:", [a["content"] for a in added if not a["special"]][:8], "...")
    tcount = collections.Counter(types)
    print("GGUF token_type counts:", {k: tcount[k] for k in sorted(tcount)},
          "(1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte)")
    spaces = [t for t, ty in zip(tokens, types) if ty == 4 and " " in t and not t.strip()]
    print(f"  user-defined tokens made of spaces: {len(spaces)} (respelled '▁'*n in the vocab, not added tokens)")
    respelled = [(i, t) for i, t in enumerate(tokens) if " " in t and not t.strip()]
    print("  respelled ids:", respelled[0][0], "..", respelled[-1][0])
    # merges of each kind
    vocab = m["vocab"]
    ranks_ok = all(vocab[a + b] >= 0 for a, b in (mm if isinstance(mm, list) else mm.split(" ") for mm in m["merges"][:1000]))
    print("  first 1000 merges all produce vocab tokens:", ranks_ok)
    return tj


def gemma3(models: Path, data, tok_json_out: Path):
    from transformers import AutoTokenizer

    gguf_name = "gemma-3-270m-q4_k_m.gguf"
    tokens, scores, types, meta = read_gguf_vocab(models / gguf_name)
    print("gemma3 GGUF tokenizer metadata:", meta)
    tok = AutoTokenizer.from_pretrained(str(models), gguf_file=gguf_name)
    print("transformers class:", type(tok).__name__, "| add_bos_token:", tok.add_bos_token, "| add_eos_token:",
          tok.add_eos_token, "| bos:", tok.bos_token, tok.bos_token_id, "| eos:", tok.eos_token, tok.eos_token_id)
    print("encode('Hi there') with special tokens:", tok("Hi there")["input_ids"],
          "| without:", tok("Hi there", add_special_tokens=False)["input_ids"])
    tok.backend_tokenizer.save(str(tok_json_out))
    describe_tokenizer_json(tok_json_out, tokens, types)

    texts = [f"Question: {ex['question']}\nAnswer: {ex['answer']}" for ex in data]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    # decode round trip
    bad_rt = [i for i, (t, x) in enumerate(zip(texts, ids)) if tok.decode(x) != t]
    print(f"gemma3: decode(encode(text)) == text for {len(texts) - len(bad_rt)}/{len(texts)}", bad_rt[:5])
    # the same from the saved tokenizer.json
    from tokenizers import Tokenizer

    saved = Tokenizer.from_file(str(tok_json_out))
    same_saved = sum(saved.encode(t, add_special_tokens=False).ids == x for t, x in zip(texts, ids))
    print(f"gemma3: saved tokenizer.json gives the same ids on {same_saved}/{len(texts)}")
    # independent re-implementation, both ways of treating the space-run tokens
    fails = 0
    for whole in (False, True):
        enc = SpmBpe(tokens, types, space_runs_whole=whole)
        agree = [i for i, (t, x) in enumerate(zip(texts, ids)) if enc.encode(t) == x]
        label = "llama.cpp-style (space runs matched whole)" if whole else "transformers-style (space runs BPE'd)"
        print(f"gemma3: independent SPM-BPE, {label}: equal on {len(agree)}/{len(texts)}")
        if not whole and len(agree) != len(texts):
            fails += 1
        if whole and len(agree) != len(texts):
            diff = [i for i in range(len(texts)) if i not in set(agree)]
            i = diff[0]
            a, b = ids[i], enc.encode(texts[i])
            k = next(k for k in range(min(len(a), len(b))) if a[k] != b[k])
            print(f"   first difference: example {i} at token {k}: transformers {a[k:k+4]} "
                  f"{[tokens[t] for t in a[k:k+4]]} vs {b[k:k+4]} {[tokens[t] for t in b[k:k+4]]}")
    n = [len(x) for x in ids]
    print(f"gemma3: token counts min {min(n)} max {max(n)} mean {sum(n)/len(n):.1f}")
    return ids, fails


def smollm2(models: Path, data):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    gguf_name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(str(models), gguf_file=gguf_name)
    texts = [f"Question: {ex['question']}\nAnswer: {ex['answer']}" for ex in data]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    ref_path = ROOT.parent / "shared" / "reference" / "smollm2-135m-tokenizer.json"
    fails = 0
    if ref_path.is_file():
        ref = Tokenizer.from_file(str(ref_path))
        same = sum(ref.encode(t, add_special_tokens=False).ids == x for t, x in zip(texts, ids))
        print(f"smollm2: transformers-from-GGUF vs {ref_path.name}: equal on {same}/{len(texts)}")
        fails += same != len(texts)
    else:
        print(f"smollm2: {ref_path} not found; cross-check skipped")
    n = [len(x) for x in ids]
    print(f"smollm2: token counts min {min(n)} max {max(n)} mean {sum(n)/len(n):.1f}")
    return ids, fails


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "reference"))
    ap.add_argument("--tokenizer-json", default="/tmp/gemma3-tokenizer-from-gguf.json")
    a = ap.parse_args()
    models, out = Path(a.models), Path(a.out)
    data_path = Path(a.data)
    if not data_path.is_file():
        data_path = ROOT / "data" / "gsm8k" / "test.jsonl"
    data = [json.loads(line) for line in data_path.read_text().splitlines() if line.strip()][:N_EXAMPLES]
    try:
        shown = data_path.resolve().relative_to(ROOT.parent)
    except ValueError:
        shown = data_path
    fmt = (f"first {N_EXAMPLES} GSM8K test examples ({shown}), "
           "full_text = f\"Question: {question}\\nAnswer: {answer}\" encoded with add_special_tokens=False (no BOS/EOS)")

    s_ids, s_fail = smollm2(models, data)
    write_ids(out / "tokenizer-ids-smollm2.json",
              "transformers AutoTokenizer.from_pretrained(models, gguf_file='SmolLM2-135M-Instruct.Q4_1.gguf'); " + fmt,
              s_ids)
    g_ids, g_fail = gemma3(models, data, Path(a.tokenizer_json))
    write_ids(out / "tokenizer-ids-gemma3.json",
              "transformers AutoTokenizer.from_pretrained(models, gguf_file='gemma-3-270m-q4_k_m.gguf'); " + fmt,
              g_ids)
    if s_fail or g_fail:
        print("FAILED: a cross-check disagreed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
