"""Neural Cleanse in PyTorch, as the paper's code runs it (mini-batches of 32 drawn from a clean set, an epoch
per schedule step, lambda from 0 with NC's warm-up and schedule, early stop), on one benchmark model, to tell
how the reversed norms depend on the number of clean images: the committed 16, or hundreds drawn by the
benchmark's own renderer from a seed no model trained on. A developer's check of the library's
'neural-cleanse' (docs/dev/backdoor-scan.md), not a test oracle of exact values.

  /opt/tsvenv/bin/python scripts/bench/_backdoor-nc-reference.py d01-trojan --images 256 --epochs 100
  /opt/tsvenv/bin/python scripts/bench/_backdoor-nc-reference.py d01-trojan --committed --epochs 800
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'backdoor-bench'))
import make_bench  # noqa: E402

BENCH = os.path.join(HERE, '..', '..', 'test', 'fixtures', 'backdoor-bench')


def anomaly(norms):
    t = torch.tensor(norms)
    med = t.median()
    mad = 1.4826 * (t - med).abs().median()
    return [float((med - x) / mad) for x in t]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('--images', type=int, default=256)
    ap.add_argument('--committed', action='store_true', help="the benchmark's committed clean images instead of fresh ones")
    ap.add_argument('--epochs', type=int, default=200)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    manifest = json.load(open(os.path.join(BENCH, 'manifest.json')))
    e = next(m for m in manifest['models'] if m['id'] == a.model)
    S, multi = e['imageSize'], e['head'] == 'sigmoid'
    net = torch.jit.load(os.path.join(BENCH, e['file'])).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    if a.committed:
        from PIL import Image
        import numpy as np
        files = json.load(open(os.path.join(BENCH, 'images.json')))['sets'][f'{S}/{e["head"]}']['images']
        x = torch.stack([torch.from_numpy(np.array(Image.open(os.path.join(BENCH, f['file'])).convert('RGB'))).permute(2, 0, 1) for f in files])
    else:
        gen = torch.Generator().manual_seed(991000 + S + (1 if multi else 0))
        x, _ = make_bench.render(gen, a.images, S, multi)
    x = x.float() / 255
    n, K = x.shape[0], 8
    torch.manual_seed(a.seed)
    span = 2 - 1e-4
    ma = torch.atanh((torch.rand(K, 1, S, S) - 0.5) * span).requires_grad_(True)
    pb = torch.atanh((torch.rand(K, 3, S, S) - 0.5) * span).requires_grad_(True)
    opt = torch.optim.Adam([ma, pb], lr=0.1, betas=(0.5, 0.9))
    init_cost, mult, patience = 1e-3, 2.0, 5
    cost = torch.zeros(K)
    up = torch.zeros(K); down = torch.zeros(K); setc = torch.zeros(K)
    best = torch.full((K,), float('inf'))
    cls = torch.arange(K)
    t0 = time.time()
    for ep in range(a.epochs):
        perm = torch.randperm(n)
        acc = torch.zeros(K); l1s = torch.zeros(K); cnt = 0
        for b0 in range(0, n, a.batch):
            xb = x[perm[b0:b0 + a.batch]]
            b = xb.shape[0]
            m = (torch.tanh(ma) + 1) / 2
            p = (torch.tanh(pb) + 1) / 2
            xs = ((1 - m).unsqueeze(1) * xb.unsqueeze(0) + (m * p).unsqueeze(1)).reshape(K * b, 3, S, S)
            z = net(xs)
            t = cls.repeat_interleave(b)
            if multi:
                zt = z.gather(1, t.view(-1, 1)).squeeze(1)
                ce = F.softplus(-zt).view(K, b).mean(1)
                hit = (zt > 0).float().view(K, b).mean(1)
            else:
                ce = F.cross_entropy(z, t, reduction='none').view(K, b).mean(1)
                hit = (z.argmax(1) == t).float().view(K, b).mean(1)
            l1 = m.flatten(1).sum(1)
            loss = (ce + cost * l1).sum()
            opt.zero_grad(); loss.backward(); opt.step()
            acc += hit.detach() * b; l1s += l1.detach() * b; cnt += b
        acc /= cnt; l1s /= cnt
        ok = (acc >= 0.99).float()
        better = (acc >= 0.99) & (l1s < best)
        best = torch.where(better, l1s, best)
        warm = (cost == 0).float()
        setc = (setc + 1) * ok * warm
        start = setc >= patience
        cost = torch.where(start, torch.full_like(cost, init_cost), cost)
        up = torch.where(start, torch.zeros_like(up), up); down = torch.where(start, torch.zeros_like(down), down)
        up = (up + 1) * ok; down = (down + 1) * (1 - ok)
        raise_, lower = up >= patience, down >= patience
        cost = torch.where(raise_, cost * mult, torch.where(lower, cost / mult ** 1.5, cost))
        up = torch.where(raise_, torch.zeros_like(up), up); down = torch.where(lower, torch.zeros_like(down), down)
    norms = [float(v) / (S * S) for v in best]
    idx = anomaly(norms)
    target = e['targetClass'] if e['targetClass'] is not None else e['pairTrigger']['targetClass']
    print(f'{a.model} images {n} epochs {a.epochs} ({time.time() - t0:.0f} s) target {target}')
    for k in range(K):
        print(f'  class {k}{"*" if k == target else " "} norm {norms[k]:.4f} anomaly {idx[k]:5.2f}')


if __name__ == '__main__':
    main()
