#!/usr/bin/env python
"""Pretraining throughput: the model-only train step vs the end-to-end step, measured in one run.

model-only : two clip views already on the device as float tensors -> encoder -> projection -> loss -> backward -> step
end-to-end : uint8 crops memory-mapped from a cache file -> DataLoader (workers, pinned memory) -> device ->
             GPU augmentation (aufacial.augment.GlobalAugment, two views; skipped with a note if the module is absent)
             -> the same step

Default model: ResNet-18 frame encoder + 4-layer temporal transformer (dim 512) on 16-frame 112 px clips, bf16 autocast and
channels-last on CUDA, fp32 on CPU. Prints clips/s, frames/s, peak memory and end-to-end / model-only.
Methods plug in through STEPS (name -> builder returning (modules, loss_fn(view1, view2))).

  python scripts/bench_pretrain.py                 # full size (meant for a GPU)
  python scripts/bench_pretrain.py --tiny          # CPU-sized: width-8 ResNet, 32 px, 4 frames
"""
from __future__ import annotations
import argparse, json, math, os, resource, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from aufacial.core import seed_everything, default_device, env_info
from aufacial.encoders import EncoderConfig, SpatioTemporalEncoder, MLPHead


def _info_nce(z1, z2, tau=0.1):
    "Symmetric InfoNCE between matching rows of z1, z2 [N, D] (aufacial.losses.info_nce when available)."
    try:
        from aufacial.losses import info_nce
        return info_nce(z1, z2, tau=tau)
    except ImportError:
        z1, z2 = F.normalize(z1.float(), dim=-1), F.normalize(z2.float(), dim=-1)
        logits = z1 @ z2.T / tau
        y = torch.arange(len(z1), device=z1.device)
        return (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)) / 2


def build_two_view_infonce(cfg: EncoderConfig):
    "Encoder + projection MLP; loss = InfoNCE between the two views' per-frame projections (frames of all clips are the negatives)."
    enc, proj = SpatioTemporalEncoder(cfg), MLPHead(cfg.dim, cfg.dim, cfg.proj_dim)
    def loss_fn(v1, v2):
        z1, z2 = proj(enc.forward_features(v1)), proj(enc.forward_features(v2))
        return _info_nce(z1.flatten(0, 1), z2.flatten(0, 1))
    return nn.ModuleList([enc, proj]), loss_fn

STEPS = {'two_view_infonce': build_two_view_infonce}


class CropCache(torch.utils.data.Dataset):
    "Random clips [T,3,S,S] uint8 from a memory-mapped cache of videos [V,F,3,S,S] (opened lazily in each worker)."
    def __init__(self, path, n_items, T, seed=0):
        self.path, self.n_items, self.T, self.seed, self.mm = str(path), n_items, T, seed, None
        self.V, self.F = np.load(self.path, mmap_mode='r').shape[:2]
    def __len__(self): return self.n_items
    def __getitem__(self, i):
        if self.mm is None: self.mm = np.load(self.path, mmap_mode='r')
        rng = np.random.default_rng((self.seed, i))
        v, s = rng.integers(self.V), rng.integers(self.F - self.T + 1)
        return torch.from_numpy(np.array(self.mm[v, s:s + self.T]))   # a writable copy of the slice


