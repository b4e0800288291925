"""scripts/device_wheels.py: which wheels a GPU machine without a package index needs for the lease's cuda cells."""
import sys
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / 'scripts'))
import device_wheels as dw

def test_names_compare_as_pep503_says():
    assert dw.norm('PyYAML') == dw.norm('pyyaml') == 'pyyaml'
    assert dw.norm('stack_data') == dw.norm('Stack.Data') == dw.norm('stack--data') == 'stack-data'

def test_read_have(tmp_path):
    f = tmp_path / 'have.txt'
    f.write_text('# the image\ntorch\nPyYAML==6.0.4\nmatplotlib_inline >= 0.1  # comment\n\nnumpy @ file:///x.whl\n')
    assert dw.read_have(f) == {'torch', 'pyyaml', 'matplotlib-inline', 'numpy'}
    f.write_text('torch\n!!! not a name\n')
    with pytest.raises(SystemExit, match=r"have.txt, line 2: not a distribution name: '!!! not a name'"): dw.read_have(f)
    with pytest.raises(SystemExit, match='nope.txt: cannot read'): dw.read_have(tmp_path / 'nope.txt')
    assert {'torch', 'numpy', 'pandas', 'timm'} <= dw.read_have(dw.HAVE)          # the image list that ships

def test_needed_drops_what_the_target_has_and_the_project():
    dists = {'fastai': '2.8.12', 'PyYAML': '6.0.4', 'aufacial': '0.0.1', 'stack_data': '0.6.3', 'torch': '2.14.1'}
    assert dw.needed(dists, {'pyyaml', 'torch'}) == {'fastai': '2.8.12', 'stack_data': '0.6.3'}
    assert list(dw.needed(dists, set())) == ['fastai', 'PyYAML', 'stack_data', 'torch']     # sorted, the project left out

def test_import_lines():
    src = 'import os, torch.nn as nn\nfrom .core import x\nfrom fastai.learner import Learner\ndef f():\n    import av\n%time y = 1'
    assert dw.import_lines(src) == ['import os', 'import torch.nn', 'import fastai.learner', 'import av']

def test_the_lease_cells_imports():
    "What the listed cells import includes what runs them (execnb) and the library modules their set-up star-imports."
    lines = dw.cell_imports(dw.rc.read_cell_list(dw.CELLS))
    assert {'import execnb.shell', 'import aufacial.evaluation', 'import aufacial.sparse'} <= set(lines), lines
    assert lines == sorted(set(lines))

def test_install_skips_what_the_python_has(tmp_path):
    assert dw.wheel_dist('x/Stack_Data-0.6.3-py3-none-any.whl') == 'stack-data'
    have = [tmp_path / 'pytest-8.0.0-py3-none-any.whl', tmp_path / 'PyYAML-6.0-cp312-cp312-manylinux_2_17_x86_64.whl']
    assert dw.install_missing(have, tmp_path / 'site') == []               # both installed here: pip is not called
    assert not (tmp_path / 'site').exists()
