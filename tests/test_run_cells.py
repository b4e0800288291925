"""scripts/run_cells.py: running chosen slow/GPU cells alone, keeping their outputs, and the static set-up check that
every GPU cell of the project passes before a GPU is spent on it."""
import json, re, stat, sys
from pathlib import Path
import pytest
from conftest import ROOT, run_py

sys.path.insert(0, str(ROOT / 'scripts'))
import run_cells as rc

SCRIPT = ROOT / 'scripts' / 'run_cells.py'
NBS = sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if not p.name.startswith('_') and '_draft' not in p.name)

def _cell(cid, src, kind='code'):
    c = dict(cell_type=kind, id=cid, metadata={}, source=src)
    if kind == 'code': c.update(outputs=[], execution_count=None)
    return c

def _nb(tmp_path, cells, name='demo.ipynb'):
    p = tmp_path / name
    p.write_text(json.dumps(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5), indent=1))
    return p

CELLS = [_cell('md000001', '# Demo', 'markdown'),
         _cell('imp00001', '#| hide\nimport math'),
         _cell('def00001', 'k = 3\ndef sq(x): return x * x'),
         _cell('slow0001', '#| slow\nprint(math.sqrt(16))\nmath.pi'),
         _cell('slow0002', '#| slow\nprint(sq(k))'),
         _cell('slow0003', '#| slow\nprint(undefined_name)'),
         _cell('cuda0001', '#| cuda\nraise RuntimeError("no GPU here")'),
         _cell('slow0004', '#| slow\ntotal = sq(k) + 1'),
         _cell('def00002', 'offset = 100'),
         _cell('slow0005', '#| slow\nprint(total + offset)')]

def test_directives_and_flags():
    assert rc.FLAGS == ('slow', 'cuda')                                   # read from pyproject.toml's tst_flags
    assert rc.directives('#| slow\n#| eval: false\nx = 1\n#| cuda') == {'slow': '', 'eval': 'false'}
    assert rc.skipped_by_nbdev_test('#| cuda\nx', ('slow', 'cuda')) and rc.skipped_by_nbdev_test('#| eval: false\nx', ())
    assert not rc.skipped_by_nbdev_test('#| hide\nx', ('slow', 'cuda'))

def test_free_and_bound_names():
    t = rc._parse('import os.path as p, sys\nfor i in range(n): y = f(i)\ndef g(a): return a + b\n%time z = 1', 'x')
    assert rc.bound_names(t) >= {'p', 'sys', 'i', 'y', 'g', 'a', 'z'}
    assert rc.free_names(t) == {'n', 'f', 'b'}
    assert 'test_eq' in rc.bound_names(rc._parse('from fastcore.test import *', 'x'))

def test_plan_picks_the_smallest_setup(tmp_path):
    p = _nb(tmp_path, CELLS); nb = rc.load_nb(p)
    pl = rc.plan_cell(p, nb, 'slow0001')
    assert pl['mode'] == 'imports' and [k for k, _ in pl['setup']] == ['imp00001'] and not pl['unbound']
    jobs = rc.plan_jobs(p, nb, ['slow0001', 'slow0002', 'slow0004', 'slow0005'])
    assert [j['cells'] for j in jobs] == [['slow0001'], ['slow0002'], ['slow0004', 'slow0005']]
    assert [k for k, _, ch in jobs[2]['seq']] == ['imp00001', 'def00001', 'slow0004', 'def00002', 'slow0005']
    assert [ch for *_, ch in jobs[2]['seq']] == [False, False, True, False, True] and jobs[2]['mode'] == 'chain'
    pl = rc.plan_cell(p, nb, 'slow0002')          # needs sq and k: every unflagged cell above runs, slow ones do not
    assert pl['mode'] == 'above' and [k for k, _ in pl['setup']] == ['imp00001', 'def00001'] and not pl['unbound']
    assert rc.plan_cell(p, nb, 'slow0003')['unbound'] == ['undefined_name']
    with pytest.raises(rc.NotebookError, match='no cell with id'): rc.plan_cell(p, nb, 'nope')
    with pytest.raises(rc.NotebookError, match='markdown, not code'): rc.plan_cell(p, nb, 'md000001')
    bad = _nb(tmp_path, [_cell('bad00001', 'def f(:'), _cell('slow0001', '#| slow\nprint(1)')], 'bad.ipynb')
    with pytest.raises(rc.NotebookError, match=r'bad.ipynb:bad00001: the cell is not valid Python'):
        rc.plan_cell(bad, rc.load_nb(bad), 'slow0001')

