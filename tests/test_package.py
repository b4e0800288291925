"""Tests of the installed package: what a notebook cannot show (the wheel, console scripts, import cost, docstrings)."""
import ast, json, os, subprocess, sys, sysconfig, tomllib, venv, zipfile
from pathlib import Path
import pytest
from conftest import ROOT, run_py

PYPROJECT = tomllib.loads((ROOT / 'pyproject.toml').read_text())
SCRIPTS = PYPROJECT['project'].get('scripts', {})

@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    "Build the wheel from the working tree (no build isolation: setuptools comes from the dev extras)."
    out = tmp_path_factory.mktemp('wheel')
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    whls = list(out.glob('aufacial-*.whl'))
    assert len(whls) == 1, whls
    return whls[0]

@pytest.fixture(scope='module')
def fresh_venv(tmp_path_factory, wheel):
    """A new venv with the wheel installed (--no-deps); its heavy dependencies (torch, fastai) are borrowed from the
    running environment through a .pth file, so the test checks the package, not a 6 GB reinstall of torch."""
    d = tmp_path_factory.mktemp('venv')
    venv.create(d, with_pip=True)
    py = d / 'bin' / 'python'
    site = subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True).stdout.strip()
    deps = sysconfig.get_paths()['purelib']
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', str(wheel)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    # appended after the venv's own site-packages, so `aufacial` resolves to the installed wheel
    Path(site, 'zz_borrowed_deps.pth').write_text(deps + '\n')
    return d

def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    mods = sorted(p.name for p in (ROOT / 'aufacial').glob('*.py'))
    for m in mods: assert f'aufacial/{m}' in names, f'{m} missing from {wheel.name}'
    meta = [n for n in names if n.endswith('METADATA')][0]
    text = zipfile.ZipFile(wheel).read(meta).decode()
    for dep in ('torch', 'fastai', 'pims', 'av', 'timm'): assert f'Requires-Dist: {dep}' in text, dep

def test_installed_wheel_imports_from_venv(fresh_venv):
    py = fresh_venv / 'bin' / 'python'
    r = run_py('-c', 'import aufacial, aufacial.core as c; print(aufacial.__file__); print(aufacial.__version__); print(len(c.FACS))', python=py, cwd='/')
    assert r.returncode == 0, r.stderr
    path, version, n = r.stdout.split()
    assert str(fresh_venv) in path, f'imported from {path}, not from the installed wheel'
    assert version == __import__('aufacial').__version__
    assert int(n) >= 17

@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_console_script_help(fresh_venv, script):
    exe = fresh_venv / 'bin' / script
    assert exe.exists(), f'console script {script} not installed'
    r = subprocess.run([str(exe), '--help'], capture_output=True, text=True, timeout=300, cwd='/')
    assert r.returncode == 0, r.stderr
    assert 'usage' in r.stdout.lower()

def test_info_script_reports_versions(fresh_venv):
    r = subprocess.run([str(fresh_venv / 'bin' / 'aufacial-info'), '--json-out'], capture_output=True, text=True, timeout=300, cwd='/')
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    import torch
    assert info['torch'] and info['torch'] in torch.__version__
    assert info['device'] in ('cpu', 'cuda')

def test_import_is_light():
    "`import aufacial` must not pull torch or fastai in: console scripts and `--help` stay fast."
    r = run_py('-c', 'import sys, aufacial; print(sorted(m for m in ("torch", "fastai", "timm") if m in sys.modules))')
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '[]', r.stdout

def test_import_time_of_core():
    "Importing the core module (which needs torch) stays within a generous budget on a 2-core machine."
    r = run_py('-X', 'importtime', '-c', 'import aufacial.core')
    assert r.returncode == 0, r.stderr
    total_us = max(int(l.split('|')[1]) for l in r.stderr.splitlines() if l.startswith('import time:') and l.split('|')[1].strip().isdigit())
    assert total_us < 30e6, f'import aufacial.core took {total_us/1e6:.1f}s'

def _exported():
    for py in sorted((ROOT / 'aufacial').glob('*.py')):
        if py.name.startswith('_'): continue
        tree = ast.parse(py.read_text())
        all_ = next((ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                     and any(getattr(t, 'id', None) == '__all__' for t in n.targets)), [])
        for n in tree.body:
            if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and n.name in all_:
                yield py.name, n

def test_every_exported_function_has_a_docstring():
    missing = [f'{f}:{n.name}' for f, n in _exported() if not ast.get_docstring(n)]
    assert not missing, f'exported without a docstring: {missing}'
    assert len(list(_exported())) > 10

NOTEBOOKS = sorted(p for p in (ROOT / 'nbs').glob('[0-9]*.ipynb') if '_draft' not in p.name)

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_skeleton(nb):
    "Title + one-line description first, a default_exp, and tests in the notebook."
    cells = json.loads(nb.read_text())['cells']
    first = ''.join(cells[0]['source'])
    assert cells[0]['cell_type'] == 'markdown' and first.startswith('# ') and '\n> ' in first, f'{nb.name}: first cell must be "# Title" + "> description"'
    code = [''.join(c['source']) for c in cells if c['cell_type'] == 'code']
    assert any(c.startswith('#| default_exp') for c in code), f'{nb.name}: no #| default_exp'
    assert any(k in c for c in code for k in ('test_eq(', 'test_close(', 'test_fail(')), f'{nb.name}: no tests'

def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1
