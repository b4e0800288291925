#!/usr/bin/env python3
"""Write README.md from nbs/index.ipynb without Quarto (which cannot be installed offline).

`nbdev-readme` renders the same notebook through Quarto; this keeps README.md in step with index.ipynb in
environments without it. Markdown cells are copied, code cells become fenced blocks (cells marked
`#| hide` are left out), text outputs follow their cell. The file is written atomically.
Usage: nb2readme.py nbs/index.ipynb README.md
"""
import json, os, sys, tempfile
from pathlib import Path

def render(nb):
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source']).rstrip()
        if not src: continue
        if c['cell_type'] == 'markdown': parts.append(src)
        elif c['cell_type'] == 'code':
            lines = src.splitlines()
            if any(l.strip().replace(' ', '') in ('#|hide', '#|exporthide') for l in lines): continue
            code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
            if code: parts.append(f'```python\n{code}\n```')
            for o in c.get('outputs', []):
                txt = ''.join(o.get('text', '') or o.get('data', {}).get('text/plain', '')).rstrip()
                if txt: parts.append(f'```\n{txt}\n```')
    return '<!-- generated from nbs/index.ipynb by scripts/nb2readme.py; edit the notebook, not this file -->\n\n' + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    src, dest = Path(sys.argv[1]), Path(sys.argv[2])
    text = render(json.loads(src.read_text(encoding='utf-8')))
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f'.{dest.name}.', suffix='.tmp')
    with os.fdopen(fd, 'w', encoding='utf-8') as f: f.write(text)
    os.replace(tmp, dest)
