"""aufacial.align outside a notebook: face detection on real video, a cache build killed mid-way and resumed, and the
memory of a cache build staying bounded as the video gets longer (each in its own process)."""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import numpy as np
import pytest
import torch
from conftest import ROOT, run_py

REC = textwrap.dedent('''
    import sys, json, math, time, resource
    from pathlib import Path
    import numpy as np, torch, av
    from aufacial.core import atomic_path
    class Rec:
        "The fields of aufacial.data.Annotations that the cache reads."
        def __init__(self, dataset, subject, video, source, T, landmarks=None):
            self.dataset, self.subject, self.video, self.source = dataset, subject, video, Path(source)
            self.frame_index = torch.arange(T); self.landmarks = landmarks; self.paths = None
            self.landmark_mask = None if landmarks is None else torch.ones(T, dtype=torch.bool)
        def __len__(self): return len(self.frame_index)
        def read_frame(self, t):
            from aufacial.data import VideoReader
            return VideoReader(self.source)[int(self.frame_index[t])]
    def write_video(path, T, H=240, W=320, seed=0):
        "A moving-gradient MJPEG video; returns 5 landmarks per frame [T, 5, 2] (a face-sized pattern that drifts)."
        yy, xx = np.mgrid[0:H, 0:W]
        lms = []
        with atomic_path(path) as tmp:
            with av.open(str(tmp), 'w', format='avi') as c:
                st = c.add_stream('mjpeg', rate=25); st.width, st.height, st.pix_fmt = W, H, 'yuvj420p'
                for t in range(T):
                    img = np.stack([(xx + 3 * t + seed * 17) % 256, (yy + t) % 256, (xx + yy) % 256], -1).astype(np.uint8)
                    for pk in st.encode(av.VideoFrame.from_ndarray(img, format='rgb24')): c.mux(pk)
                    cx, cy = W / 2 + 10 * math.sin(t / 10), H / 2
                    lms.append([[cx - 20, cy - 15], [cx + 20, cy - 15], [cx, cy + 5], [cx - 15, cy + 25], [cx + 15, cy + 25]])
                for pk in st.encode(): c.mux(pk)
        return torch.tensor(lms, dtype=torch.float32)
''')

