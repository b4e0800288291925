#!/usr/bin/env python
"""Benchmark of the data path (one run, ratios measured in that run): frames/s of decoding video with
`aufacial.data.VideoReader` (sequential and random access), of building the aligned-crop cache (from landmark files,
and with MTCNN detection), of reading the cache (random frames and random clips), and of batched alignment alone
(CPU, and GPU when there is one).

    .venv/bin/python scripts/bench_data.py            # table
    .venv/bin/python scripts/bench_data.py --json     # table, then one JSON line
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / 'shared' / 'data' / 'real_faces'

def timed(fn, n_items):
    t0 = time.perf_counter(); fn(); dt = time.perf_counter() - t0
    return n_items / dt, dt

class Rec:
    "Minimal record (the fields of aufacial.data.Annotations the cache reads)."
    def __init__(self, dataset, subject, video, source, T):
        self.dataset, self.subject, self.video, self.source = dataset, subject, video, Path(source)
        self.frame_index = torch.arange(T); self.landmarks = None; self.landmark_mask = None; self.paths = None
    def __len__(self): return len(self.frame_index)
    def read_frame(self, t):
        from aufacial.data import VideoReader
        return VideoReader(self.source)[int(self.frame_index[t])]

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--json', action='store_true', help='also print the results as one JSON line')
    ap.add_argument('--subjects', type=int, default=2, help='synthetic videos')
    ap.add_argument('--frames', type=int, default=200, help='frames per synthetic video')
    ap.add_argument('--reads', type=int, default=64, help='random reads per measurement')
    ap.add_argument('--clip', type=int, default=16, help='clip length of the random clip reads')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    from aufacial.data import VideoReader, load_synthetic_disfa
    from aufacial.synthetic import make_videos, write_disfa_tree
    from aufacial.align import build_crop_cache, align_faces, MTCNNDetector, record_key
    rng = np.random.default_rng(a.seed)
    tmp = Path(tempfile.mkdtemp(prefix='aufacial_bench_'))
    rows = []
    def add(what, source, fps, seconds, note=''):
        rows.append({'what': what, 'source': source, 'frames/s': round(fps, 1), 'seconds': round(seconds, 2), 'note': note})
        print(f'{what:38s} {source:28s} {fps:10.1f} frames/s  ({seconds:.2f} s) {note}', flush=True)

    # synthetic DISFA-style tree (MJPEG videos + landmark files), the cache built from its landmarks
    write_disfa_tree(tmp / 'disfa', make_videos(a.subjects, a.frames, seed=a.seed))
    recs = load_synthetic_disfa(tmp / 'disfa')
    videos = [(f'synthetic {r.subject} (112², mjpeg)', r.source, len(r)) for r in recs[:1]]
    if REAL.exists():
        videos += [('single_face.mp4 (640×360 h264)', REAL / 'single_face.mp4', 72), ('face_noface.mov (960×540 hevc)', REAL / 'face_noface.mov', 169)]
    decode = {}
    for name, path, T in videos:
        vr = VideoReader(path)
        fps, dt = timed(lambda: [f for _, f in vr.stream()], T); add('decode, sequential', name, fps, dt)
        idx = rng.integers(0, T, a.reads)
        fps, dt = timed(lambda: [vr[int(i)] for i in idx], a.reads); add('decode, random frame', name, fps, dt)
        starts = rng.integers(0, T - a.clip + 1, max(a.reads // a.clip, 4))
        fps, dt = timed(lambda: [[vr[int(s) + k] for k in range(a.clip)] for s in starts], len(starts) * a.clip)
        add(f'decode, random {a.clip}-frame clip', name, fps, dt); decode[name] = fps
    n = sum(len(r) for r in recs)
    fps, dt = timed(lambda: build_crop_cache(recs, tmp / 'cache_lm', size=112, margin=0.1, progress=False), n)
    add('cache build, landmarks', f'synthetic {len(recs)}×{a.frames}', fps, dt)
    caches = [('synthetic (112² crops)', tmp / 'cache_lm', [record_key(r) for r in recs])]
    if REAL.exists():
        det = MTCNNDetector()
        real = [Rec('real', 'p', 'single_face', REAL / 'single_face.mp4', 72)]
        fps, dt = timed(lambda: build_crop_cache(real, tmp / 'cache_det', size=112, margin=0.1, detector=det, progress=False), 72)
        add('cache build, MTCNN detection', 'single_face.mp4, 72 frames', fps, dt, f'max_side={det.max_side}')
        caches.append(('real (112² crops)', tmp / 'cache_det', [record_key(r) for r in real]))
    from aufacial.align import AlignedCropCache
    read = {}
    for name, root, keys in caches:
        c = AlignedCropCache(root); T = {k: len(c.face(k)) for k in keys}
        picks = [(keys[int(rng.integers(len(keys)))]) for _ in range(a.reads * 4)]
        fps, dt = timed(lambda: [c.read(k, slice(t, t + 1)) for k in picks for t in [int(rng.integers(T[k]))]], len(picks))
        add('cache read, random frame', name, fps, dt)
        cl = [(k, int(rng.integers(T[k] - a.clip + 1))) for k in picks]
        fps, dt = timed(lambda: [c.read(k, slice(s, s + a.clip)) for k, s in cl], len(cl) * a.clip)
        add(f'cache read, random {a.clip}-frame clip', name, fps, dt); read[name] = fps
    # batched alignment alone
    x = torch.randint(0, 256, (64, 3, 360, 640), dtype=torch.uint8)
    lm = torch.tensor([[250., 150], [330, 150], [290, 190], [260, 230], [320, 230]]).expand(64, 5, 2) + torch.randn(64, 5, 2)
    devs = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for d in devs:
        xd, ld = x.to(d), lm.to(d)
        align_faces(xd, ld, 112)
        if d == 'cuda': torch.cuda.synchronize()
        def run():
            for _ in range(5): align_faces(xd, ld, 112)
            if d == 'cuda': torch.cuda.synchronize()
        fps, dt = timed(run, 5 * 64); add('align_faces (batch 64, 640×360 -> 112²)', d, fps, dt)
    ratios = {}
    syn_dec = next(v for k, v in decode.items() if k.startswith('synthetic'))
    ratios['cache clip read / decode clip (synthetic)'] = round(read['synthetic (112² crops)'] / syn_dec, 1)
    if 'real (112² crops)' in read:
        for k, v in decode.items():
            if not k.startswith('synthetic'): ratios[f'cache clip read / decode clip ({k.split()[0]})'] = round(read['real (112² crops)'] / v, 1)
    for k, v in ratios.items(): print(f'{k:60s} {v:8.1f}x')
    info = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'cpu_count': os.cpu_count(),
            'cuda': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, 'seed': a.seed}
    if a.json: print(json.dumps({'rows': rows, 'ratios': ratios, 'info': info}))

if __name__ == '__main__':
    main()
