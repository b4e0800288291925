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
"$PY" scripts/device_wheels.py --install "$SITE" --dest "$WHEELS"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" - <<'PYEOF'
import torch, fastai, aufacial
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NO GPU'
print(f'torch {torch.__version__} (CUDA {torch.version.cuda}) on {gpu}; fastai {fastai.__version__}; aufacial {aufacial.__version__}')
PYEOF
"$PY" scripts/run_cells.py --cells "$CELLS" --budget "$BUDGET" --out "$OUT"