def test_check_names_unbound_cells(tmp_path):
    p = _nb(tmp_path, CELLS)
    r = run_py(str(SCRIPT), str(p), '--flag', 'slow', '--check')
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'demo.ipynb:slow0003: set-up = above (2 cells); UNBOUND in slow0003: undefined_name' in r.stdout
    assert 'demo.ipynb:slow0004+slow0005: set-up = chain (3 cells)' in r.stdout
    assert json.loads(p.read_text()) == json.loads(json.dumps(dict(cells=CELLS, metadata={}, nbformat=4, nbformat_minor=5)))

def test_run_saves_what_finished_and_keeps_the_rest(tmp_path):
    p = _nb(tmp_path, CELLS); out = tmp_path / 'out'
    r = run_py(str(SCRIPT), str(p), '--flag', 'slow', '--out', str(out), timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr                        # slow0003 cannot run
    assert 'slow0003: not run: nothing above binds slow0003: undefined_name' in r.stdout and '4 of 5 cells ran' in r.stdout
    cells = {c['id']: c for c in json.loads(p.read_text())['cells']}
    assert ''.join(cells['slow0001']['outputs'][0]['text']) == '4.0\n'
    assert ''.join(cells['slow0001']['outputs'][1]['data']['text/plain']).startswith('3.14159')
    assert ''.join(cells['slow0002']['outputs'][0]['text']) == '9\n'
    assert cells['slow0003']['outputs'] == [] and cells['def00001']['outputs'] == [] and cells['def00002']['outputs'] == []
    assert ''.join(cells['slow0005']['outputs'][0]['text']) == '110\n'     # chained after slow0004, with def00002 between
    assert json.loads((out / 'demo.ipynb').read_text()) == json.loads(p.read_text())
    assert not list(tmp_path.glob('.*.tmp'))

def test_failing_cell_keeps_old_outputs(tmp_path):
    old = [dict(output_type='stream', name='stdout', text=['old\n'])]
    cells = [dict(c, outputs=old) if c['id'] in ('cuda0001', 'slow0005') else c for c in CELLS]
    cells = [dict(c, source='#| slow\ntotal = sq(k) + 1\nraise ValueError("bad")') if c['id'] == 'slow0004' else c for c in cells]
    p = _nb(tmp_path, cells)
    r = run_py(str(SCRIPT), str(p), '--ids', 'cuda0001,slow0004,slow0005', timeout=300)
    assert r.returncode == 1 and 'cuda0001: FAILED' in r.stdout and 'no GPU here' in r.stdout, r.stdout + r.stderr
    assert 'slow0004: FAILED after 0 s: ValueError: bad' in r.stdout
    assert 'slow0005: FAILED' in r.stdout and 'not reached: ValueError: bad' in r.stdout and '0 of 3 cells ran' in r.stdout
    got = {c['id']: c for c in json.loads(p.read_text())['cells']}
    assert got['cuda0001']['outputs'] == old and got['slow0005']['outputs'] == old

def test_timeout_and_budget(tmp_path):
    p = _nb(tmp_path, [_cell('imp00001', 'import time'), _cell('slow0001', '#| slow\ntime.sleep(60)'),
                       _cell('slow0002', '#| slow\nprint(1)')])
    r = run_py(str(SCRIPT), str(p), '--flag', 'slow', '--budget', '8', timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r'slow0001: FAILED after \d+ s: ran past [78] s and was stopped', r.stdout), r.stdout
    assert 'slow0002: not run: the budget of 8.0 s is spent' in r.stdout

def test_bad_input_is_named(tmp_path):
    (tmp_path / 'broken.ipynb').write_text('{"cells": [')
    r = run_py(str(SCRIPT), str(tmp_path / 'broken.ipynb'), '--check')
    assert r.returncode == 2 and 'broken.ipynb: not a notebook' in r.stderr, r.stderr
    r = run_py(str(SCRIPT), str(_nb(tmp_path, CELLS)), '--ids', 'slow0001,zzzz', '--check')
    assert r.returncode == 2 and 'no cell with id zzzz' in r.stderr, r.stderr

def test_transplant_copies_by_id_when_the_source_matches(tmp_path):
    mine = tmp_path / 'nbs'; mine.mkdir(); theirs = tmp_path / 'out'; theirs.mkdir()
    _nb(mine, CELLS)
    ran = [dict(c) for c in CELLS]
    ran[3] = dict(ran[3], outputs=[dict(output_type='stream', name='stdout', text=['4.0\n'])], execution_count=1)
    ran[4] = dict(ran[4], source='#| slow\nprint(sq(k) + 1)', outputs=[dict(output_type='stream', name='stdout', text=['10\n'])])
    _nb(theirs, ran)
    assert rc.transplant([theirs / 'demo.ipynb'], mine) == 1
    got = {c['id']: c for c in json.loads((mine / 'demo.ipynb').read_text())['cells']}
    assert got['slow0001']['outputs'][0]['text'] == ['4.0\n'] and got['slow0001']['execution_count'] == 1
    assert got['slow0002']['outputs'] == []                             # its source changed since: left alone

def test_every_gpu_cell_of_the_project_can_run_alone():
    "Before a GPU is spent: every `cuda` cell's names are bound by its notebook's imports or by the cells above it."
    bad, n = [], 0
    for p in NBS:
        nb = rc.load_nb(p)
        for cid in rc.chosen_ids(nb, flag='cuda'):
            n += 1; pl = rc.plan_cell(p, nb, cid)
            if pl['unbound']: bad.append(f'{p.name}:{cid}: {pl["unbound"]}')
    assert n >= 10, f'only {n} cuda cells found'
    assert not bad, bad

def test_cells_file_runs_the_cells_it_lists(tmp_path):
    p = _nb(tmp_path, CELLS); p.chmod(0o640)
    lst = tmp_path / 'cells.txt'
    lst.write_text(f'# comment line\n{p}  slow0002   the square\n\n{p} slow0001  # sqrt\n')
    assert rc.read_cell_list(lst) == [(p, 'slow0002'), (p, 'slow0001')]
    r = run_py(str(SCRIPT), '--cells', str(lst), timeout=120)
    assert r.returncode == 0 and '2 of 2 cells ran' in r.stdout, r.stdout + r.stderr
    got = {c['id']: c.get('outputs') for c in json.loads(p.read_text())['cells']}
    assert got['slow0001'][0]['text'] == ['4.0\n'] and got['slow0002'][0]['text'] == ['9\n'] and got['slow0003'] == []
    assert stat.S_IMODE(p.stat().st_mode) == 0o640                      # saving keeps the notebook's permissions
    r = run_py(str(SCRIPT), '--cells', str(lst), str(p), '--check')
    assert r.returncode == 2 and 'give neither beside it' in r.stderr, r.stderr

def test_bad_cells_file_is_named(tmp_path):
    lst = tmp_path / 'cells.txt'
    lst.write_text('nbs/13_evaluation.ipynb 6d31cb52\nslow0001\n')
    with pytest.raises(rc.NotebookError, match=r'cells.txt, line 2: expected "notebook.ipynb cell-id'): rc.read_cell_list(lst)
    lst.write_text('# nothing\n')
    with pytest.raises(rc.NotebookError, match='cells.txt: no cells listed'): rc.read_cell_list(lst)
    with pytest.raises(rc.NotebookError, match='missing.txt: cannot read the cell list'): rc.read_cell_list(tmp_path / 'missing.txt')

def test_the_lease_list_names_cuda_cells():
    "scripts/gpu_cells.txt, the cells a GPU lease runs (scripts/gpu_cells.sh): each is a `cuda` cell of its notebook."
    listed = rc.read_cell_list(ROOT / 'scripts' / 'gpu_cells.txt')
    assert len(listed) >= 5 and len(set(listed)) == len(listed)
    for p, cid in listed:
        assert cid in rc.chosen_ids(rc.load_nb(p), flag='cuda'), f'{p.name}:{cid} is not a cuda cell'
