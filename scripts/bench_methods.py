#!/usr/bin/env python3
"""Video pretraining throughput of the two clip methods (aufacial.temporal_contrastive, aufacial.person_independent):
end to end (DataLoader of cached uint8 clips -> device -> augmentation on the device -> step) against the model-only
step (the same batch already on the device), measured in one run; prints clips/s, frames/s, peak memory and the ratio.

    # CPU, the notebooks' CPU preset
    nice python scripts/bench_methods.py --method temporal_contrastive --preset cpu_small --device cpu --steps 8
    # GPU, full size, bf16 autocast + channels-last (+ --compile)
    python scripts/bench_methods.py --method temporal_contrastive --preset paper --device cuda --bf16 --channels-last \
        --batch-size 64 --steps 40 --workers 8
    # does torch.compile help? the model-only step eager against compiled, alternating rounds in one run
    python scripts/bench_methods.py --method temporal_contrastive --compare-compile

The cache is a set of memory-mapped .npy arrays shaped like a real clip cache (uint8 windows [M, T, 3, S, S]; for the
person-independent method also partner frames, reconstruction indices and uint8 targets). Their content is random
texture: throughput does not depend on what the pixels show. Each DataLoader worker yields whole batches (one fancy
index per array per batch); the main process copies them (pinned, non-blocking on CUDA) and converts to float on the
device. Model-only timing reuses one batch that is already on the device, so both loops run exactly the same step.
The two loops alternate for `--rounds` rounds and each keeps its best (shortest) round, so a loop that happens to run
first, or during a burst of load from another process, is not what the ratio compares.
"""
from __future__ import annotations
import argparse, copy, json, os, resource, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch


class CachedBatches(torch.utils.data.Dataset):
    "Item = a list of indices -> tuple of uint8/int64 tensors, one per memory-mapped .npy array (opened lazily per worker)."
    def __init__(self, paths):
        self.paths, self.arrs = [str(p) for p in paths], None
        self.n = int(np.load(self.paths[0], mmap_mode='r').shape[0])
    def __len__(self): return self.n
    def __getitem__(self, idx):
        if self.arrs is None: self.arrs = [np.load(p, mmap_mode='r') for p in self.paths]
        idx = np.sort(np.asarray(idx))
        return tuple(torch.from_numpy(np.ascontiguousarray(a[idx])) for a in self.arrs)


def build(method: str, preset: str):
    "(config, model) for `method` at `preset`."
    if method == 'temporal_contrastive':
        from aufacial.temporal_contrastive import TemporalContrastiveConfig as C, TemporalContrastiveModel as M
    else:
        from aufacial.person_independent import PersonIndependentConfig as C, PersonIndependentModel as M
    cfg = getattr(C, preset)()
    return cfg, M(cfg)


def random_arrays(method: str, cfg, n: int, seed: int = 0) -> dict:
    "Random arrays shaped like `n` items of the method's batches (uint8 images, int64 indices), by name."
    g = np.random.default_rng(seed)
    S = cfg.size
    if method == 'temporal_contrastive':
        arrays = {'clips': g.integers(0, 256, (n, cfg.window, 3, S, S), dtype=np.uint8)}
    else:
        T, K = cfg.clip_len, cfg.recon_frames
        arrays = {'clips': g.integers(0, 256, (n, T, 3, S, S), dtype=np.uint8),
                  'partner': g.integers(0, 256, (n, 3, S, S), dtype=np.uint8),
                  'idx': np.stack([np.sort(g.choice(T, K, replace=False)) for _ in range(n)]).astype(np.int64),
                  'targets': g.integers(0, 256, (n, 2, K, 3, S, S), dtype=np.uint8)}
    return arrays


def make_cache(d: Path, method: str, cfg, n: int, seed: int = 0) -> list[Path]:
    "`random_arrays`, saved as .npy under `d` (atomically)."
    from aufacial.core import atomic_write
    paths = []
    for name, a in random_arrays(method, cfg, n, seed).items():
        p = d / f'{name}.npy'
        with atomic_write(p) as f: np.save(f, a)
        paths.append(p)
    return paths


