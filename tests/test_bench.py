"""Benchmark scripts on tiny models. The fine-tuning one runs, its numbers are consistent, and it shows what
`aufacial.training.CHECKPOINT_INTERVAL` changes (one checkpoint per epoch before, one per run within the interval);
the video-pretraining one runs both methods end to end and model-only, and compares eager with compiled steps."""
import json, math, os, subprocess, sys
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
    # timings themselves are not asserted (they move with the machine's load); each ratio must be the quotient of the
    # throughputs the same run reports
    for k in ('every_epoch', 'interval'): _check_ratio(d[f'ratio_{k}'], d['clips_per_s'][k], d['clips_per_s']['model_only'])


def _check_ratio(ratio, num, den):
    "A reported ratio is positive, finite and equal to num / den, the two reported throughputs (up to their rounding)."
    assert 0 < ratio < math.inf and num > 0 and den > 0, (ratio, num, den)
    assert math.isclose(ratio, num / den, rel_tol=0.02, abs_tol=2e-3), (ratio, num, den)

def _bench_methods(*args, env=None):
    cmd = [sys.executable, str(ROOT / 'scripts' / 'bench_methods.py'), '--preset', 'tiny', '--device', 'cpu', '--batch-size', '4',
           '--steps', '2', '--warmup', '1', '--rounds', '1', *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, 'PYTHONWARNINGS': 'ignore', **(env or {})})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout[r.stdout.index('{'):])

def test_bench_methods_tiny():
    "Both video methods through the end-to-end and model-only loops: positive throughputs and a ratio from one run."
    for m in ('temporal_contrastive', 'person_independent'):
        d = _bench_methods('--method', m, '--workers', '0')
        assert d['method'] == m and d['model_only']['clips_per_s'] > 0 and d['end_to_end']['clips_per_s'] > 0
        _check_ratio(d['ratio_end_to_end_over_model'], d['end_to_end']['clips_per_s'], d['model_only']['clips_per_s'])

def test_bench_methods_compare_compile(tmp_path):
    "--compare-compile: the eager and the compile_model-ed step timed in one run (timings themselves are not asserted)."
    d = _bench_methods('--method', 'temporal_contrastive', '--compare-compile', env={'TORCHINDUCTOR_CACHE_DIR': str(tmp_path / 'inductor')})
    assert d['eager']['clips_per_s'] > 0 and d['compiled']['clips_per_s'] > 0 and d['compile_and_first_steps_s'] > 0
    assert len(d['round_seconds']['eager']) == len(d['round_seconds']['compiled']) == 1
    _check_ratio(d['ratio_compiled_over_eager'], d['compiled']['clips_per_s'], d['eager']['clips_per_s'])
