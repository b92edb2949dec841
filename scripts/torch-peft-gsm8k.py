# PyTorch + HF PEFT on real GSM8K batches: the reference run of `specs/compare/`
# (issue 14). Same model file, same tokens, same settings as peftc's spec:
# SmolLM2-135M-Instruct (the Q4_1 GGUF dequantized to f32 by transformers),
# LoRA r 8, alpha 16, no dropout, all seven targets of all 30 layers, AdamW
# lr 1e-3, weight decay 0 (betas 0.9/0.999, eps 1e-8), no clipping, batch 16,
# max_len 512, the first 512 train / 256 test examples, 2 epochs, loss over
# every predicted token. Reports per-epoch train loss (mean of the steps' token
# means, as peftc) and test loss (token mean over the test set), both in bits,
# training tokens/s (real tokens: each example's length, as peftc counts them)
# and peak RSS.
#
# Usage (not part of CI, which does not download torch):
#   python3 -m venv venv && venv/bin/pip install torch==2.9.0 transformers peft gguf
#   venv/bin/python scripts/torch-peft-gsm8k.py [--out reports/compare/torch.json]
# Tokenization uses the tokenizer transformers builds from the same GGUF
# (`../shared/reference/smollm2-135m-tokenizer.json`), whose ids peftc's own
# tokenizer is tested against; the GSM8K format is peftc's
# (`Question: {q}\nAnswer: {a}` + eos, cut at max_len).
import argparse, json, math, os, random, resource, sys, time

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model

p = argparse.ArgumentParser()
p.add_argument("--model-dir", default="models")
p.add_argument("--gguf", default="SmolLM2-135M-Instruct.Q4_1.gguf")
p.add_argument("--tokenizer", default="../shared/reference/smollm2-135m-tokenizer.json")
p.add_argument("--data", default="data/gsm8k")
p.add_argument("--train", type=int, default=512)
p.add_argument("--test", type=int, default=256)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--max-len", type=int, default=512)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--seed", type=int, default=0)
# Examples per forward pass; gradients accumulate over a batch's micro-batches
# (HF Trainer's per_device_train_batch_size 4 × gradient_accumulation_steps 4).
# A whole batch of 16 at once needs ~3.5 MB per padded token (16 × 512 padded
# tokens ≈ 28 GB), more than this 24 GB machine has.
p.add_argument("--micro", type=int, default=4)
p.add_argument("--out", default=None)
a = p.parse_args()

LN2 = math.log(2)
EOS = 2
torch.manual_seed(a.seed)
tok = Tokenizer.from_file(a.tokenizer)


def load(split, n):
    with open(os.path.join(a.data, f"{split}.jsonl")) as f:
        rows = [json.loads(l) for l in f if l.strip()][:n]
    out = []
    for r in rows:
        ids = tok.encode(f"Question: {r['question']}\nAnswer: {r['answer']}", add_special_tokens=False).ids + [EOS]
        out.append(ids[: a.max_len])
    return out


train, test = load("train", a.train), load("test", a.test)
model = AutoModelForCausalLM.from_pretrained(a.model_dir, gguf_file=a.gguf, dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=a.lr, weight_decay=0.0)


def collate(seqs):
    n = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), n, dtype=torch.long)
    att = torch.zeros(len(seqs), n, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
    labels = ids.masked_fill(att == 0, -100)
    return ids, att, labels


def nll_sum(ids, att, labels):
    logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
    tgt = labels[:, 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                                             ignore_index=-100, reduction="sum"), (tgt != -100).sum()


def evaluate():
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(test)), key=lambda i: len(test[i]))
    with torch.no_grad():
        for s in range(0, len(order), a.batch):
            loss, n = nll_sum(*collate([test[i] for i in order[s:s + a.batch]]))
            total += loss.item(); count += n.item()
    model.train()
    return total / count / LN2


rng = random.Random(a.seed)
epochs = []
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, attn={model.config._attn_implementation}", file=sys.stderr)
for epoch in range(1, a.epochs + 1):
    order = list(range(len(train)))
    rng.shuffle(order)
    t0 = time.time(); losses = []; tokens = 0
    for step, s in enumerate(range(0, len(order), a.batch)):
        seqs = [train[i] for i in order[s:s + a.batch]]
        n = sum(len(x) - 1 for x in seqs)  # predicted tokens of the whole batch
        total = 0.0
        for m in range(0, len(seqs), a.micro):
            loss, _ = nll_sum(*collate(seqs[m:m + a.micro]))
            (loss / n).backward()
            total += loss.item()
        opt.step(); opt.zero_grad()
        losses.append(total / n / LN2)
        tokens += sum(len(x) for x in seqs)
        if step % 8 == 0:
            el = time.time() - t0
            print(f"epoch {epoch} step {step + 1}: {losses[-1]:.4f} bits, {tokens / el:.1f} tok/s", file=sys.stderr)
    secs = time.time() - t0
    te = time.time(); test_bits = evaluate(); eval_secs = time.time() - te
    e = dict(epoch=epoch, train_bits=sum(losses) / len(losses), test_bits=test_bits, train_seconds=secs,
             train_tokens=tokens, tokens_per_s=tokens / secs, eval_seconds=eval_secs)
    epochs.append(e)
    print(json.dumps(e), file=sys.stderr)

peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
res = dict(framework=f"torch {torch.__version__} + peft", threads=torch.get_num_threads(), micro=a.micro, epochs=epochs,
           tokens_per_s=sum(e["train_tokens"] for e in epochs) / sum(e["train_seconds"] for e in epochs),
           peak_rss_bytes=peak)
print(json.dumps(res, indent=1))
if a.out:
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    tmp = f"{a.out}.tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, a.out)