def to_device(b, dev):
    "uint8 -> float in [0, 1] on `dev` (non-blocking copy), other tensors as they are."
    out = []
    for t in b:
        t = t.to(dev, non_blocking=True)
        out.append(t.float().div_(255) if t.dtype == torch.uint8 else t)
    return out


def split(method, b):
    "Batch tuple -> (model inputs, loss targets)."
    return (b[:1], ()) if method == 'temporal_contrastive' else (b[:3], b[3:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--method', choices=['temporal_contrastive', 'person_independent'], default='temporal_contrastive')
    ap.add_argument('--preset', choices=['tiny', 'cpu_small', 'paper'], default='cpu_small')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--bf16', action='store_true', help='autocast to bfloat16 (CUDA)')
    ap.add_argument('--channels-last', action='store_true', help='channels-last model weights (CUDA)')
    ap.add_argument('--compile', action='store_true', help='torch.compile the model')
    ap.add_argument('--compare-compile', action='store_true',
                    help='instead: time the model-only step eager and torch.compile-d (same weights, alternating rounds)')
    ap.add_argument('--batch-size', type=int, default=16, help='clips per step')
    ap.add_argument('--steps', type=int, default=10, help='timed steps per loop')
    ap.add_argument('--warmup', type=int, default=2, help='untimed steps before each loop')
    ap.add_argument('--rounds', type=int, default=3, help='alternating rounds of both loops; each keeps its best round')
    ap.add_argument('--workers', type=int, default=1, help='DataLoader workers of the end-to-end loop')
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    ap.add_argument('--n-cache', type=int, default=256, help='clips in the cache')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    cuda = dev.type == 'cuda'
    torch.manual_seed(a.seed)
    cfg, model = build(a.method, a.preset)
    model = model.to(dev)
    if cuda and a.channels_last: model = model.to(memory_format=torch.channels_last)
    from aufacial.training import compile_model
    twin = compile_model(copy.deepcopy(model)) if a.compare_compile else None    # same weights, compiled parts
    if a.compile and not a.compare_compile: compile_model(model)
    amp = torch.autocast('cuda', dtype=torch.bfloat16, enabled=cuda and a.bf16)
    frames_per_clip = cfg.window if a.method == 'temporal_contrastive' else cfg.clip_len

    def make_step(m):
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=1e-4)
        def step(xb, yb):
            with amp: out = m(*xb)
            loss = m.loss(out, *yb)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            return loss
        return step
    step = make_step(model)

    def sync():
        if cuda: torch.cuda.synchronize()

    if a.compare_compile: return compare_compile(a, cfg, step, make_step(twin), sync, dev, frames_per_clip)

    with tempfile.TemporaryDirectory() as td:
        paths = make_cache(Path(td), a.method, cfg, a.n_cache, a.seed)
        ds = CachedBatches(paths)
        total = a.batch_size * (a.steps + a.warmup)
        sampler = torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(
            ds, replacement=True, num_samples=total, generator=torch.Generator().manual_seed(a.seed)), a.batch_size, drop_last=True)
        dl = torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=None, num_workers=a.workers, pin_memory=cuda,
                                         prefetch_factor=4 if a.workers else None)
        # model only: one batch already on the device
        b0 = to_device(ds[list(range(a.batch_size))], dev)
        xb, yb = split(a.method, b0)

        def timed(next_batch):
            "(seconds for a.steps steps, last loss, peak MiB or None) after a.warmup untimed steps."
            for _ in range(a.warmup): step(*next_batch())
            sync()
            if cuda: torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            for _ in range(a.steps): loss = step(*next_batch())
            sync()
            return time.perf_counter() - t0, loss, (torch.cuda.max_memory_allocated() / 2**20 if cuda else None)

        rounds_model, rounds_e2e = [], []
        for _ in range(max(1, a.rounds)):
            rounds_model.append(timed(lambda: (xb, yb)))
            # end to end: cached uint8 clips -> device -> float -> augmentation inside the step (a fresh pass of the loader)
            it = iter(dl)
            rounds_e2e.append(timed(lambda: split(a.method, to_device(next(it), dev))))
        t_model, _, peak_model = min(rounds_model, key=lambda r: r[0])
        t_e2e, loss, peak_e2e = min(rounds_e2e, key=lambda r: r[0])
    n = a.batch_size * a.steps
    res = dict(method=a.method, preset=a.preset, device=str(dev), gpu=torch.cuda.get_device_name(0) if cuda else None,
               bf16=bool(cuda and a.bf16), channels_last=bool(cuda and a.channels_last), compile=a.compile,
               batch_size=a.batch_size, frames_per_clip=frames_per_clip, size=cfg.size, steps=a.steps, workers=a.workers,
               threads=torch.get_num_threads(), rounds=len(rounds_model), final_loss=loss.item(),
               round_seconds=dict(model_only=[round(r[0], 3) for r in rounds_model], end_to_end=[round(r[0], 3) for r in rounds_e2e]),
               model_only=dict(clips_per_s=round(n / t_model, 2), frames_per_s=round(n * frames_per_clip / t_model, 1),
                               peak_mem_mib=round(peak_model, 1) if peak_model else None),
               end_to_end=dict(clips_per_s=round(n / t_e2e, 2), frames_per_s=round(n * frames_per_clip / t_e2e, 1),
                               peak_mem_mib=round(peak_e2e, 1) if peak_e2e else None),
               peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               ratio_end_to_end_over_model=round(t_model / t_e2e, 3))
    print(json.dumps(res, indent=2))
    return res


