#!/usr/bin/env python
"""Execute the notebooks in a real Jupyter kernel and write their outputs (figures, tables, printed values, widget
state) into them, so that they read with results in the docs and on GitHub; or `--check` them.

Usage: python .ci/execute_nbs.py [NOTEBOOK ...] [--small] [--timeout S]   # default: every numbered notebook in nbs/
       python .ci/execute_nbs.py --check [NOTEBOOK ...]                   # CI: outputs present, no errors, size
       python .ci/execute_nbs.py --finish-bars [NOTEBOOK ...]             # only rewrite committed progress bars
Needs `ipykernel` (pip install ipykernel). Runs the full configuration unless --small (IN_TEST=1).
Every notebook is committed with its outputs: the library notebooks (00-15a) and the tutorials (20-24). The check
takes a subset (the notebooks given) and, without names, every numbered notebook. Size caps: 2 MB for the tutorials
and the figure/widget notebooks (10_visual, 11_widgets), 1 MB for the other library notebooks (figures at modest dpi,
short printed examples).
In the library notebooks (those with `#| default_exp`) cells flagged `#| download` are not run (they need the internet
and fetch the full archives; the tests skip them too, and the offline examples beside them show the same helpers at
work), nor cells flagged `#| gpu` on a machine without CUDA; they are committed without outputs. The tutorials run
every cell (their download cells say what failed and fall back when offline). Warnings are shown as
"UserWarning: message", without the file path and source line of the machine that ran the notebook.
Progress bars (tqdm widgets) are committed as the text of their last state (GitHub shows a widget as the text of its
first frame, "0%"); bars that hid themselves when done (leave=False) are dropped, as a live front end drops them."""
from __future__ import annotations
import argparse, html, json, os, re, subprocess, sys, time
from pathlib import Path

repo = Path(__file__).resolve().parent.parent
DEFAULT = sorted(p.name for p in (repo/'nbs').glob('[0-9]*.ipynb'))   # every numbered notebook: library and tutorials
MAX_BYTES = 2_000_000       # tutorials (20-24) and the figure/widget notebooks
FIGURES = {'10_visual.ipynb', '11_widgets.ipynb'}
LIB_MAX_BYTES = 1_000_000   # the other library notebooks
BARS_FAIL = True    # frozen progress-bar widgets in a committed notebook fail the check (every notebook now commits them as text)
VIEW, STATE = 'application/vnd.jupyter.widget-view+json', 'application/vnd.jupyter.widget-state+json'

def _models(nb)->dict:
    "The stored widget models of `nb` (model id -> model), empty when none are stored."
    return nb.get('metadata', {}).get('widgets', {}).get(STATE, {}).get('state', {})

def _bar_parts(models:dict, mid:str):
    "(HBox state, [left text, progress, right text] states) when model `mid` is a tqdm bar, else None."
    m = models.get(mid)
    if not m or m.get('model_name') != 'HBoxModel': return None
    kids = [models.get(str(c).removeprefix('IPY_MODEL_'), {}) for c in m['state'].get('children', [])]
    if [k.get('model_name') for k in kids] != ['HTMLModel', 'FloatProgressModel', 'HTMLModel']: return None
    return m['state'], [k['state'] for k in kids]

def bar_text(models:dict, mid:str)->str|None:
    "The line a terminal would show for the tqdm bar `mid` at its last state; None when it hid itself (leave=False)."
    box, (left, prog, right) = _bar_parts(models, mid)
    if models.get(str(box.get('layout', '')).removeprefix('IPY_MODEL_'), {}).get('state', {}).get('visibility') == 'hidden': return None
    txt = lambda v: html.unescape(v or '').replace('\u2007', ' ')
    frac = min(max(float(prog.get('value') or 0) / float(prog.get('max') or 1), 0.), 1.)
    bar = '█' * int(frac * 10) + ' ' * (10 - int(frac * 10))
    return f"{txt(left.get('value'))}|{bar}|{txt(right.get('value'))}" + (' (stopped)' if prog.get('bar_style') == 'danger' else '')

def _refs(x, out:set):
    "Collect the model ids `x` refers to ('IPY_MODEL_<id>' strings and widget-view `model_id`s, at any depth)."
    if isinstance(x, str):
        if x.startswith('IPY_MODEL_'): out.add(x[len('IPY_MODEL_'):])
    elif isinstance(x, dict):
        if isinstance(x.get('model_id'), str): out.add(x['model_id'])
        for v in x.values(): _refs(v, out)
    elif isinstance(x, list):
        for v in x: _refs(v, out)

