#!/usr/bin/env python
"""Benchmark of aufacial.synthetic: render throughput (frames/s) at 112 px on CPU (and CUDA when present), and the
time to generate + write a DISFA-style tree.

    .venv/bin/python scripts/bench_synthetic.py                      # CPU (+GPU if any), 12 x 2000 tree
    .venv/bin/python scripts/bench_synthetic.py --tree-subjects 0    # render throughput only

Ratios (GPU / CPU) are measured in the same run. On a shared machine run it with `nice` and read the load average
it prints: wall-clock frames/s scale with the CPU time the process actually gets, so it also prints frames per
CPU-second consumed by this process (a 1-thread figure is then what one idle core would give).
"""
import argparse, os, shutil, tempfile, time, json
import torch
from aufacial.synthetic import sample_identities, render_faces, write_disfa_tree, SynthConfig

def bench_render(device, size, batch, reps, mixed, threads=None):
    "Best-of-`reps` frames/s of render_faces for one batch (one identity per batch, or mixed identities)."
    g = torch.Generator().manual_seed(0)
    ids = sample_identities(batch if mixed else 1, seed=1)
    aus = (torch.rand(batch, 12, generator=g) * 5).to(device)
    pose = torch.stack([torch.rand(batch, generator=g) * 20 - 10, torch.rand(batch, generator=g) * 16 - 8,
                        torch.rand(batch, generator=g) * 16 - 8, torch.rand(batch, generator=g) * 0.1 - 0.05,
                        torch.rand(batch, generator=g) * 0.1 - 0.05, 0.9 + 0.2 * torch.rand(batch, generator=g)], 1).to(device)
    sync = (lambda: torch.cuda.synchronize()) if device.type == 'cuda' else (lambda: None)
    render_faces(ids, aus, pose, size, nuisance=1.0, generator=torch.Generator().manual_seed(0)); sync()   # warm-up
    best, best_cpu = float('inf'), float('inf')
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        render_faces(ids, aus, pose, size, nuisance=1.0, generator=torch.Generator().manual_seed(0)); sync()
        best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, time.process_time() - c)
    return batch / best, batch / best_cpu

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--size', type=int, default=112)
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--gpu-batch', type=int, default=2048)
    ap.add_argument('--reps', type=int, default=10)
    ap.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--tree-subjects', type=int, default=12)
    ap.add_argument('--tree-frames', type=int, default=2000)
    ap.add_argument('--tree-threads', type=int, default=2)
    ap.add_argument('--json', default=None, help='also write the results here')
    a = ap.parse_args()
    res = {'load_average_before': os.getloadavg(), 'size': a.size, 'torch': torch.__version__}
    cpu = torch.device('cpu')
    for th in a.threads:
        torch.set_num_threads(th)
        for mixed in (False, True):
            k = f'cpu_{th}threads_{"mixed" if mixed else "video"}_fps'
            fps, per_cpu_s = bench_render(cpu, a.size, a.batch, a.reps, mixed)
            res[k] = round(fps, 1); res[k.replace('_fps', '_frames_per_cpu_second')] = round(per_cpu_s, 1)
            print(f'{k:38s} {res[k]:9.1f} frames/s wall, {per_cpu_s:9.1f} frames per CPU-second of this process '
                  f'(batch {a.batch}, {a.size} px)', flush=True)
    if torch.cuda.is_available():
        dev = torch.device('cuda')
        res['gpu'] = torch.cuda.get_device_name(0)
        for mixed in (False, True):
            k = f'cuda_{"mixed" if mixed else "video"}_fps'
            res[k] = round(bench_render(dev, a.size, a.gpu_batch, a.reps, mixed)[0], 1)
            best_cpu = max(v for kk, v in res.items() if kk.startswith('cpu') and kk.endswith(f'{"mixed" if mixed else "video"}_fps'))
            res[k.replace('_fps', '_over_best_cpu')] = round(res[k] / best_cpu, 1)
            print(f'{k:38s} {res[k]:9.1f} frames/s  ({res["gpu"]}, batch {a.gpu_batch}); x{res[k] / best_cpu:.1f} the best CPU run', flush=True)
    if a.tree_subjects > 0:
        torch.set_num_threads(a.tree_threads)
        tmp = tempfile.mkdtemp()
        try:
            t, c = time.perf_counter(), time.process_time()
            write_disfa_tree(os.path.join(tmp, 'disfa'), (a.tree_subjects, a.tree_frames, 0), size=a.size)
            dt, dc = time.perf_counter() - t, time.process_time() - c
            nbytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs)
        finally: shutil.rmtree(tmp, ignore_errors=True)
        res['tree'] = f'{a.tree_subjects} subjects x {a.tree_frames} frames at {a.size} px'
        res['tree_seconds'] = round(dt, 1); res['tree_cpu_seconds'] = round(dc, 1); res['tree_mb'] = round(nbytes / 2**20, 1)
        print(f'DISFA-style tree {res["tree"]}: {dt:.1f} s wall, {dc:.1f} CPU-s of this process '
              f'({a.tree_subjects * a.tree_frames / dt:.0f} frames/s end to end, {nbytes / 2**20:.0f} MB)', flush=True)
    res['load_average_after'] = os.getloadavg()
    print('load average before/after:', res['load_average_before'], res['load_average_after'])
    if a.json:
        with open(a.json, 'w') as f: json.dump(res, f, indent=2)

if __name__ == '__main__':
    main()