def _py(code, *args, timeout=600):
    r = run_py('-c', REC + textwrap.dedent(code), *args, timeout=timeout, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout

def test_real_video_face_detection(real_faces, tmp_path):
    "single_face.mp4: a face in >= 95% of frames; no_face.mp4: none; face_noface.mov: the 97 frames after the person leaves."
    out = _py(f'''
        import socket
        def refuse(*a, **k): raise OSError('network access attempted')
        socket.socket.connect = refuse                     # the MTCNN weights must come from the wheel
        from aufacial.align import build_crop_cache, MTCNNDetector
        torch.set_num_threads(1)
        R = Path({str(real_faces)!r})
        recs = [Rec('real', 'p', n.split('.')[0], R / n, T) for n, T in (('single_face.mp4', 72), ('no_face.mp4', 95), ('face_noface.mov', 169))]
        c = build_crop_cache(recs, {str(tmp_path / 'cache')!r}, size=64, detector=MTCNNDetector(), progress=False)
        print(json.dumps({{r.video: c.face(c.key(r)).tolist() for r in recs}}))
    ''')
    faces = json.loads(out.strip().splitlines()[-1])
    assert len(faces['single_face']) == 72 and np.mean(faces['single_face']) >= 0.95
    assert sum(faces['no_face']) == 0 and len(faces['no_face']) == 95
    f = np.array(faces['face_noface'])
    assert len(f) == 169 and f[:72].all() and not f[72:].any()

def test_build_killed_then_resumed(tmp_path):
    "SIGKILL during the second shard: no half shard is visible; a resumed build reuses shard 1, redoes the rest, equals a clean build."
    make = f'''
        import aufacial.align as al
        lm = [write_video(Path({str(tmp_path)!r}) / f'v{{k}}.avi', 60, seed=k) for k in range(4)]
        recs = [Rec('kill', f'S{{k}}', f'v{{k}}', Path({str(tmp_path)!r}) / f'v{{k}}.avi', 60, lm[k]) for k in range(4)]
    '''
    _py(make + 'print("videos written")')
    slow = make + f'''
        orig = al.detect_and_align
        def slow_align(*a, **k):
            time.sleep(0.4); return orig(*a, **k)          # give the test time to kill us mid-shard
        al.detect_and_align = slow_align
        al.build_crop_cache(recs, Path({str(tmp_path)!r}) / 'cache', size=48, chunk=8, progress=False)
    '''
    shards = tmp_path / 'cache' / 'shards'
    p = subprocess.Popen([sys.executable, '-c', REC + textwrap.dedent(slow)], cwd=str(ROOT), stderr=subprocess.PIPE)
    t0 = time.time()
    while not (shards / 'kill__S0__v0.json').exists():
        assert p.poll() is None, p.stderr.read().decode()[-3000:]
        assert time.time() - t0 < 300, 'first shard never completed'
        time.sleep(0.05)
    while not list(shards.glob('.kill__S1__v1*.part*')): time.sleep(0.02)   # the second shard is being written
    time.sleep(0.5)
    p.send_signal(signal.SIGKILL); p.wait()
    visible = sorted(x.name for x in shards.iterdir() if not x.name.startswith('.'))
    assert visible == ['kill__S0__v0.json', 'kill__S0__v0.npy'], visible       # nothing half-written is visible
    assert list(shards.glob('.*.part*')), 'expected the killed shard to have left a hidden .part file'
    first = {x.name: x.stat().st_mtime_ns for x in shards.iterdir() if not x.name.startswith('.')}
    out = _py(make + f'''
        c = al.build_crop_cache(recs, Path({str(tmp_path)!r}) / 'cache', size=48, chunk=8, progress=False)
        d = al.build_crop_cache(recs, Path({str(tmp_path)!r}) / 'clean', size=48, chunk=8, progress=False)
        print(json.dumps({{'keys': c.keys(), 'same': all(bool((c.read(k, slice(None)) == d.read(k, slice(None))).all()) for k in d.keys()),
                          'faces': [int(c.face(k).sum()) for k in c.keys()]}}))
    ''')
    res = json.loads(out.strip().splitlines()[-1])
    assert res['keys'] == [f'kill__S{k}__v{k}' for k in range(4)]
    assert res['same'] and res['faces'] == [60] * 4
    for name, m in first.items(): assert (shards / name).stat().st_mtime_ns == m, f'{name} was rebuilt'
    assert not list(shards.glob('.*.part*')), 'stale .part files left behind'

def test_cache_build_memory_is_bounded(tmp_path):
    "Peak memory of a cache build grows by far less than the decoded video when the video gets 5x longer."
    code = f'''
        from aufacial.align import build_crop_cache
        T = int(sys.argv[1]); p = Path({str(tmp_path)!r}) / f'long{{T}}.avi'
        lm = write_video(p, T)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rec = Rec('mem', 'S1', f'v{{T}}', p, T, lm)
        build_crop_cache([rec], Path({str(tmp_path)!r}) / f'cache{{T}}', size=32, chunk=32, progress=False)
        print(json.dumps({{'base_kb': base, 'peak_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
    '''
    res = {T: json.loads(_py(code, str(T)).strip().splitlines()[-1]) for T in (200, 1000)}
    raw_mb = (1000 - 200) * 3 * 240 * 320 / 2**20                                 # 176 MB of extra decoded frames
    grow_mb = (res[1000]['peak_kb'] - res[200]['peak_kb']) / 1024
    assert grow_mb < 60, f'peak memory grew by {grow_mb:.0f} MB for {raw_mb:.0f} MB more decoded video: frames are being held'
