#!/usr/bin/env bash
# Run the cuda cells listed in scripts/gpu_cells.txt on a GPU machine that has PyTorch but no package index, keeping
# each cell's outputs as it finishes (scripts/run_cells.py). Prepare here with `python scripts/device_wheels.py`
# (-> .whl/), carry .whl to the machine, and run this from the project root there:
#     BUDGET=540 OUT=/tmp/out bash scripts/gpu_cells.sh
# It installs (into $SITE, default /tmp/site) only the wheels of $WHEELS (default .whl) whose distribution is missing
# there, prints the machine, then runs the cells of $CELLS (default scripts/gpu_cells.txt) within $BUDGET seconds
# (default 540), copying each notebook to $OUT (default /tmp/gpu_cells) after each cell that finishes.
# Back here: python scripts/run_cells.py --transplant $OUT/*.ipynb, then nbdev-clean.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}; SITE=${SITE:-/tmp/site}; BUDGET=${BUDGET:-540}; OUT=${OUT:-/tmp/gpu_cells}
WHEELS=${WHEELS:-.whl}; CELLS=${CELLS:-scripts/gpu_cells.txt}
compgen -G "$WHEELS/*.whl" >/dev/null || { echo "error: no wheels in $WHEELS/: run scripts/device_wheels.py first and carry $WHEELS"; exit 2; }
"$PY" - "$SITE" "$WHEELS"/*.whl <<'PYEOF'
import sys, re, subprocess, importlib.metadata as md
site, wheels = sys.argv[1], sys.argv[2:]
def have(name):
    try: md.version(name); return True
    except md.PackageNotFoundError: return False
missing = [w for w in wheels if not have(re.sub(r'[-_.]+', '-', w.split('/')[-1].split('-')[0]).lower())]
print(f'{len(wheels) - len(missing)} of {len(wheels)} carried wheels already installed; installing {len(missing)} into {site}')
if missing:
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--no-compile',
                    '--no-cache-dir', '--upgrade', '--target', site, *missing], check=True)
PYEOF
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" - <<'PYEOF'
import torch, fastai, aufacial
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NO GPU'
print(f'torch {torch.__version__} (CUDA {torch.version.cuda}) on {gpu}; fastai {fastai.__version__}; aufacial {aufacial.__version__}')
PYEOF
"$PY" scripts/run_cells.py --cells "$CELLS" --budget "$BUDGET" --out "$OUT"