def _node(d:dict):
    "`d` as an nbformat node when nbformat is there (a notebook read by nbformat holds nodes), else as is."
    try: from nbformat import from_dict
    except ImportError: return d
    return from_dict(d)

def finish_bars(nb)->int:
    "Replace every tqdm bar widget output of `nb` by the text of its last state (or drop it); drop unused models. Returns how many."
    models, n = _models(nb), 0
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        outs = []
        for o in c.get('outputs', []):
            mid = o.get('data', {}).get(VIEW, {}).get('model_id') if o.get('output_type') == 'display_data' else None
            if mid is None or _bar_parts(models, mid) is None: outs.append(o); continue
            n += 1
            if (t := bar_text(models, mid)) is not None: outs.append(_node({'output_type': 'stream', 'name': 'stdout', 'text': t + '\n'}))
        merged = []   # adjacent stdout streams as one, as a front end shows them
        for o in outs:
            if merged and o.get('output_type') == 'stream' and merged[-1].get('output_type') == 'stream' and merged[-1]['name'] == o['name']:
                merged[-1]['text'] = ''.join(merged[-1]['text']) + ''.join(o['text'])
            else: merged.append(o)
        c['outputs'] = merged
    if models:   # keep only the models a remaining output can reach
        keep, todo = set(), set()
        for c in nb['cells']:
            for o in c.get('outputs', []): _refs(o.get('data', {}).get(VIEW, {}), todo)
        while todo:
            mid = todo.pop()
            if mid in keep or mid not in models: continue
            keep.add(mid); _refs(models[mid].get('state', {}), todo)
        for mid in [m for m in models if m not in keep]: del models[mid]
        if not models: nb['metadata']['widgets'].pop(STATE, None)
        if not nb['metadata'].get('widgets'): nb['metadata'].pop('widgets', None)
    return n

def frozen_bars(nb)->list[int]:
    "Indices (among the code cells) of cells that commit a tqdm bar widget (GitHub shows its first frame)."
    models, code = _models(nb), [c for c in nb['cells'] if c['cell_type'] == 'code' and c['source']]
    return [i for i, c in enumerate(code) if any(o.get('output_type') == 'display_data' and VIEW in o.get('data', {})
                                                 and _bar_parts(models, o['data'][VIEW].get('model_id')) for o in c.get('outputs', []))]

def is_library(nb)->bool:
    "Whether `nb` is a library notebook (exports a module: a `#| default_exp` cell), not a tutorial."
    return any(c['cell_type'] == 'code' and re.search(r'^#\|\s*default_exp\b', ''.join(c['source']), re.M) for c in nb['cells'])

def max_bytes(path:Path, nb)->int:
    "The size cap of `path`: MAX_BYTES for the tutorials and figure/widget notebooks, LIB_MAX_BYTES for the others."
    return MAX_BYTES if path.name in FIGURES or not is_library(nb) else LIB_MAX_BYTES

def cell_flags(src:str)->set[str]:
    "The directive names of the leading `#|` lines of a cell (`#| download`, `#| gpu`; not their arguments), as nbdev reads them."
    out = set()
    for line in src.splitlines():
        if not line.strip(): continue
        if not (m := re.match(r'\s*#\|\s*(\S*)', line)): break
        if m.group(1): out.add(m.group(1).split(':')[0])
    return out

def skip_flags()->set[str]:
    "Flags whose cells a library notebook does not run here: `download` always, `gpu` without CUDA."
    try: import torch; cuda = torch.cuda.is_available()
    except ImportError: cuda = False
    return {'download'} | (set() if cuda else {'gpu'})

