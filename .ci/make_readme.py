#!/usr/bin/env python
"""Write README.md from nbs/index.ipynb without Quarto: markdown cells as they are, code cells as
python blocks (with their text outputs), cells flagged `#| hide` left out, nbdev directives dropped.
`--check` exits 1 when README.md is not what index.ipynb gives."""
import json, sys
from pathlib import Path

repo = Path(__file__).resolve().parent.parent

def render(nb_path=repo/'nbs'/'index.ipynb'):
    nb = json.loads(Path(nb_path).read_text(encoding='utf-8'))
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        lines = src.splitlines()
        if c['cell_type'] == 'markdown': parts.append(src.strip()); continue
        if c['cell_type'] != 'code': continue
        directives = [l for l in lines if l.startswith('#|')]
        if any(d.replace(' ', '') in ('#|hide', '#|exec_doc:false') or 'hide' in d.split() for d in directives): continue
        code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if code: parts.append(f'```python\n{code}\n```')
        for o in c.get('outputs', []):
            text = ''.join(o.get('text', '') or o.get('data', {}).get('text/plain', ''))
            if text.strip(): parts.append('    ' + text.strip().replace('\n', '\n    '))
    return '<!-- generated from nbs/index.ipynb by .ci/make_readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(p for p in parts if p) + '\n'

if __name__ == '__main__':
    md = render(); out = repo/'README.md'
    if '--check' in sys.argv:
        if not out.exists() or out.read_text(encoding='utf-8') != md:
            sys.exit('README.md differs from nbs/index.ipynb: run `python .ci/make_readme.py`')
    else: out.write_text(md, encoding='utf-8'); print('wrote', out)
