"""The fine-tuning benchmark script on a tiny model: it runs, its numbers are consistent, and it shows what
`aufacial.training.CHECKPOINT_INTERVAL` changes (one checkpoint per epoch before, one per run within the interval)."""
import json, os, subprocess, sys
from conftest import ROOT

def test_bench_finetune_tiny():
    cmd = [sys.executable, str(ROOT / 'scripts' / 'bench_finetune.py'), '--preset', 'tiny', '--device', 'cpu', '--steps', '24',
           '--bs', '4', '--n-videos', '3', '--n-frames', '120']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout[r.stdout.index('{'):])
    every, interval = d['end_to_end_every_epoch'], d['end_to_end_interval']
    assert every['steps'] == interval['steps'] >= 24 and every['epochs'] == interval['epochs'] >= 3
    assert every['checkpoints'] == every['epochs'] and interval['checkpoints'] == 1
    assert d['model_only']['steps'] == 24 and d['model_only']['seconds'] > 0
    assert all(0 < d[f'ratio_{k}'] < 10 for k in ('every_epoch', 'interval'))   # timings themselves are not asserted
