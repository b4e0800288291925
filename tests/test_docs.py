"""The docs build, as far as it goes without Quarto (which cannot be installed offline): nbdev's notebook processing,
the step of `nbdev-docs` before Quarto renders. That step executes every code cell that contains an import statement,
anywhere in the cell, so a long or GPU cell with an import would run while the docs are built."""
import ast, json, re, shutil, subprocess, sys
from pathlib import Path
from conftest import ROOT

NBS = sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if not p.name.startswith('_') and '_draft' not in p.name)
BIN = Path(sys.executable).parent

def _code_cells(path):
    for c in json.loads(path.read_text())['cells']:
        if c['cell_type'] == 'code': yield c['id'], ''.join(c['source'])

def _has_import(src: str) -> bool:
    "True when the cell holds an import statement anywhere (magics and shell lines blanked, as nbdev parses them)."
    src = '\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines())
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(ast.parse(src)))

def test_the_notebooks_are_there():
    assert len(NBS) >= 20, f'only {len(NBS)} notebooks under nbs/'

def test_has_import_sees_nested_imports():
    assert _has_import('x = 1\nif x:\n    import os') and _has_import('def f():\n    from a import b')
    assert not _has_import('x = 1\n%time y = 2\n!ls') and not _has_import("s = 'import os'")

def test_no_slow_or_gpu_cell_runs_in_the_docs_build():
    bad = [f'{p.name}:{cid}' for p in NBS for cid, src in _code_cells(p)
           if re.search(r'^#\|\s*(slow|cuda)\b', src, re.M) and _has_import(src)]
    assert not bad, f'long or GPU cells that nbdev-docs would execute (move their imports to an import-only cell): {bad}'

def test_nbdev_proc_nbs_processes_every_notebook():
    out = ROOT / '_proc'
    shutil.rmtree(out, ignore_errors=True)
    r = subprocess.run([str(BIN / 'nbdev-proc-nbs'), '--n-workers', '1', '--force'], cwd=ROOT, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, f'nbdev-proc-nbs failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    got = sorted(p.name for p in out.glob('*.ipynb'))
    assert got == [p.name for p in NBS], f'processed {got}, expected {[p.name for p in NBS]}'

_TEST_CALL = re.compile(r'\b(test_\w+|assert)\b')

def _untested_exports(path):
    """Exported top-level functions and classes of notebook `path` without a docstring, or that no later code cell of the
    notebook both names and tests (a `test_*` call or an `assert`; cells flagged slow or cuda do not count: CI skips
    them). Returns ['name: why', ...]."""
    cells = list(_code_cells(path)); bad = []
    for i, (cid, src) in enumerate(cells):
        if not re.match(r'#\|\s*export\b', src): continue
        tree = ast.parse('\n'.join('' if l.startswith('#|') else l for l in src.splitlines()))
        later = [s for _, s in cells[i + 1:] if not re.match(r'#\|\s*export\b', s) and not re.search(r'^#\|\s*(slow|cuda)\b', s, re.M)]
        for n in tree.body:
            if not isinstance(n, (ast.FunctionDef, ast.ClassDef)) or n.name.startswith('_'): continue
            if not ast.get_docstring(n): bad.append(f'{n.name}: no docstring')
            named = [s for s in later if re.search(rf'\b{n.name}\b', s)]
            if not any(_TEST_CALL.search(s) for s in named):
                bad.append(f'{n.name}: ' + ('no later cell tests it' if named else 'no later cell uses it'))
    return bad

def test_untested_exports_finds_gaps(tmp_path):
    nb = dict(cells=[dict(cell_type='code', id=f'c{i}', source=s) for i, s in enumerate([
        '#| export\ndef ok():\n    "Doc."\n    return 1\ndef nodoc(): return 2\ndef unused():\n    "Doc."\nclass _Private: pass',
        'ok(); nodoc()', 'test_eq(ok(), 1)', '#| slow\ntest_eq(unused(), None)'])])
    p = tmp_path / 'x.ipynb'; p.write_text(json.dumps(nb))
    assert _untested_exports(p) == ['nodoc: no docstring', 'nodoc: no later cell tests it', 'unused: no later cell uses it']

def test_every_export_has_a_docstring_and_a_test_below_it():
    "The project's rule: every exported function or class has a docstring, and a test right below it in its notebook."
    bad = {p.name: b for p in NBS if (b := _untested_exports(p))}
    assert not bad, f'exported names without a docstring or a test below them: {bad}'
