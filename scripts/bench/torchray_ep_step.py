#!/usr/bin/env python3
"""TorchRay 1.0's extremal_perturbation on a TorchScript classifier, timed per step: the competitor's side of
scripts/bench/ep-real.ts, which runs it in the same bench run as the addon.

    python3 scripts/bench/torchray_ep_step.py MODEL IMAGE.f32 SIZE TARGET ITERS THREADS AREA [AREA ...]

IMAGE.f32: 3 x SIZE x SIZE float32 little-endian, the model's input (the bench writes it). Runs TorchRay's
defaults (blur, 8 levels, step 7, sigma 21, jitter, preserve) for ITERS steps with all areas in one batch and
prints one JSON line: {"msPerStep", "iters", "threads", "torch", "torchray"}. Needs a Python with torch and
`torchray` importable (`pip install --no-deps torchray`, plus matplotlib); the bench says so when it is not.
"""
import json
import sys
import time

import numpy as np
import torch
from torchray.attribution.extremal_perturbation import extremal_perturbation


def main():
    model_path, image_path, size, target, iters, threads = sys.argv[1:7]
    areas = [float(a) for a in sys.argv[7:]]
    size, target, iters, threads = int(size), int(target), int(iters), int(threads)
    torch.set_num_threads(threads)
    model = torch.jit.load(model_path, map_location='cpu').eval()
    x = torch.from_numpy(np.fromfile(image_path, dtype='<f4').reshape(1, 3, size, size).copy())
    extremal_perturbation(model, x, target, areas=areas, max_iter=1)  # warm-up (first-call allocations)
    start = time.perf_counter()
    extremal_perturbation(model, x, target, areas=areas, max_iter=iters)
    seconds = time.perf_counter() - start
    import torchray

    print(json.dumps({'msPerStep': 1000 * seconds / iters, 'iters': iters, 'threads': threads, 'torch': torch.__version__,
                      'torchray': getattr(torchray, '__version__', '1.0.0.2')}))


if __name__ == '__main__':
    main()
