"""The console scripts end to end on tiny settings, `apply` on a real video, and the streaming memory bound of `apply`.

Until pyproject.toml lists the scripts, each one is run through a launcher file that does exactly what a console-script
wrapper does (`sys.exit(<function>())` as `__main__`), so fastcore's `call_parse` parses `sys.argv`."""
import csv, json, os, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT, SHARED

SCRIPTS = {'synth': 'synth', 'cache': 'cache', 'pretrain': 'pretrain', 'finetune': 'finetune', 'evaluate': 'evaluate',
           'demo': 'demo', 'apply': 'apply'}

def script(tmp_path, name, *args, timeout=900):
    "Run aufacial-<name> (the installed console script if present, else a launcher) with `args`; returns the process."
    exe = Path(sys.executable).parent / f'aufacial-{name}'
    if exe.exists(): cmd = [str(exe)]
    else:
        launcher = tmp_path / f'aufacial_{name}.py'
        launcher.write_text(f'import sys\nfrom aufacial.cli import {SCRIPTS[name]}\nsys.exit({SCRIPTS[name]}())\n')
        cmd = [sys.executable, str(launcher)]
    env = {**os.environ, 'OMP_NUM_THREADS': '2', 'PYTHONWARNINGS': 'ignore'}
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)

@pytest.fixture(scope='module')
def stages(tmp_path_factory):
    "synth -> cache -> pretrain -> finetune through the console scripts, on 4 tiny subjects."
    d = tmp_path_factory.mktemp('cli')
    r = script(d, 'synth', '--out', d / 'data', '--n-subjects', 4, '--n-frames', 100, '--size', 64)
    assert r.returncode == 0, r.stderr
    r = script(d, 'cache', '--data', d / 'data', '--out', d / 'cache', '--size', 32)
    assert r.returncode == 0, r.stderr
    r = script(d, 'pretrain', '--cache', d / 'cache', '--data', d / 'data', '--out', d / 'tc', '--epochs', 1)
    assert r.returncode == 0, r.stderr
    r = script(d, 'finetune', '--cache', d / 'cache', '--data', d / 'data', '--out', d / 'ft', '--checkpoint', d / 'tc' / 'encoder.pth',
               '--label-fraction', 0.05)
    assert r.returncode == 0, r.stderr
    return d

def test_help_of_every_script(tmp_path):
    for name in SCRIPTS:
        r = script(tmp_path, name, '--help', timeout=300)
        assert r.returncode == 0, (name, r.stderr)
        assert 'usage' in r.stdout.lower(), name
        if name in ('pretrain', 'evaluate', 'demo'): assert '--pi-recipe' in r.stdout, (name, r.stdout)
        if name in ('evaluate', 'demo'):
            for opt in ('--pi-epochs', '--methods', '--no-curve'): assert opt in r.stdout, (name, opt, r.stdout)

def test_stages_write_config_and_metrics(stages):
    d = stages
    assert json.loads((d / 'data' / 'synth.json').read_text())['n_subjects'] == 4
    assert (d / 'data' / 'Videos_LeftCamera').is_dir()
    st = json.loads((d / 'cache' / 'stage.json').read_text())
    assert st['shards'] == 4 and st['faces'] == 400
    assert (d / 'tc' / 'encoder.pth').exists() and json.loads((d / 'tc' / 'stage.json').read_text())['method'] == 'temporal_contrastive'
    m = json.loads((d / 'ft' / 'metrics.json').read_text())
    assert set(m['test_subjects']).isdisjoint(json.loads((d / 'tc' / 'stage.json').read_text())['train_subjects'])
    assert -1 <= m['icc_mean'] <= 1
    assert (d / 'ft' / 'model.pth').exists() and (d / 'ft' / 'run.json').exists()

def test_rerun_skips_finished_stages(stages):
    d = stages
    before = (d / 'ft' / 'model.pth').stat().st_mtime_ns
    r = script(d, 'synth', '--out', d / 'data', '--n-subjects', 4, '--n-frames', 100, '--size', 64)
    assert r.returncode == 0 and 'skipped' in r.stdout, r.stdout + r.stderr
    r = script(d, 'finetune', '--cache', d / 'cache', '--data', d / 'data', '--out', d / 'ft', '--checkpoint', d / 'tc' / 'encoder.pth',
               '--label-fraction', 0.05)
    assert r.returncode == 0, r.stderr
    assert (d / 'ft' / 'model.pth').stat().st_mtime_ns == before
    r = script(d, 'synth', '--out', d / 'data', '--n-subjects', 5, '--n-frames', 100, '--size', 64)
    assert r.returncode != 0 and 'synth.json' in r.stderr

