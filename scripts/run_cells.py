#!/usr/bin/env python
"""Run chosen long (`slow`) or GPU (`cuda`) cells of the notebooks on their own, and keep their outputs.

`nbdev-test nbs/X.ipynb --flags cuda --save` runs a whole notebook: every CI cell, then every GPU cell, and writes
the outputs only if all of them pass. On a GPU lent for minutes, or to redo one long cell, that is too much, and one
failure loses everything. This script runs each chosen cell in a fresh Python process (a fresh kernel, as a reader's
"restart and run"), after only what the cell needs:

* the notebook's import-only code cells and `from aufacial.<default_exp> import *` (the notebook's own exported
  names, which `make drift` keeps identical to its cells): enough for a self-contained cell;
* when the cell uses a name those do not bind, every code cell above it that `nbdev-test` would run (unflagged), as
  under `nbdev-test`;
* when it uses what an earlier *chosen* cell computed (a chain of long cells), it runs in one process with that cell,
  after every unflagged cell above, in notebook order.

Which set-up a cell gets is decided statically before anything runs, and `--check` stops there: it lists each chosen
cell, its set-up and the names nothing above it binds (a cell with such names is not run at all). As under
`nbdev-test`, `IN_TEST=1` is set and each notebook runs in its own folder.

Each cell that finishes writes its outputs into its notebook at once (temporary file, then rename), and the notebook is
copied to `--out` if given, so a run cut off part way keeps every cell that finished. A cell that fails or runs past
its time keeps its old outputs, and so do the cells chained after it; the other cells still run; the exit status is 1
if any cell failed.

    python scripts/run_cells.py nbs/10_contrawarping.ipynb --flag cuda --check
    python scripts/run_cells.py nbs/10_contrawarping.ipynb nbs/11_mae_multitask.ipynb --flag cuda --budget 540 --out /tmp/out
    python scripts/run_cells.py nbs/13_evaluation.ipynb --ids 6d31cb52 --timeout 600
    python scripts/run_cells.py --cells scripts/gpu_cells.txt --budget 540 --out /tmp/out   # the cells a file lists
    python scripts/run_cells.py --transplant /tmp/out/10_contrawarping.ipynb   # outputs back into nbs/, by cell id

`--transplant` copies the outputs of cells whose id and source match from notebooks run elsewhere (a GPU machine)
into the notebooks of the same name in `nbs/`; a cell whose source has changed since is named and left alone.
Run `nbdev-clean` afterwards, as after `nbdev-test --save`.
"""
import argparse, ast, builtins, json, os, re, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = 'aufacial'
_DIRECTIVE = re.compile(r'^#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')


def tst_flags(root=ROOT) -> tuple:
    "The flags `nbdev-test` skips unless asked (`[tool.nbdev] tst_flags` in pyproject.toml)."
    import tomllib
    return tuple(tomllib.loads((Path(root) / 'pyproject.toml').read_text())['tool']['nbdev'].get('tst_flags', '').split())


FLAGS = tst_flags()


class NotebookError(ValueError):
    "A notebook that cannot be read, or a cell id it does not have."


def load_nb(path) -> dict:
    "The notebook at `path` as JSON; a missing or unreadable file raises `NotebookError` naming it."
    path = Path(path)
    try: nb = json.loads(path.read_text())
    except FileNotFoundError: raise NotebookError(f'{path}: no such notebook') from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e: raise NotebookError(f'{path}: not a notebook ({e})') from None
    if not isinstance(nb, dict) or not isinstance(nb.get('cells'), list): raise NotebookError(f'{path}: not a notebook (no cell list)')
    return nb


def save_nb(nb: dict, path):
    """Write `nb` to `path` with `aufacial.core.atomic_write` (a temporary file, then a rename, keeping the notebook's
    permissions), so no half-written notebook is left."""
    from aufacial.core import atomic_write
    with atomic_write(path, 'w') as f: json.dump(nb, f, indent=1, ensure_ascii=False); f.write('\n')


def source(cell) -> str: return ''.join(cell.get('source', ''))