def make_cache(path, V, F_, S, seed=0):
    "Write a cache of V videos x F frames of smooth random uint8 crops (what build_crop_cache produces, as one array)."
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(V * F_, 3, max(S // 8, 2), max(S // 8, 2), generator=g)
    x = F.interpolate(low, size=(S, S), mode='bilinear', align_corners=False).mul(255).to(torch.uint8)
    np.save(path, x.view(V, F_, 3, S, S).numpy())


def _augmenter(device):
    try:
        from aufacial.augment import GlobalAugment, AugmentConfig
    except ImportError as e:
        return None, f'none (aufacial.augment unavailable: {e})'
    aug = GlobalAugment(AugmentConfig()).to(device)
    return aug, 'aufacial.augment.GlobalAugment (two views, clip-consistent)'


def _sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def run(args):
    device = torch.device(args.device) if args.device else default_device()
    cuda = device.type == 'cuda'
    seed_everything(args.seed)
    if args.tiny: cfg = EncoderConfig.tiny(depth=args.depth or 2)
    else: cfg = EncoderConfig(arch=args.arch, depth=args.depth or 4, heads=8, dim=512, proj_dim=128, dropout=0.0, max_len=max(64, args.frames))
    modules, loss_fn = STEPS[args.method](cfg)
    modules = modules.to(device)
    if cuda: modules = modules.to(memory_format=torch.channels_last)
    if args.compile: modules.compile()
    opt = torch.optim.AdamW(modules.parameters(), lr=1e-4, weight_decay=0.05, **({'fused': True} if cuda else {}))
    amp = torch.autocast('cuda', dtype=torch.bfloat16) if cuda else torch.autocast('cpu', enabled=False)
    B, T, S = args.bs, args.frames, args.size

    def step(v1, v2):
        with amp: loss = loss_fn(v1, v2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        opt.step()
        return loss

    def timed(batches, n):
        "Run n steps pulling (v1, v2) from `batches`; returns (seconds, last loss)."
        for _ in range(args.warmup): loss = step(*next(batches))
        _sync(device); t0 = time.perf_counter()
        for _ in range(n): loss = step(*next(batches))
        _sync(device)
        return time.perf_counter() - t0, loss.detach().item()

    def peak():
        if cuda: return torch.cuda.max_memory_allocated(device) / 2**30, 'GiB on GPU (max allocated)'
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 'GiB host RSS (process peak)'

    # ---- model-only: two fixed float views on the device
    g = torch.Generator(device='cpu').manual_seed(args.seed)
    v1 = torch.rand(B, T, 3, S, S, generator=g).to(device)
    v2 = torch.rand(B, T, 3, S, S, generator=g).to(device)
    def fixed():
        while True: yield v1, v2
    if cuda: torch.cuda.reset_peak_memory_stats(device)
    t_model, loss_m = timed(fixed(), args.steps)
    mem_model = peak()

    # ---- end-to-end: cache -> DataLoader -> device -> GPU augmentation -> step
    aug, aug_name = _augmenter(device)
    with tempfile.TemporaryDirectory() as d:
        cache = Path(d) / 'crops.npy'
        make_cache(cache, args.videos, args.cache_frames, S, args.seed)
        n_items = B * (args.steps + args.warmup + 2)
        ds = CropCache(cache, n_items, T, args.seed)
        dl = torch.utils.data.DataLoader(ds, batch_size=B, shuffle=True, num_workers=args.workers, pin_memory=cuda,
                                         drop_last=True, persistent_workers=args.workers > 0,
                                         prefetch_factor=4 if args.workers > 0 else None)
        ag = torch.Generator(device=device).manual_seed(args.seed)
        def pipeline():
            for x in dl:
                x = x.to(device, non_blocking=True).float().div_(255)
                if aug is not None: yield aug(x, generator=ag), aug(x, generator=ag)
                else: yield x, x.flip(-1)
        if cuda: torch.cuda.reset_peak_memory_stats(device)
        t_e2e, loss_e = timed(pipeline(), args.steps)
        mem_e2e = peak()
        del dl

    res = dict(device=str(device), gpu=torch.cuda.get_device_name(device) if cuda else None, threads=torch.get_num_threads(),
               model=f'{cfg.arch} (width {cfg.width}) + {cfg.depth}-layer {cfg.temporal} dim {cfg.dim}', method=args.method,
               clip=f'{B} x {T} x 3 x {S} x {S}', precision='bf16 autocast, channels-last' if cuda else 'fp32',
               compile=args.compile, augmentation=aug_name, workers=args.workers, steps=args.steps, warmup=args.warmup)
    for name, t, mem, loss in (('model_only', t_model, mem_model, loss_m), ('end_to_end', t_e2e, mem_e2e, loss_e)):
        res[name] = dict(step_ms=1000 * t / args.steps, clips_per_s=B * args.steps / t, frames_per_s=B * T * args.steps / t,
                         peak_mem=f'{mem[0]:.2f} {mem[1]}', last_loss=loss)
    res['ratio_end_to_end_over_model_only'] = res['end_to_end']['clips_per_s'] / res['model_only']['clips_per_s']
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--tiny', action='store_true', help='CPU-sized model and clips')
    p.add_argument('--device', default=None, help='cpu or cuda (default: aufacial.core.default_device())')
    p.add_argument('--method', default='two_view_infonce', choices=sorted(STEPS))
    p.add_argument('--arch', default='resnet18', choices=['resnet18', 'resnet50'])
    p.add_argument('--depth', type=int, default=None, help='temporal transformer layers (default 4; 2 with --tiny)')
    p.add_argument('--bs', type=int, default=None, help='clips per batch (default 32; 4 with --tiny)')
    p.add_argument('--frames', type=int, default=None, help='frames per clip (default 16; 4 with --tiny)')
    p.add_argument('--size', type=int, default=None, help='crop size (default 112; 32 with --tiny)')
    p.add_argument('--steps', type=int, default=None, help='timed steps (default 30; 5 with --tiny)')
    p.add_argument('--warmup', type=int, default=None, help='untimed steps first (default 10; 2 with --tiny)')
    p.add_argument('--workers', type=int, default=None, help='DataLoader workers (default 8; 1 with --tiny)')
    p.add_argument('--videos', type=int, default=8); p.add_argument('--cache-frames', type=int, default=None)
    p.add_argument('--compile', action='store_true', help='torch.compile the modules')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', action='store_true', help='print the result as JSON only')
    a = p.parse_args(argv)
    dflt = dict(bs=(4, 32), frames=(4, 16), size=(32, 112), steps=(5, 30), warmup=(2, 10), workers=(1, 8), cache_frames=(64, 400))
    for k, (tiny, full) in dflt.items():
        if getattr(a, k) is None: setattr(a, k, tiny if a.tiny else full)
    res = run(a)
    if a.json: print(json.dumps(res, indent=2)); return res
    for k in ('device', 'gpu', 'threads', 'model', 'method', 'clip', 'precision', 'compile', 'augmentation', 'workers', 'steps', 'warmup'):
        print(f'{k:13s} {res[k]}')
    print(f'{"":13s} {"step ms":>9s} {"clips/s":>9s} {"frames/s":>10s}  peak memory')
    for name in ('model_only', 'end_to_end'):
        r = res[name]
        print(f'{name:13s} {r["step_ms"]:9.1f} {r["clips_per_s"]:9.2f} {r["frames_per_s"]:10.1f}  {r["peak_mem"]}')
    print(f'end-to-end / model-only throughput: {res["ratio_end_to_end_over_model_only"]:.1%}')
    return res


if __name__ == '__main__':
    main()