def test_apply_csv_columns(stages, tmp_path):
    d = stages
    vid = next((d / 'data' / 'Videos_LeftCamera').glob('*.avi'))
    out = tmp_path / 'a.csv'
    r = script(tmp_path, 'apply', vid, d / 'ft' / 'model.pth', '--out', out)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 100
    assert [int(x['frame']) for x in rows] == list(range(100))
    assert abs(float(rows[20]['timestamp']) - 1.0) < 1e-3             # 20 fps
    cols = rows[0].keys()
    assert {'AU12_r', 'AU12_c', 'AU01_r', 'AU26_c', 'face', 'face_score'} <= set(cols)
    for x in rows:
        if x['face'] == '1':
            v = float(x['AU12_r']); assert 0 <= v <= 5
            assert x['AU12_c'] == ('1' if v >= 2 else '0')
    assert out.with_suffix('.png').stat().st_size > 1000
    assert not list(tmp_path.glob('.*.part*'))                          # nothing half-written

def test_bad_input_ends_every_script_with_one_line(tmp_path):
    "A data or argument error: exit status 1 and one line on stderr, `aufacial-<name>: <file or option>: <problem>`, no traceback."
    (tmp_path / 'empty').mkdir(); (tmp_path / 'junk.mp4').write_text('not a video')
    cases = {'synth': (['--n-subjects', 0], 'n_subjects must be in'),
             'cache': (['--data', tmp_path / 'nowhere', '--out', tmp_path / 'c'], 'nowhere: video folder does not exist'),
             'pretrain': (['--cache', tmp_path / 'empty', '--method', 'foo'], "method must be one of"),
             'finetune': (['--cache', tmp_path / 'empty', '--data', tmp_path / 'empty'], 'empty/cache.json: not an aligned-crop cache'),
             'evaluate': (['--seeds', '0,x', '--out', tmp_path / 'e'], "seeds must be comma-separated non-negative integers, got ['x']"),
             'demo': (['--preset', 'huge', '--out', tmp_path / 'd'], "preset must be one of"),
             'apply': ([tmp_path / 'junk.mp4', tmp_path / 'none.pth'], 'junk.mp4: not a readable video')}
    assert set(cases) == set(SCRIPTS)
    for name, (args, msg) in cases.items():
        r = script(tmp_path, name, *args, timeout=300)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1, (name, r.returncode, r.stderr[-2000:])
        assert lines[0].startswith(f'aufacial-{name}: ') and msg in lines[0], (name, lines[0])
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith('aufacial_')) == ['empty', 'junk.mp4']   # nothing written

def test_apply_bad_input_names_the_file(stages, tmp_path):
    d = stages
    vid = next((d / 'data' / 'Videos_LeftCamera').glob('*.avi'))
    r = script(tmp_path, 'apply', tmp_path / 'missing.mp4', d / 'ft' / 'model.pth')
    assert r.returncode != 0 and 'missing.mp4' in r.stderr, r.stderr
    bad = tmp_path / 'bad.pth'; bad.write_bytes(b'garbage')
    r = script(tmp_path, 'apply', vid, bad, '--out', tmp_path / 'x.csv')
    assert r.returncode != 0 and 'bad.pth' in r.stderr, r.stderr
    assert not (tmp_path / 'x.csv').exists()
    r = script(tmp_path, 'apply', vid, d / 'tc' / 'encoder.pth', '--out', tmp_path / 'y.csv')   # an encoder, not a regressor
    assert r.returncode != 0 and 'encoder.pth' in r.stderr, r.stderr

def test_apply_real_video_with_and_without_face(stages, tmp_path):
    p = SHARED / 'data' / 'real_faces' / 'face_noface.mov'
    if not p.exists(): pytest.skip(f'{p} is absent (a fresh clone has no ../shared): real-video test skipped')
    out = tmp_path / 'real.csv'
    r = script(tmp_path, 'apply', p, stages / 'ft' / 'model.pth', '--out', out)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 169
    faces = [x['face'] for x in rows]
    assert '1' in faces and '0' in faces, 'the clip has frames with and without a face'
    for x in rows:
        if x['face'] == '0': assert x['AU12_r'] == '' and x['AU12_c'] == '' and x['face_score'] == ''
        else: assert x['AU12_r'] != ''
    ts = [float(x['timestamp']) for x in rows]
    assert all(b > a for a, b in zip(ts, ts[1:]))

