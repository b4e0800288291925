import os, sys, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / 'shared'

@pytest.fixture(scope='session')
def root(): return ROOT

@pytest.fixture(scope='session')
def real_faces():
    "The maintainers' real face media (../shared/data/real_faces); tests using it skip with a message when absent."
    p = SHARED / 'data' / 'real_faces'
    if not p.exists(): pytest.skip(f'{p} is absent (a fresh clone has no ../shared): real-media test skipped')
    return p

def run_py(*args, python=sys.executable, env=None, timeout=600, cwd=None):
    "Run `python args...` and return the completed process (text mode)."
    e = {**os.environ, **(env or {})}
    return subprocess.run([str(python), *args], capture_output=True, text=True, timeout=timeout, env=e, cwd=cwd)
