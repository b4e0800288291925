#!/usr/bin/env python
"""Download the wheels that chosen `cuda` cells need on a GPU machine with PyTorch but no package index.

A GPU machine lent for minutes cannot `pip install` anything: its image holds PyTorch and the scientific stack, and
nothing can be fetched there. What it lacks (fastai, execnb, PyAV, ...) has to travel with the working tree as wheels
built for *its* Python, and the working tree may only be so large. This script works out that set here:

1. the import statements that the cells listed in `--cells` run (default `scripts/gpu_cells.txt`: the `cuda` cells a
   lease runs, in order): each cell's set-up as `scripts/run_cells.py` plans it (the notebook's import-only cells and
   exported names, or the cells above it), the cell itself, and the imports of every `scripts/*.py` the cell names and
   of `run_cells.py`, which runs the cells;
2. the distributions those imports load, and those that running cells through execnb loads (an inline figure, a table,
   a traceback), read from `sys.modules` in a fresh process of this project's Python, at the versions installed here
   (the versions the tests pass with);
3. minus those the target image already holds (`--have`: one distribution name per line, `#` comments; a `pip
   freeze` listing works too) and minus the project itself, which travels as source.

It then downloads each remaining one, with `--no-deps`, as a wheel for the target's Python and platform, and `--dest`
(default `.whl/`, which git ignores) is replaced by a folder of exactly those wheels. On the GPU machine,
`scripts/gpu_cells.sh` runs `device_wheels.py --install SITE`, which installs the carried wheels whose distribution is
missing there, and then runs the cells.

    python scripts/device_wheels.py --list          # the distributions and their versions; nothing downloaded
    python scripts/device_wheels.py                 # -> .whl/*.whl, and the total size
"""
import argparse, ast, json, os, re, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
import run_cells as rc

HAVE = Path(__file__).with_name('device_image.txt')
CELLS = Path(__file__).with_name('gpu_cells.txt')
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64',
             'manylinux1_x86_64')
_SCRIPT = re.compile(r"scripts/(\w+\.py)")


def norm(name: str) -> str:
    "A distribution name as PEP 503 compares them: lower case, runs of `-`, `_` and `.` as one `-`."
    return re.sub(r'[-_.]+', '-', name).lower()


def wheel_dist(path) -> str:
    "The normalised distribution name of a wheel file: the part of its name before the first `-`."
    return norm(Path(path).name.split('-')[0])


def install_missing(wheels, site) -> list:
    """Install into `site` (pip `--target`, no index, no dependencies) those of `wheels` whose distribution this Python
    does not have; returns those it installed. This is the step `scripts/gpu_cells.sh` runs on the GPU machine."""
    from importlib.metadata import version, PackageNotFoundError
    def have(name):
        try: version(name); return True
        except PackageNotFoundError: return False
    missing = [str(w) for w in wheels if not have(wheel_dist(w))]
    print(f'{len(wheels) - len(missing)} of {len(wheels)} carried wheels already installed; installing {len(missing)} into {site}')
    if missing:
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--no-compile',
                        '--no-cache-dir', '--upgrade', '--target', str(site), *missing], check=True)
    return missing


def read_have(path) -> set:
    "Normalised distribution names from a file of one name per line (`name==version` and `#` comments allowed)."
    path = Path(path)
    try: text = path.read_text()
    except OSError as e: raise SystemExit(f'error: {path}: cannot read the list of installed distributions ({e})')
    names = set()
    for i, line in enumerate(text.splitlines(), 1):
        line = line.split('#')[0].strip()
        if not line: continue
        m = re.match(r'^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:[=<>!~@ ].*)?$', line)
        if not m: raise SystemExit(f'error: {path}, line {i}: not a distribution name: {line!r}')
        names.add(norm(m.group(1)))
    return names