def _peak_rss_mb(tmp_path, video, ckpt):
    code = ('import resource, sys\nfrom aufacial.cli import apply_video\n'
            f'apply_video({str(video)!r}, {str(ckpt)!r}, {str(tmp_path / (video.stem + ".csv"))!r}, plot=False, detector="none")\n'
            'print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return float(r.stdout.strip().splitlines()[-1])

def test_apply_streams_in_bounded_memory(stages, tmp_path):
    "Peak memory of apply on a 2,000-frame 256x256 video (~390 MB decoded) stays within 80 MB of a 200-frame one."
    import torch
    from aufacial.synthetic import make_videos, write_video
    base = make_videos(1, 20, seed=3, size=256)[0].frames
    def frames(n):
        for i in range(n): yield base[i % 20]
    short, long = tmp_path / 'short.avi', tmp_path / 'long.avi'
    write_video(short, frames(200)); write_video(long, frames(2000))
    ck = stages / 'ft' / 'model.pth'
    a, b = _peak_rss_mb(tmp_path, short, ck), _peak_rss_mb(tmp_path, long, ck)
    assert b - a < 80, f'peak RSS grew from {a:.0f} MB (200 frames) to {b:.0f} MB (2000 frames)'
    n = sum(1 for _ in open(tmp_path / 'long.csv')) - 1
    assert n == 2000

def test_demo_end_to_end(tmp_path):
    "The README command on smaller data: every stage, a results table, config and metrics beside the outputs; a re-run is quick."
    args = ('--out', tmp_path / 'demo', '--n-subjects', 4, '--n-frames', 120, '--n-unlabelled', 2, '--unlabelled-frames', 60)
    r = script(tmp_path, 'demo', *args, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '| model | labels | mean ICC(3,1)' in r.stdout
    assert "note: the 'tiny' preset" in r.stdout and 'its scores are noise' in r.stdout   # the default preset says what its table is
    d = tmp_path / 'demo'
    s = json.loads((d / 'demo.json').read_text())
    assert set(s['wall_s']) == {'synth', 'cache', 'unlabelled', 'evaluate', 'apply'}
    summ = json.loads((d / 'eval' / 'summary.json').read_text())
    assert summ['unlabelled'] == {'subjects': ['SN005', 'SN006'], 'frames': 120}          # ids after the 4 labelled ones
    assert s['model'].endswith('_unlabelled2/model.pth') and Path(s['model']).exists()
    for f in ('config.json', 'runs.csv', 'scores.csv', 'table.csv', 'table.md', 'summary.json', 'figures/au_icc.png', 'figures/timeline.png'):
        assert (d / 'eval' / f).exists(), f
    assert Path(s['apply_csv']).exists()
    r2 = script(tmp_path, 'demo', *args, timeout=900)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert 'skipped' in r2.stdout
    assert json.loads((d / 'demo.json').read_text())['wall_s']['evaluate'] < s['wall_s']['evaluate']

def test_unlabelled_subjects_through_the_scripts(stages, tmp_path):
    "aufacial-synth --first gives a second tree its own ids; pretrain takes it as stage-1-only subjects and refuses a clash."
    d = stages
    r = script(tmp_path, 'synth', '--out', tmp_path / 'unl', '--n-subjects', 2, '--n-frames', 60, '--size', 64, '--first', 5)
    assert r.returncode == 0 and 'SN005..SN006' in r.stdout, r.stdout + r.stderr
    r = script(tmp_path, 'cache', '--data', tmp_path / 'unl', '--out', tmp_path / 'unl_cache', '--size', 32)
    assert r.returncode == 0, r.stderr
    r = script(tmp_path, 'pretrain', '--cache', d / 'cache', '--data', d / 'data', '--out', tmp_path / 'pre', '--epochs', 1,
               '--unlabelled-cache', tmp_path / 'unl_cache', '--unlabelled-data', tmp_path / 'unl')
    assert r.returncode == 0 and '+ 2 unlabelled' in r.stdout, r.stdout + r.stderr
    st = json.loads((tmp_path / 'pre' / 'stage.json').read_text())
    assert st['unlabelled_subjects'] == ['SN005', 'SN006'] and set(st['train_subjects']).isdisjoint(st['unlabelled_subjects'])
    r = script(tmp_path, 'pretrain', '--cache', d / 'cache', '--data', d / 'data', '--out', tmp_path / 'clash', '--epochs', 1,
               '--unlabelled-cache', d / 'cache', '--unlabelled-data', d / 'data')
    assert r.returncode != 0 and 'also labelled' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / 'clash').exists()

def test_real_video_folder_as_unlabelled_data(stages, real_faces, tmp_path):
    "A folder of real, unlabelled videos is cached (MTCNN) and joins pretraining; as labelled data it is refused."
    d = stages
    r = script(tmp_path, 'cache', '--data', real_faces, '--out', tmp_path / 'real_cache', '--size', 32)
    assert r.returncode == 0 and 'cache: 3 videos' in r.stdout, r.stdout + r.stderr[-2000:]
    st = json.loads((tmp_path / 'real_cache' / 'stage.json').read_text())
    assert st['frames'] == 169 + 95 + 72 and 72 <= st['faces'] < st['frames']         # no_face.mp4 has none
    r = script(tmp_path, 'pretrain', '--cache', d / 'cache', '--data', d / 'data', '--out', tmp_path / 'pre', '--epochs', 1,
               '--unlabelled-cache', tmp_path / 'real_cache', '--unlabelled-data', real_faces)
    assert r.returncode == 0 and '+ 3 unlabelled' in r.stdout, r.stdout + r.stderr[-2000:]
    assert json.loads((tmp_path / 'pre' / 'stage.json').read_text())['unlabelled_subjects'] == ['face_noface', 'no_face', 'single_face']
    r = script(tmp_path, 'finetune', '--cache', tmp_path / 'real_cache', '--data', real_faces, '--out', tmp_path / 'ft')
    assert r.returncode != 0 and 'ActionUnit_Labels: DISFA label folder does not exist' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / 'ft').exists()