def directives(src: str) -> dict:
    "nbdev's `#| key value` lines at the top of a cell -> {key: value}."
    out = {}
    for line in src.splitlines():
        if not line.strip(): continue
        m = _DIRECTIVE.match(line)
        if not m: break
        out[m.group(1)] = m.group(2)
    return out


def skipped_by_nbdev_test(src: str, flags) -> bool:
    "True for a cell `nbdev-test` does not run: one of `flags` (the project's `tst_flags`) or `#| eval: false`."
    d = directives(src)
    return bool(set(d) & set(flags)) or d.get('eval', '').lower() == 'false'


def python_source(src: str) -> str:
    """The cell as plain Python: IPython's magics and shell lines turned into calls, as the kernel does; the code that
    `%time`, `%%time` and the like run is kept as code, so that what it binds counts."""
    from IPython.core.inputtransformer2 import TransformerManager
    src = re.sub(r'^(\s*)%%?(?:time|timeit|prun)\b[ \t]*(?:-\S+[ \t]+)*', r'\1', src, flags=re.M)
    return TransformerManager().transform_cell(src)


def _parse(src: str, where: str) -> ast.Module:
    try: return ast.parse(python_source(src))
    except SyntaxError as e: raise NotebookError(f'{where}: the cell is not valid Python ({e.msg}, line {e.lineno})') from None


def is_import_only(src: str, where: str = 'cell') -> bool:
    "True for a code cell that holds imports and nothing else; a cell that is not Python raises `NotebookError` naming `where`."
    body = _parse(src, where).body
    return bool(body) and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body)


def star_names(module: str) -> set:
    "The names `from module import *` binds: `__all__`, or every public name; a module that fails to import binds none."
    try: m = __import__(module, fromlist=['*'])
    except Exception: return set()
    return set(getattr(m, '__all__', None) or [n for n in vars(m) if not n.startswith('_')])


