#!/usr/bin/env python3
"""Sparse fine-tuning throughput (stage 2 of the two-stage method): the whole run through `aufacial.sparse.finetune_sparse`
against the model-only step, measured in one run; prints steps/s, clips/s, frames/s, the ratio and the checkpoints written.

end to end : `finetune_sparse` as `13_evaluation` calls it -- SparseClips DataLoader of uint8 crops, fastai Learner
             (bf16 autocast and channels-last on CUDA), gradient clipping, per-epoch validation, run log and resumable
             checkpoints in `out_dir` -- timed from the Learner's creation to the end of fit (`fit_info['wall_s']`);
             once with a checkpoint after every epoch (`checkpoint_interval=0`, the behaviour before
             `CHECKPOINT_INTERVAL`) and once with the default `aufacial.training.CHECKPOINT_INTERVAL`
model only : one batch of the same DataLoader already on the device -> forward -> sparse loss on the labelled frames ->
             backward -> clip -> AdamW step

At 2% labels an epoch is only a few steps (`sparse_clip_dls` makes at least 8 batches), so what happens once per epoch
weighs on every step. The videos are random uint8 frames with random intensities: throughput does not depend on what
the pixels show.

    nice python scripts/bench_finetune.py --preset cpu --device cpu --steps 48 --bs 8
    python scripts/bench_finetune.py --preset paper --device cuda --steps 300 --bs 32
"""
from __future__ import annotations
import argparse, json, tempfile, time
from pathlib import Path
import torch


def videos(n: int, n_frames: int, size: int, seed: int = 0):
    "n LabelledVideos of random uint8 frames [n_frames, 3, size, size] and random DISFA intensities in [0, 5]."
    from aufacial.sparse import LabelledVideo
    g = torch.Generator().manual_seed(seed)
    return [LabelledVideo(f'S{i:02d}', torch.randint(0, 256, (n_frames, 3, size, size), dtype=torch.uint8, generator=g),
                          torch.randint(0, 6, (n_frames, 12), generator=g).float()) for i in range(n)]


def config(preset: str, steps: int):
    "The regressor of `13_evaluation`'s GPU (`paper`) or CPU (`cpu`) experiment, or a tiny one, trained for `steps` steps."
    from aufacial.sparse import SparseRegressionConfig
    from aufacial.evaluation import EvalConfig
    if preset == 'paper': return EvalConfig.gpu().sparse.replace(steps=steps)
    if preset == 'cpu': return EvalConfig.cpu().sparse.replace(steps=steps)
    return SparseRegressionConfig.tiny(clip_len=8, size=32, steps=steps)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--preset', choices=['tiny', 'cpu', 'paper'], default='cpu')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--bs', type=int, default=8, help='clips per step')
    ap.add_argument('--steps', type=int, default=48, help='optimiser steps of each end-to-end run and of the model-only loop')
    ap.add_argument('--n-videos', type=int, default=8)
    ap.add_argument('--n-frames', type=int, default=400)
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    for k in ('bs', 'steps', 'n_videos', 'n_frames'):
        if getattr(a, k) < 1: raise SystemExit(f'--{k.replace("_", "-")} must be >= 1, got {getattr(a, k)}')
    if a.threads: torch.set_num_threads(a.threads)
    import aufacial.sparse as sp
    import aufacial.training as tr
    from aufacial.training import TrainConfig
    dev = torch.device(a.device)
    cuda = dev.type == 'cuda'
    cfg = config(a.preset, a.steps)
    vids = videos(a.n_videos, a.n_frames, cfg.size, a.seed)
    train = TrainConfig(epochs=1, lr=1e-3, wd=1e-4, seed=a.seed)
    sync = (lambda: torch.cuda.synchronize(dev)) if cuda else (lambda: None)

    def end_to_end(interval: float) -> dict:
        with tempfile.TemporaryDirectory() as td:
            m = sp.finetune_sparse(cfg, vids, out_dir=Path(td) / 'ft', train=train, bs=a.bs, device=dev, return_model=True,
                                   checkpoint_interval=interval)
            saves = json.loads((Path(td) / 'ft' / 'run.json').read_text())['checkpoint_epochs']
        info = m.fit_info
        n = len(info['losses'])
        return dict(checkpoint_interval_s=interval, steps=n, epochs=info['epochs'], checkpoints=len(saves),
                    seconds=round(info['wall_s'], 2), steps_per_s=round(n / info['wall_s'], 2))

    sp.finetune_sparse(cfg.replace(steps=1), vids, train=train, bs=a.bs, device=dev)          # warm-up: kernels, autotuning
    every_epoch = end_to_end(0.0)
    interval = end_to_end(tr.CHECKPOINT_INTERVAL)

    # model only: the same model, loss and a batch of the same DataLoader, already on the device
    torch.manual_seed(a.seed)
    model = sp.SparseAURegressor(cfg).to(dev)
    if cuda: model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    loss_fn = sp.sparse_loss(cfg)
    dls = sp.sparse_clip_dls(vids, cfg, a.bs, device=dev)
    xb, yb = dls.train.one_batch()
    amp = torch.autocast('cuda', dtype=torch.bfloat16, enabled=cuda)
    def step():
        with amp: out = model(xb)
        loss = loss_fn(out.float(), yb)
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
    for _ in range(3): step()
    sync(); t0 = time.perf_counter()
    for _ in range(a.steps): step()
    sync(); t_model = time.perf_counter() - t0
    model_only = dict(steps=a.steps, seconds=round(t_model, 2), steps_per_s=round(a.steps / t_model, 2))

    per_step = lambda r: r['seconds'] / r['steps']
    fpc = cfg.clip_len
    res = dict(preset=a.preset, device=str(dev), gpu=torch.cuda.get_device_name(dev) if cuda else None, bs=a.bs,
               clip_len=fpc, size=cfg.size, label_fraction=cfg.label_fraction, threads=torch.get_num_threads(),
               model_only=model_only, end_to_end_every_epoch=every_epoch, end_to_end_interval=interval,
               clips_per_s=dict(model_only=round(a.bs / (t_model / a.steps), 1),
                                every_epoch=round(a.bs / per_step(every_epoch), 1), interval=round(a.bs / per_step(interval), 1)),
               frames_per_s_model_only=round(a.bs * fpc / (t_model / a.steps), 1),
               ratio_every_epoch=round((t_model / a.steps) / per_step(every_epoch), 3),
               ratio_interval=round((t_model / a.steps) / per_step(interval), 3),
               torch=torch.__version__)
    print(json.dumps(res, indent=1))
    return res


if __name__ == '__main__':
    main()
