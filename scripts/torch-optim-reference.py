# Writes tests/fixtures/optim/torch_optim.json: parameter trajectories of
# torch.optim AdamW / Adam / SGD (with and without global-norm clipping by
# torch.nn.utils.clip_grad_norm_) on three small tensors, for
# tests/it/train_optim.rs, which checks peftc's multi-tensor optimizer against
# them to 1e-6. Not part of CI (which does not download torch):
#   venv/bin/python scripts/torch-optim-reference.py
import json, math, os

import torch

torch.set_default_dtype(torch.float64)  # the reference itself carries no f32 rounding
SHAPES = [7, 1, 33]
STEPS = 6


def init(k, n):
    return [math.sin(0.7 * k + 0.31 * i) for i in range(n)]


def grad(step, k, n):
    # Large enough that clipping at 0.5 bites on most steps.
    return [math.cos(1.3 * step + 0.17 * i * (k + 1)) * (1.0 + 0.5 * k) for i in range(n)]


CASES = [
    ("adamw", dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), None),
    ("adamw", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.0), 0.5),
    ("adam", dict(lr=3e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1), 0.5),
    ("sgd", dict(lr=5e-2, momentum=0.9, weight_decay=0.01), None),
    ("sgd", dict(lr=5e-2, momentum=0.0, weight_decay=0.0), 0.5),
]

out = []
for kind, kw, clip in CASES:
    params = [torch.tensor(init(k, n), requires_grad=True) for k, n in enumerate(SHAPES)]
    cls = dict(adamw=torch.optim.AdamW, adam=torch.optim.Adam, sgd=torch.optim.SGD)[kind]
    opt = cls(params, **kw)
    traj = []
    for step in range(STEPS):
        for k, (p, n) in enumerate(zip(params, SHAPES)):
            p.grad = torch.tensor(grad(step, k, n))
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        traj.append([p.detach().tolist() for p in params])
    out.append(dict(kind=kind, config={k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}, clip=clip, trajectory=traj))

path = "tests/fixtures/optim/torch_optim.json"
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path + ".tmp", "w") as f:
    json.dump(dict(torch=torch.__version__, shapes=SHAPES, steps=STEPS,
                   init=[init(k, n) for k, n in enumerate(SHAPES)],
                   grads=[[grad(s, k, n) for k, n in enumerate(SHAPES)] for s in range(STEPS)],
                   cases=out), f)
os.replace(path + ".tmp", path)
print(f"wrote {path}")
