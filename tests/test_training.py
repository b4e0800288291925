"""Multi-process training: the DDP smoke run under torchrun with 2 CPU processes (gloo), and a checkpoint written by one
process resumed by another. Each test stays well under a minute on 2 cores."""
import json, os, shutil, socket, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT, run_py

ENV = {'OMP_NUM_THREADS': '1', 'AUFACIAL_DEVICE': 'cpu', 'PYTHONWARNINGS': 'ignore'}

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _torchrun():
    exe = Path(sys.executable).parent / 'torchrun'
    return str(exe) if exe.exists() else shutil.which('torchrun')

def _smoke(out, *args, python=sys.executable):
    r = run_py('-m', 'aufacial.training', '--smoke', '--out', str(out), *args, env=ENV, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads((Path(out) / 'smoke_rank0.json').read_text())

def test_ddp_two_cpu_processes_agree(tmp_path):
    "torchrun --nproc_per_node 2 (gloo): both ranks end with identical weights, saw disjoint halves of the data, and the loss fell."
    if _torchrun() is None: pytest.skip('torchrun not found')
    out = tmp_path / 'ddp'
    cmd = [_torchrun(), '--nproc_per_node', '2', '--master_addr', '127.0.0.1', '--master_port', str(_free_port()),
           '-m', 'aufacial.training', '--smoke', '--out', str(out), '--epochs', '2', '--n-clips', '16']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **ENV}, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    ranks = [json.loads((out / f'smoke_rank{i}.json').read_text()) for i in range(2)]
    assert [x['rank'] for x in ranks] == [0, 1] and all(x['world'] == 2 for x in ranks)
    assert ranks[0]['digest'] == ranks[1]['digest'], 'ranks disagree on the final weights'
    for e in range(2):
        s0, s1 = ranks[0]['served'][e], ranks[1]['served'][e]
        assert len(s0) == len(s1) == 8 and not set(s0) & set(s1) and sorted(s0 + s1) == list(range(16))
    # only rank 0 writes the checkpoint and the run log; both reflect the DDP run
    run = json.loads((out / 'run.json').read_text())
    assert run['finished'] and run['world_size'] == 2 and len(run['history']) == 2
    from aufacial.encoders import read_checkpoint
    ck = read_checkpoint(out / 'last.pth')
    assert ck['epoch'] == 2 and ck['sha256'] == ranks[0]['digest']

def test_resume_in_a_new_process_is_bit_exact(tmp_path):
    "A run stopped after epoch 1 and resumed by a new process ends with the same weights as an uninterrupted run."
    straight = _smoke(tmp_path / 'a', '--epochs', '3', '--n-clips', '16')
    stopped = _smoke(tmp_path / 'b', '--epochs', '3', '--n-clips', '16', '--stop-after', '1')
    assert stopped['epoch'] == 0 and stopped['digest'] != straight['digest']
    resumed = _smoke(tmp_path / 'b', '--epochs', '3', '--n-clips', '16')
    assert resumed['digest'] == straight['digest']
    hist = json.loads((tmp_path / 'b' / 'run.json').read_text())['history']
    assert [h['epoch'] for h in hist] == [0, 1, 2]

def test_entry_point_refuses_without_task(tmp_path):
    r = run_py('-m', 'aufacial.training', '--out', str(tmp_path / 'x'), env=ENV, timeout=300, cwd=ROOT)
    assert r.returncode != 0 and 'pass --smoke' in r.stderr