def test_finetune_refuses_a_folder_trained_on_another_fold(stages, tmp_path):
    "Fine-tuning fold 1 into fold 0's folder would return fold 0's model, scored on subjects it trained on: refused."
    d = stages
    before = (d / 'ft' / 'model.pth').stat().st_mtime_ns
    r = script(tmp_path, 'finetune', '--cache', d / 'cache', '--data', d / 'data', '--out', d / 'ft', '--checkpoint',
               d / 'tc' / 'encoder.pth', '--label-fraction', 0.05, '--fold', 1)
    assert r.returncode != 0 and 'trained on other inputs' in r.stderr, r.stderr[-2000:]
    assert (d / 'ft' / 'model.pth').stat().st_mtime_ns == before

def test_au_detector_through_the_scripts(stages, tmp_path):
    "--target occurrence: a detector from aufacial-finetune, the F1 protocol of aufacial-evaluate, probabilities from aufacial-apply."
    d = stages
    r = script(tmp_path, 'finetune', '--cache', d / 'cache', '--data', d / 'data', '--out', tmp_path / 'fto', '--label-fraction', 0.05,
               '--target', 'occurrence')
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / 'fto' / 'metrics.json').read_text())
    assert m['target'] == 'occurrence' and 0 <= m['f1_mean'] <= 1 and 'icc_mean' not in m
    r = script(tmp_path, 'evaluate', '--cache', d / 'cache', '--data', d / 'data', '--out', tmp_path / 'ev', '--methods', 'scratch',
               '--target', 'occurrence')
    assert r.returncode == 0, r.stderr
    assert '| model | labels | mean F1 |' in (tmp_path / 'ev' / 'table.md').read_text()
    assert (tmp_path / 'ev' / 'figures' / 'au_f1.png').exists()
    vid = next((d / 'data' / 'Videos_LeftCamera').glob('*.avi'))
    out = tmp_path / 'p.csv'
    r = script(tmp_path, 'apply', vid, tmp_path / 'fto' / 'model.pth', '--out', out, '--threshold', 0.6)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 100 and 'AU12_p' in rows[0] and 'AU12_r' not in rows[0]
    for x in rows:
        if x['face'] == '1':
            p = float(x['AU12_p']); assert 0 <= p <= 1
            assert x['AU12_c'] == ('1' if p >= 0.6 else '0')
    r = script(tmp_path, 'apply', vid, tmp_path / 'fto' / 'model.pth', '--out', tmp_path / 'q.csv', '--threshold', 2)
    assert r.returncode != 0 and 'threshold must be in [0, 1]' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path / 'q.csv').exists()