def bound_names(tree: ast.AST) -> set:
    "Every name `tree` binds anywhere (assignments, loops, defs, arguments, imports, `with ... as`, `except ... as`)."
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)): out.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.add(n.name)
        elif isinstance(n, ast.arg): out.add(n.arg)
        elif isinstance(n, ast.ExceptHandler) and n.name: out.add(n.name)
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name: out.add(n.name)
        elif isinstance(n, ast.Import): out |= {a.asname or a.name.split('.')[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            for a in n.names:
                if a.name == '*': out |= star_names(n.module or '')
                else: out.add(a.asname or a.name)
    return out


def free_names(tree: ast.AST) -> set:
    "Names `tree` reads but never binds, builtins and IPython's own (`get_ipython`, `display`) left out."
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used - bound_names(tree) - set(dir(builtins)) - {'get_ipython', 'display', '__file__'}


def default_exp(nb: dict):
    "The module a notebook exports to (`#| default_exp x`), or None."
    for c in nb['cells']:
        if c['cell_type'] == 'code' and 'default_exp' in directives(source(c)):
            return directives(source(c))['default_exp'].split()[0]
    return None


def plan_cell(path, nb: dict, cid: str, flags=FLAGS) -> dict:
    """What cell `cid` of notebook `nb` (read from `path`) needs before it runs.
    Returns {'id', 'src', 'mode': 'imports' | 'above', 'setup': [(id, src)], 'unbound': sorted names nothing binds}."""
    ids = [c.get('id') for c in nb['cells']]
    if cid not in ids: raise NotebookError(f'{path}: no cell with id {cid!r}')
    i = ids.index(cid); cell = nb['cells'][i]
    if cell['cell_type'] != 'code': raise NotebookError(f'{path}: cell {cid} is {cell["cell_type"]}, not code')
    src = source(cell)
    need = free_names(_parse(src, f'{path}:{cid}'))
    above = [(c['id'], source(c)) for c in nb['cells'][:i]
             if c['cell_type'] == 'code' and not skipped_by_nbdev_test(source(c), flags)]
    imports = [(k, s) for k, s in above if is_import_only(s, f'{path}:{k}')]
    mod = default_exp(nb)
    if mod: imports.append(('default_exp', f'from {LIB}.{mod} import *'))
    bound = set().union(*(bound_names(_parse(s, f'{path}:{k}')) for k, s in imports)) if imports else set()
    if not need - bound: return dict(id=cid, src=src, mode='imports', setup=imports, unbound=[])
    bound |= set().union(*(bound_names(_parse(s, f'{path}:{k}')) for k, s in above)) if above else set()
    return dict(id=cid, src=src, mode='above', setup=above, unbound=sorted(need - bound))


def chosen_ids(nb: dict, ids=None, flag=None) -> list:
    "Cell ids to run: `ids` as given (in notebook order), or every code cell flagged `flag`."
    if ids: return [c['id'] for c in nb['cells'] if c.get('id') in set(ids)]
    return [c['id'] for c in nb['cells'] if c['cell_type'] == 'code' and flag in directives(source(c))]


def plan_jobs(path, nb: dict, cids, flags=FLAGS) -> list:
    """Group the chosen cells `cids` of one notebook into jobs, one process each. A cell that can run alone
    (`plan_cell`) is a job of its own. A cell that needs names bound by chosen cells above it (a long cell that uses what
    an earlier long cell computed) runs in one job with them, after every unflagged cell above it, in notebook order,
    as `nbdev-test --flags ...` would run them. Returns [{'seq': [(id, src, chosen)], 'mode', 'unbound': {id: [names]}}]."""
    jobs, order = [], [c.get('id') for c in nb['cells']]
    for cid in cids:
        pl = plan_cell(path, nb, cid, flags)
        if not pl['unbound']:
            jobs.append(dict(cells=[cid], seq=[(k, s, False) for k, s in pl['setup']] + [(cid, pl['src'], True)],
                             mode=pl['mode'], unbound={})); continue
        deps = [j for j in jobs if set(pl['unbound']) & set().union(*(bound_names(_parse(s, f'{path}:{k}'))
                                                                      for k, s, ch in j['seq'] if ch))]
        cells = sorted({k for j in deps for k in j['cells']} | {cid}, key=order.index)
        jobs = [j for j in jobs if j not in deps]
        last = order.index(cells[-1])
        seq = [(c['id'], source(c), c['id'] in cells) for c in nb['cells'][:last + 1] if c['cell_type'] == 'code'
               and (c['id'] in cells or not skipped_by_nbdev_test(source(c), flags))]
        bound, unbound = set(), {}
        for k, s, ch in seq:                  # the unflagged cells above define the exported names themselves
            t = _parse(s, f'{path}:{k}')
            if ch and (free := free_names(t) - bound): unbound[k] = sorted(free)
            bound |= bound_names(t)
        jobs.append(dict(cells=cells, seq=seq, mode='chain' if len(cells) > 1 else 'above', unbound=unbound))
    return sorted(jobs, key=lambda j: order.index(j['cells'][0]))


def _store(path, cid, src, outputs, count, out=None) -> bool:
    "Put `outputs` into cell `cid` of the notebook at `path` (and copy it to `out`); False if the cell's source changed meanwhile."
    nb = load_nb(path)
    cell = next((c for c in nb['cells'] if c.get('id') == cid), None)
    if cell is None or source(cell) != src: return False
    cell['outputs'], cell['execution_count'] = outputs, count
    save_nb(nb, path)
    if out: Path(out).mkdir(parents=True, exist_ok=True); save_nb(nb, Path(out) / Path(path).name)
    return True


def run_job(path, seq, status_file, out=None):
    """In this (fresh) process: run `seq` [(id, src, chosen)] in order with execnb. Each chosen cell that succeeds is
    stored in the notebook at once; the first failure ends the job. One JSON line per chosen cell goes to `status_file`."""
    from execnb.shell import CaptureShell
    os.environ['IN_TEST'] = '1'
    path = Path(path).resolve(); os.chdir(path.parent)
    sh = CaptureShell(path)
    def status(**kw):
        with open(status_file, 'a') as f: f.write(json.dumps(kw) + '\n')
    for k, s, chosen in seq:
        t0 = time.time()
        outs = [dict(o) for o in sh.run(s)]
        dt = round(time.time() - t0, 1)
        err = None if sh.exc is None else f'{type(sh.exc).__name__}: {sh.exc}'
        if not chosen:
            if err: status(id=k, ok=False, seconds=dt, error=f'set-up cell {k} failed: {err}'); return
            continue
        _print_outputs(outs)
        if err: status(id=k, ok=False, seconds=dt, error=err); return
        if not _store(path, k, s, json.loads(json.dumps(outs, default=str)), sh.execution_count - 1, out):
            status(id=k, ok=False, seconds=dt, error='the cell changed on disk while it ran; outputs not saved'); return
        status(id=k, ok=True, seconds=dt)
        print(f'{path.name}:{k}: done in {dt:.0f} s, outputs saved', flush=True)


def _print_outputs(outputs):
    for o in outputs:
        if o.get('output_type') == 'stream': sys.stdout.write(''.join(o.get('text', '')))
        elif o.get('output_type') in ('execute_result', 'display_data'):
            data = o.get('data', {})
            if 'image/png' in data: print('[figure]')
            elif 'text/plain' in data: print(''.join(data['text/plain']))
        elif o.get('output_type') == 'error': print('\n'.join(o.get('traceback', [])[-5:]))
    sys.stdout.flush()


def read_cell_list(path) -> list:
    """[(notebook path, cell id)] in the order of a file of `notebook cell-id [what it is]` lines, `#` starting a
    comment, notebook paths relative to the project root (as in `scripts/gpu_cells.txt`); a bad line raises
    `NotebookError` naming the file and the line."""
    path, out = Path(path), []
    try: text = path.read_text()
    except OSError as e: raise NotebookError(f'{path}: cannot read the cell list ({e.strerror})') from None
    for i, line in enumerate(text.splitlines(), 1):
        f = line.split('#')[0].split()
        if not f: continue
        if len(f) < 2 or not f[0].endswith('.ipynb'):
            raise NotebookError(f'{path}, line {i}: expected "notebook.ipynb cell-id [what it is]", got {line.strip()!r}')
        out.append((ROOT / f[0], f[1]))
    if not out: raise NotebookError(f'{path}: no cells listed')
    return out


def run_cells(paths, ids=None, flag='cuda', timeout=600, budget=None, out=None, check=False, flags=FLAGS) -> int:
    "Run the chosen cells of each notebook in `paths` (see the module's docstring); returns the number of cells that failed."
    t_start, work = time.time(), []
    for p in map(Path, paths):
        nb = load_nb(p)
        work += [(p, j) for j in plan_jobs(p, nb, chosen_ids(nb, ids, flag), flags)]
    missing = [k for k in ids or [] if k not in {c for _, j in work for c in j['cells']}]
    if missing: raise NotebookError(f'{", ".join(map(str, paths))}: no cell with id {", ".join(missing)}')
    if not work: print('no cells chosen'); return 0
    n_cells = sum(len(j['cells']) for _, j in work)
    for p, j in work:
        print(f'{p.name}:{"+".join(j["cells"])}: set-up = {j["mode"]} ({sum(not ch for *_, ch in j["seq"])} cells)'
              + ''.join(f'; UNBOUND in {k}: {", ".join(v)}' for k, v in j['unbound'].items()))
    if check: return sum(len(j['unbound']) for _, j in work)
    failed = 0
    for p, j in work:
        tag = f'{p.name}:{"+".join(j["cells"])}'
        if j['unbound']:
            print(f'{tag}: not run: nothing above binds ' + '; '.join(f'{k}: {", ".join(v)}' for k, v in j['unbound'].items()))
            failed += len(j['cells']); continue
        left = None if budget is None else budget - (time.time() - t_start)
        if left is not None and left < 5:
            print(f'{tag}: not run: the budget of {budget} s is spent'); failed += len(j['cells']); continue
        limit = timeout if left is None else min(timeout, int(left))
        print(f'{tag}: running (limit {limit} s)', flush=True)
        with tempfile.TemporaryDirectory() as td:
            spec, status_file = Path(td) / 'spec.json', Path(td) / 'status.jsonl'
            spec.write_text(json.dumps(dict(path=str(p), seq=j['seq'], status=str(status_file), out=out)))
            t0, stopped = time.time(), None
            try: subprocess.run([sys.executable, __file__, '--_job', str(spec)], timeout=limit, check=False)
            except subprocess.TimeoutExpired: stopped = f'ran past {limit} s and was stopped'
            done = [json.loads(l) for l in status_file.read_text().splitlines()] if status_file.exists() else []
        for k in j['cells']:
            st = next((d for d in done if d['id'] == k), None)
            if st is None:
                st = next((d for d in done if not d['ok']), None)
                why = stopped or (f'not reached: {st["error"]}' if st else 'the cell process died')
                print(f'{p.name}:{k}: FAILED after {time.time() - t0:.0f} s: {why}', flush=True); failed += 1
            elif not st['ok']: print(f'{p.name}:{k}: FAILED after {st["seconds"]:.0f} s: {st["error"]}', flush=True); failed += 1
    print(f'{n_cells - failed} of {n_cells} cells ran; {time.time() - t_start:.0f} s in all')
    return failed


def transplant(src_nbs, nbs_dir=ROOT / 'nbs') -> int:
    "Copy outputs from notebooks run elsewhere into `nbs_dir`'s notebooks of the same name, by cell id and equal source; returns cells copied."
    n = 0
    for s in map(Path, src_nbs):
        got, dest = load_nb(s), Path(nbs_dir) / s.name
        nb = load_nb(dest); theirs = {c.get('id'): c for c in got['cells']}
        copied = []
        for c in nb['cells']:
            t = theirs.get(c.get('id'))
            if c['cell_type'] != 'code' or t is None or not t.get('outputs') or t.get('outputs') == c.get('outputs'): continue
            if source(t) != source(c): print(f'{dest.name}:{c["id"]}: source differs from {s}; left alone'); continue
            c['outputs'], c['execution_count'] = t['outputs'], t.get('execution_count'); copied.append(c['id'])
        if copied: save_nb(nb, dest)
        print(f'{dest.name}: outputs copied for {len(copied)} cells {copied}'); n += len(copied)
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('notebooks', nargs='*')
    ap.add_argument('--flag', default='cuda', help='run every cell with this nbdev flag (default cuda), unless --ids')
    ap.add_argument('--ids', help='comma-separated cell ids to run instead')
    ap.add_argument('--cells', metavar='FILE', help='run the cells a file lists (`notebook id` lines): notebooks in the '
                    "order the file first names them, each notebook's cells in notebook order")
    ap.add_argument('--timeout', type=int, default=600, help='seconds per cell (default 600)')
    ap.add_argument('--budget', type=float, help='seconds for the whole run: a cell gets at most what is left')
    ap.add_argument('--out', help='also copy each notebook here after each cell that finishes')
    ap.add_argument('--check', action='store_true', help="list the cells, their set-up and unbound names; run nothing")
    ap.add_argument('--transplant', nargs='+', metavar='NB', help='copy outputs from these notebooks into nbs/ by cell id')
    ap.add_argument('--_job', help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._job:
        spec = json.loads(Path(a._job).read_text()); run_job(spec['path'], spec['seq'], spec['status'], spec['out']); return 0
    try:
        if a.transplant: transplant(a.transplant); return 0
        if a.cells:
            if a.notebooks or a.ids: ap.error('--cells names the notebooks and the cells: give neither beside it')
            listed = read_cell_list(a.cells)
            a.notebooks, a.ids = list(dict.fromkeys(p for p, _ in listed)), ','.join(k for _, k in listed)
        if not a.notebooks: ap.error('name at least one notebook')
        ids = [s.strip() for s in a.ids.split(',') if s.strip()] if a.ids else None
        return 1 if run_cells(a.notebooks, ids, a.flag, a.timeout, a.budget, a.out, a.check) else 0
    except NotebookError as e:
        print(f'error: {e}', file=sys.stderr); return 2


if __name__ == '__main__': sys.exit(main())
