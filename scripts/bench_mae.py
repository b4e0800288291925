#!/usr/bin/env python3
"""MAE pretraining throughput: end-to-end (DataLoader of cached uint8 crops -> device -> masking on the device -> step)
against the model-only step (one batch already on the device), measured in one run; prints both and their ratio.

    # CPU, tiny model (what the notebook shows)
    nice python scripts/bench_mae.py --preset tiny --device cpu --batch-size 32 --steps 20 --workers 1 --threads 1
    # GPU, the paper's ViT-B/16 at 224 px, 75% masked, bf16
    python scripts/bench_mae.py --preset vit_base --device cuda --bf16 --batch-size 256 --steps 40 --workers 8

The crop cache is a uint8 [M, 3, S, S] .npy file of synthetic faces (aufacial.synthetic), memory-mapped by the
DataLoader workers, as a real crop cache would be read. Each worker yields whole batches (one fancy index per batch),
pinned; the main process copies them asynchronously and converts to float on the device.
"""
from __future__ import annotations
import argparse, json, os, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch


class CachedCrops(torch.utils.data.Dataset):
    "Batches from a memory-mapped uint8 [M, 3, S, S] .npy file: item i = a list of indices -> uint8 [B, 3, S, S]."
    def __init__(self, path):
        self.path, self.arr = str(path), None
        self.n = int(np.load(self.path, mmap_mode='r').shape[0])
    def __len__(self): return self.n
    def __getitem__(self, idx):
        if self.arr is None: self.arr = np.load(self.path, mmap_mode='r')  # opened lazily, once per worker
        idx = np.sort(np.asarray(idx))
        return torch.from_numpy(np.ascontiguousarray(self.arr[idx]))


def make_cache(path, n, size, seed=0):
    "Render `n` synthetic faces at `size` px and save them as uint8 [n, 3, size, size] (atomically)."
    from aufacial.core import atomic_write
    try:
        from aufacial.mae import synthetic_face_crops
        per = 32
        crops = synthetic_face_crops(max(1, -(-n // per)), per, seed=seed, size=size)[:n]
    except ImportError:  # renderer not built: random texture crops time the same
        crops = torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    with atomic_write(path) as f: np.save(f, crops.numpy())
    return crops


def loader(path, bs, workers, steps, pin, seed=0):
    ds = CachedCrops(path)
    g = torch.Generator().manual_seed(seed)
    sampler = torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(ds, replacement=True, num_samples=bs * steps, generator=g), bs, drop_last=True)
    return torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=None, num_workers=workers, pin_memory=pin,
                                       prefetch_factor=4 if workers else None, persistent_workers=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--preset', choices=['tiny', 'vit_base'], default='tiny')
    ap.add_argument('--img-size', type=int, default=None, help='override the preset image size')
    ap.add_argument('--mask-ratio', type=float, default=0.75)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--bf16', action='store_true', help='autocast to bfloat16 (CUDA)')
    ap.add_argument('--compile', action='store_true', help='torch.compile the model')
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--steps', type=int, default=20, help='timed steps per mode')
    ap.add_argument('--warmup', type=int, default=5)
    ap.add_argument('--rounds', type=int, default=4, help='alternating model-only / end-to-end rounds')
    ap.add_argument('--workers', type=int, default=1)
    ap.add_argument('--threads', type=int, default=None, help='torch intra-op threads (CPU)')
    ap.add_argument('--n-cache', type=int, default=512, help='crops in the cache file')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    for name in ('batch_size', 'steps', 'n_cache', 'rounds'):
        if getattr(a, name) < 1: raise ValueError(f'--{name.replace("_", "-")} must be >= 1, got {getattr(a, name)}')
    if a.workers < 0: raise ValueError(f'--workers must be >= 0, got {a.workers}')
    if not 0 <= a.mask_ratio < 1: raise ValueError(f'--mask-ratio must be in [0, 1), got {a.mask_ratio}')
    if a.threads: torch.set_num_threads(a.threads)

    from aufacial.mae import MAEConfig, MaskedAutoencoderViT
    from aufacial.core import seed_everything, env_info
    seed_everything(a.seed)
    dev = torch.device(a.device)
    cfg = (MAEConfig.tiny if a.preset == 'tiny' else MAEConfig.vit_base_patch16)(mask_ratio=a.mask_ratio, **({'img_size': a.img_size} if a.img_size else {}))
    model = MaskedAutoencoderViT(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05, fused=dev.type == 'cuda')
    fwd = torch.compile(model) if a.compile else model
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16)
    gen = torch.Generator(device=dev).manual_seed(a.seed)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == 'cuda' else (lambda: None)

    def step(xu8):
        x = xu8.to(dev, non_blocking=True).float().div_(255)
        with amp:
            out = fwd(x, generator=gen)
        loss = model.loss(out)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return loss.detach()

    with tempfile.TemporaryDirectory() as td:
        cache = Path(td) / 'crops.npy'
        t0 = time.time(); make_cache(cache, a.n_cache, cfg.img_size, a.seed); t_cache = time.time() - t0
        fixed = torch.from_numpy(np.load(cache)[:a.batch_size].copy()).to(dev)
        if len(fixed) < a.batch_size: fixed = fixed.repeat(-(-a.batch_size // len(fixed)), 1, 1, 1)[:a.batch_size]

        # alternate the two modes in rounds so that drifting machine load hits both alike
        for _ in range(a.warmup): step(fixed)
        t_model = t_e2e = 0.0
        per = max(1, a.steps // a.rounds)
        for r in range(a.rounds):
            # model only: the batch is already on the device
            sync(); t0 = time.perf_counter()
            for _ in range(per): loss = step(fixed)
            sync(); t_model += time.perf_counter() - t0
            # end to end: DataLoader workers read the cache, the main process copies and masks on the device
            it = iter(loader(cache, a.batch_size, a.workers, per + 1, pin=dev.type == 'cuda', seed=a.seed + r))
            step(next(it))                       # first batch: worker start-up, not timed
            sync(); t0 = time.perf_counter()
            for xb in it: loss = step(xb)
            sync(); t_e2e += time.perf_counter() - t0
        a.steps = per * a.rounds

    n = a.steps * a.batch_size
    res = dict(preset=a.preset, img_size=cfg.img_size, patch=cfg.patch_size, mask_ratio=a.mask_ratio, batch_size=a.batch_size,
               steps=a.steps, device=str(dev), device_name=torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu',
               bf16=a.bf16, compile=a.compile, workers=a.workers, threads=torch.get_num_threads(),
               params_M=round(sum(p.numel() for p in model.parameters()) / 1e6, 2), cache_build_s=round(t_cache, 1),
               model_only_img_s=round(n / t_model, 1), end_to_end_img_s=round(n / t_e2e, 1),
               ratio=round(t_model / t_e2e, 3), last_loss=round(loss.item(), 4), torch=torch.__version__)
    print(json.dumps(res, indent=1))
    return res


if __name__ == '__main__':
    main()