def problems(path:Path)->list[str]:
    "What is wrong with the committed outputs of `path`: errors, missing outputs, size."
    nb, out = json.loads(path.read_text()), []
    code = [c for c in nb['cells'] if c['cell_type'] == 'code' and c['source']]
    for i, c in enumerate(code):
        for o in c.get('outputs', []):
            if o['output_type'] == 'error': out.append(f"{path.name}: code cell {i} has an error output: {o.get('ename')}: {o.get('evalue')}")
            if o['output_type'] == 'stream' and 'Traceback (most recent call last)' in ''.join(o.get('text', '')):
                out.append(f"{path.name}: code cell {i} prints a traceback")
    if not any(c.get('outputs') for c in code): out.append(f"{path.name}: no outputs committed (run python .ci/execute_nbs.py {path.name})")
    if nb['metadata'].get('kernelspec', {}).get('name') != 'python3':   # without it JupyterLab opens a 'Select Kernel' dialog
        out.append(f"{path.name}: no python3 kernelspec in its metadata (JupyterLab would ask the user to select a kernel)")
    if bars := frozen_bars(nb):
        msg = f"{path.name}: code cells {bars} commit progress-bar widgets (GitHub shows '0%'): run python .ci/execute_nbs.py --finish-bars {path.name}"
        if BARS_FAIL: out.append(msg)
        else: print('WARN', msg)
    if path.stat().st_size > (cap := max_bytes(path, nb)): out.append(f"{path.name}: {path.stat().st_size/1e6:.2f} MB, expected under {cap/1e6:.0f} MB")
    return out

# warnings as "UserWarning: message", without the file and source line of the warning (a path of the machine that ran it)
PREAMBLE = "import warnings\nwarnings.formatwarning = lambda msg, cat, *a, **k: f'{cat.__name__}: {msg}\\n'"

def execute(path:Path, small:bool, timeout:int)->float:
    "Run `path` top to bottom in a fresh kernel (cwd nbs/) and write it back with its outputs, cleaned by nbdev_clean."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    if small: env['IN_TEST'] = '1'
    env.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    skip, SKIP = [], 'skip-execution'   # nbclient does not run cells with this tag
    flagged = [c for c in nb.cells if c.cell_type == 'code' and cell_flags(c.source) & {'download', 'gpu'}] if is_library(nb) else []
    flags = skip_flags() if flagged else set()
    for c in flagged:
        if cell_flags(c.source) & flags: c.metadata.setdefault('tags', []).append(SKIP); c.outputs = []; skip.append(c)
    pre = nbformat.v4.new_code_cell(PREAMBLE); nb.cells.insert(0, pre)   # run first, taken out again
    t0 = time.time()
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}},
                            store_widget_state=True, allow_errors=False)
    try: client.execute(env=env)
    finally:
        nb.cells.remove(pre)
        for c in skip:
            c.metadata.tags.remove(SKIP)
            if not c.metadata.tags: del c.metadata['tags']
    if skip: print(f'{path.name}: {len(skip)} cells not run (flagged {" or ".join(sorted(flags))})', flush=True)
    finish_bars(nb)
    nbformat.write(nb, path)
    subprocess.run(['nbdev_clean', '--fname', str(path)], check=True, cwd=repo)
    return time.time() - t0

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('paths', nargs='*', help=f'notebooks in nbs/ (default: {" ".join(DEFAULT)})')
    p.add_argument('--check', action='store_true', help='only check the committed outputs')
    p.add_argument('--finish-bars', action='store_true', help='only rewrite the committed progress bars as text (no kernel)')
    p.add_argument('--small', action='store_true', help='the small IN_TEST configuration (not for committing)')
    p.add_argument('--timeout', type=int, default=1800, help='seconds per cell')
    a = p.parse_args()
    files = [repo/'nbs'/Path(n).name for n in (a.paths or DEFAULT)]
    if missing := [f.name for f in files if not f.is_file()]: sys.exit(f"no such notebook in nbs/: {', '.join(missing)}")
    n_ok = n_fail = 0
    for f in files:
        if a.finish_bars:
            nb = json.loads(f.read_text()); n = finish_bars(nb)
            if n:
                f.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
                subprocess.run(['nbdev_clean', '--fname', str(f)], check=True, cwd=repo)
            print(f'{f.name}: {n} progress bars rewritten as text')
            continue
        if not a.check:
            try: print(f'executed {f.name} in {execute(f, a.small, a.timeout):.0f} s', flush=True)
            except Exception as e: print(f'FAIL {f.name}: {type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ""}'); n_fail += 1; continue
        bad = problems(f)
        for b in bad: print('FAIL', b)
        if bad: n_fail += 1
        else: n_ok += 1; print(f'PASS {f.name} ({f.stat().st_size/1e6:.2f} MB)')
    print(f'{n_ok} passed, {n_fail} failed')
    sys.exit(1 if n_fail else 0)

if __name__ == '__main__': main()