def import_lines(src: str) -> list:
    "The top-level-module import statements of `src` (Python or a notebook cell), as source lines; relative ones left out."
    out = []
    for n in ast.walk(rc._parse(src, 'source')):
        if isinstance(n, ast.Import): out += [f'import {a.name}' for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module: out.append(f'import {n.module}')
    return out


def cell_imports(cells) -> list:
    "Sorted import statements that the cells `cells` ([(notebook, id)]) run: their set-up, the scripts they name, run_cells."
    lines, scripts = set(), {'run_cells.py'}
    for p, cid in cells:
        pl = rc.plan_cell(p, rc.load_nb(p), cid)
        for _, s in pl['setup'] + [(cid, pl['src'])]:
            lines.update(import_lines(s)); scripts.update(_SCRIPT.findall(s))
    for s in scripts: lines.update(import_lines((ROOT / 'scripts' / s).read_text()))
    return sorted(lines)


_PROBE = r'''
import json, sys, importlib.metadata as md
failed = {}
for line in json.loads(sys.argv[1]):
    try: exec(line, {})
    except Exception as e: failed[line] = f'{type(e).__name__}: {e}'
from execnb.shell import CaptureShell            # what running cells loads: inline figures, rich tables, tracebacks
sh = CaptureShell()
for cell in ('import matplotlib.pyplot as plt, pandas as pd\nplt.plot([0, 1]); pd.DataFrame(dict(a=[1]))', '1 / 0'): sh.run(cell)
top = {m.split('.')[0] for m in list(sys.modules)}
dists = {d for m in top for d in md.packages_distributions().get(m, [])}
print(json.dumps(dict(dists={d: md.version(d) for d in dists}, failed=failed)))
'''


def imported_distributions(lines, python=sys.executable) -> dict:
    "{distribution: version} that running the import `lines` loads, in a fresh process of `python` (this project's)."
    r = subprocess.run([python, '-c', _PROBE, json.dumps(lines)], capture_output=True, text=True, cwd=ROOT / 'nbs')
    if r.returncode: raise SystemExit(f'error: importing what the cells import failed:\n{r.stderr[-2000:]}')
    res = json.loads(r.stdout.strip().splitlines()[-1])
    if res['failed']: raise SystemExit('error: these imports fail here, so their needs are unknown: '
                                       + '; '.join(f'{k} ({v})' for k, v in res['failed'].items()))
    return res['dists']


def needed(dists: dict, have: set, project='aufacial') -> dict:
    "The distributions of `dists` ({name: version}) that the target lacks: not in `have`, and not the project itself."
    return {d: v for d, v in sorted(dists.items(), key=lambda kv: norm(kv[0])) if norm(d) not in have | {norm(project)}}


def download(reqs: dict, dest, python_version='3.12', platforms=PLATFORMS) -> list:
    """Download `reqs` ({name: version}) as wheels for `python_version` and `platforms`; `dest` then holds those wheels
    and nothing else (they go to a new folder beside it that replaces it once all arrived). The paths, largest first."""
    dest = Path(dest); dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f'.{dest.name}.'))
    try:
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--python-version',
               python_version, '--implementation', 'cp', '-d', str(tmp)] + [f'--platform={p}' for p in platforms]
        r = subprocess.run(cmd + [f'{d}=={v}' for d, v in reqs.items()], capture_output=True, text=True)
        if r.returncode: raise SystemExit(f'error: pip download failed:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}')
        missing = {norm(d) for d in reqs} - {wheel_dist(p) for p in tmp.glob('*.whl')}
        if missing: raise SystemExit(f'error: pip download gave no wheel for {", ".join(sorted(missing))}')
        if dest.exists(): shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally: shutil.rmtree(tmp, ignore_errors=True)
    return sorted(dest.glob('*.whl'), key=lambda p: -p.stat().st_size)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cells', default=str(CELLS), help=f'the cells to run there (default {CELLS.relative_to(ROOT)})')
    ap.add_argument('--have', default=str(HAVE), help=f'distributions the target holds (default {HAVE.relative_to(ROOT)})')
    ap.add_argument('--dest', default=str(ROOT / '.whl'), help='folder for the wheels (default .whl/)')
    ap.add_argument('--python-version', default='3.12', help="the target's Python (default 3.12)")
    ap.add_argument('--list', action='store_true', help='print what would be downloaded, download nothing')
    ap.add_argument('--install', metavar='SITE', help="on the target: install the wheels of --dest it lacks into SITE")
    a = ap.parse_args(argv)
    if a.install:
        wheels = sorted(Path(a.dest).glob('*.whl'))
        if not wheels: raise SystemExit(f'error: no wheels in {a.dest}: run this script without --install first, and carry them')
        install_missing(wheels, a.install); return 0
    try: cells = rc.read_cell_list(a.cells)
    except rc.NotebookError as e: raise SystemExit(f'error: {e}')
    reqs = needed(imported_distributions(cell_imports(cells)), read_have(a.have))
    for d, v in reqs.items(): print(f'{d}=={v}')
    if a.list: return 0
    got = download(reqs, a.dest, a.python_version)
    size = sum(p.stat().st_size for p in got)
    print(f'{len(got)} wheels, {size / 2**20:.1f} MiB in {a.dest}; largest: '
          + ', '.join(f'{p.name} ({p.stat().st_size / 2**20:.1f} MiB)' for p in got[:3]))
    return 0


if __name__ == '__main__': sys.exit(main())
