"""aufacial.data on real media (../shared/data/real_faces) and on large / streaming / multi-process cases that a
notebook cell should not hold: a long video streamed with bounded memory, DISFA-sized label files, a video cut
in the middle of its stream, and records decoded inside DataLoader worker processes."""
import random, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
import av
from aufacial.core import DataFormatError, DISFA_AUS
from aufacial import data as D, fixtures as fx

REAL = {'single_face.mp4': (72, (3, 360, 640)), 'no_face.mp4': (95, (3, 540, 960)), 'face_noface.mov': (169, (3, 540, 960))}

def _sequential(path):
    with av.open(str(path)) as c: return [torch.from_numpy(f.to_ndarray(format='rgb24')).permute(2, 0, 1) for f in c.decode(video=0)]

@pytest.mark.parametrize('name', sorted(REAL))
def test_real_video_exact_random_access(real_faces, name):
    "Random access returns exactly the frame a sequential decode produces, on H.264 (CFR and VFR) and HEVC."
    r = D.VideoReader(real_faces/name)
    n, shape = REAL[name]
    assert (len(r), r.frame_shape) == (n, shape)
    gt = _sequential(real_faces/name)
    assert len(gt) == n
    idx = list(range(n)); random.Random(0).shuffle(idx)
    for i in idx[:15] + [n - 1, 0]: assert torch.equal(r[i], gt[i]), (name, i)
    streamed = list(r.stream(0, None, 10))
    assert [i for i, _ in streamed] == list(range(0, n, 10))
    assert all(torch.equal(f, gt[i]) for i, f in streamed)
    ts = [r.timestamp(i) for i in range(0, n, 20)]
    assert ts == sorted(ts) and ts[0] == pytest.approx(0, abs=0.05)

def test_real_video_reopen_uses_cached_index(real_faces):
    "The table of contents is built once per file and process: a second reader reuses it."
    p = real_faces/'single_face.mp4'
    D.VideoReader(p)
    key = D.VideoReader(p)._key()
    assert key in D._TOC_CACHE and sum(D._TOC_CACHE[key]['lengths']) == 72

def _rss_mb():
    return int(Path('/proc/self/statm').read_text().split()[1]) * 4096 / 2**20

def test_streaming_long_video_bounded_memory(tmp_path):
    "Streaming 1,000 frames (≈230 MB decoded) keeps the resident memory growth far below the decoded size."
    T, H, W = 1000, 240, 320
    g = torch.Generator().manual_seed(0)
    base = fx.smooth_frames(8, H, W, seed=0)
    frames = base[torch.arange(T) % 8]
    frames[:, 0, :4, :4] = (torch.arange(T) % 251).to(torch.uint8)[:, None, None]     # marks a frame's identity
    p = fx.write_video(tmp_path/'long.avi', frames, fps=25)
    r = D.VideoReader(p)
    assert len(r) == T
    rss0, peak, n, last = _rss_mb(), 0.0, 0, None
    for i, f in r.stream():
        n += 1; last = f
        if i % 100 == 0: peak = max(peak, _rss_mb() - rss0)
    assert n == T
    decoded_mb = T * 3 * H * W / 2**20
    assert peak < 60, f'RSS grew by {peak:.0f} MB while streaming {decoded_mb:.0f} MB of frames'
    assert torch.equal(r[T - 1], last)
    assert fx.psnr(r[777], frames[777]) > 30

def test_disfa_sized_labels_and_short_tail(tmp_path):
    "A DISFA-length subject (4,845 frames) loads frame-exact; 4,844 label lines (SN010) need tail_tolerance."
    g = fx.write_disfa_fixture(tmp_path/'d', subjects=('SN010',), n_frames=4845, size=(32, 24), landmarks=False)
    r, = D.load_disfa(tmp_path/'d')
    assert len(r) == 4845 and torch.equal(r.au, g['SN010']['au'].float()) and r.landmarks is None
    for a in DISFA_AUS:
        f = tmp_path/'d'/'ActionUnit_Labels'/'SN010'/f'SN010_au{a}.txt'
        f.write_text(''.join(f.read_text().splitlines(True)[:4844]))
    with pytest.raises(DataFormatError, match='4844 label lines but the video LeftVideoSN010_comp.avi has 4845 frames'):
        D.load_disfa(tmp_path/'d')
    r, = D.load_disfa(tmp_path/'d', tail_tolerance=1)
    assert len(r) == 4844 and torch.equal(r.au, g['SN010']['au'][:4844].float())

def test_video_cut_mid_stream_is_caught(tmp_path):
    "A video truncated in the middle decodes fewer frames; the labels then disagree with it and the loader says so."
    fx.write_disfa_fixture(tmp_path/'d', subjects=('SN001',), n_frames=40, size=(64, 48))
    v = tmp_path/'d'/'Videos_LeftCamera'/'LeftVideoSN001_comp.avi'
    b = v.read_bytes(); v.write_bytes(b[:len(b) // 2])
    with pytest.raises(DataFormatError, match='40 label lines but the video LeftVideoSN001_comp.avi has'):
        D.load_disfa(tmp_path/'d')

class _Frames(torch.utils.data.Dataset):
    def __init__(self, recs): self.items = [(r, t) for r in recs for t in range(len(r))]
    def __len__(self): return len(self.items)
    def __getitem__(self, i): r, t = self.items[i]; return r.read_frame(t), r.au_nan()[t]

def test_records_decode_in_dataloader_workers(tmp_path):
    "Records (and their readers) pickle into worker processes and give the same frames and labels as in-process."
    fx.write_disfa_fixture(tmp_path/'d', subjects=('SN001', 'SN002'), n_frames=8)
    recs = D.load_disfa(tmp_path/'d')
    for r in recs: r.read_frame(3)                                 # an open reader must not break pickling
    ds = _Frames(recs)
    one = [ds[i] for i in range(len(ds))]
    dl = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context='spawn')
    x, y = map(torch.cat, zip(*dl))
    assert torch.equal(x, torch.stack([a for a, _ in one])) and torch.equal(y, torch.stack([b for _, b in one]))

def test_synthetic_tree_round_trip(tmp_path):
    "write_disfa_tree -> load_synthetic_disfa gives back the generator's labels and landmarks frame for frame."
    syn = pytest.importorskip('aufacial.synthetic', reason='aufacial.synthetic (nbs/01_synthetic) is not built yet')
    videos = syn.make_videos(2, 30, seed=1)
    syn.write_disfa_tree(tmp_path/'s', videos)
    recs = D.load_synthetic_disfa(tmp_path/'s')
    assert [r.subject for r in recs] == [v.subject for v in videos]
    assert all((v.aus > 0).any(1).float().mean() > 0.5 for v in videos), 'labels under test must not be all zero'
    for v, r in zip(videos, recs):
        assert torch.equal(r.au, torch.as_tensor(v.aus).float()) and r.au_mask.all()
        assert torch.equal(r.expression, torch.as_tensor(v.expression))
        assert torch.allclose(r.va, torch.as_tensor(v.va)) and torch.allclose(r.extras['au_float'].float(), torch.as_tensor(v.aus_float))
        assert torch.allclose(r.extras['landmarks68'].float(), torch.as_tensor(v.landmarks), atol=1e-5)
        assert r.landmarks is not None and r.landmark_mask.all()
        frames = torch.stack([r.read_frame(t) for t in range(len(r))])
        assert fx.psnr(frames, torch.as_tensor(v.frames)) > 28