def compare_compile(a, cfg, eager_step, compiled_step, sync, dev, frames_per_clip) -> dict:
    """The model-only step of the eager model and of a copy compiled by `aufacial.training.compile_model` (what
    `TrainConfig(compile=True)` does), each with its own optimizer, on one batch already on the device, in alternating
    rounds; each keeps its best round. The compiled copy's first steps (compilation) are timed apart."""
    cuda = dev.type == 'cuda'
    xb, yb = split(a.method, to_device([torch.from_numpy(v) for v in random_arrays(a.method, cfg, a.batch_size, a.seed).values()], dev))

    def timed(step):
        sync(); t0 = time.perf_counter()
        for _ in range(a.steps): loss = step(xb, yb)
        sync()
        return time.perf_counter() - t0, loss

    for _ in range(a.warmup): eager_step(xb, yb)
    sync(); t0 = time.perf_counter()
    for _ in range(max(a.warmup, 2)): compiled_step(xb, yb)      # compiles forward and backward on the first call
    sync(); compile_s = time.perf_counter() - t0
    eager, comp = [], []
    for _ in range(max(1, a.rounds)):
        eager.append(timed(eager_step)); comp.append(timed(compiled_step))
    t_eager, t_comp = min(r[0] for r in eager), min(r[0] for r in comp)
    n = a.batch_size * a.steps
    res = dict(method=a.method, preset=a.preset, device=str(dev), gpu=torch.cuda.get_device_name(0) if cuda else None,
               bf16=bool(cuda and a.bf16), batch_size=a.batch_size, frames_per_clip=frames_per_clip, size=cfg.size,
               steps=a.steps, rounds=len(eager), threads=torch.get_num_threads(), torch=torch.__version__,
               compile_and_first_steps_s=round(compile_s, 1),
               round_seconds=dict(eager=[round(r[0], 3) for r in eager], compiled=[round(r[0], 3) for r in comp]),
               eager=dict(clips_per_s=round(n / t_eager, 2)), compiled=dict(clips_per_s=round(n / t_comp, 2)),
               ratio_compiled_over_eager=round(t_eager / t_comp, 3))
    print(json.dumps(res, indent=2))
    return res


if __name__ == '__main__':
    main()
