#!/usr/bin/env python
"""Execute the tutorials and the figure/widget notebooks in a real Jupyter kernel and write their outputs
(figures, tables, widget state) into them, so that they read with results on GitHub; or `--check` them.

Usage: python .ci/execute_nbs.py [NOTEBOOK ...] [--small] [--timeout S]   # default: 10, 11, 20, 21, 22
       python .ci/execute_nbs.py --check [NOTEBOOK ...]                   # CI: outputs present, no errors, size
Needs `ipykernel` (pip install ipykernel). Runs the full configuration unless --small (IN_TEST=1)."""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

repo = Path(__file__).resolve().parent.parent
DEFAULT = ['10_visual.ipynb', '11_widgets.ipynb', '20_quickstart.ipynb', '21_benchmark_colab.ipynb', '22_own_images.ipynb']
MAX_BYTES = 2_000_000

def problems(path:Path)->list[str]:
    "What is wrong with the committed outputs of `path`: errors, missing outputs, size."
    nb, out = json.loads(path.read_text()), []
    code = [c for c in nb['cells'] if c['cell_type'] == 'code' and c['source']]
    for i, c in enumerate(code):
        for o in c.get('outputs', []):
            if o['output_type'] == 'error': out.append(f"{path.name}: code cell {i} has an error output: {o.get('ename')}: {o.get('evalue')}")
            if o['output_type'] == 'stream' and 'Traceback (most recent call last)' in ''.join(o.get('text', '')):
                out.append(f"{path.name}: code cell {i} prints a traceback")
    if not any(c.get('outputs') for c in code): out.append(f"{path.name}: no outputs committed (run python .ci/execute_nbs.py)")
    if path.stat().st_size > MAX_BYTES: out.append(f"{path.name}: {path.stat().st_size/1e6:.1f} MB, expected under {MAX_BYTES/1e6:.0f} MB")
    return out

def execute(path:Path, small:bool, timeout:int)->float:
    "Run `path` top to bottom in a fresh kernel (cwd nbs/) and write it back with its outputs, cleaned by nbdev_clean."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    if small: env['IN_TEST'] = '1'
    env.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    t0 = time.time()
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}},
                            store_widget_state=True, allow_errors=False)
    client.execute(env=env)
    nbformat.write(nb, path)
    subprocess.run(['nbdev_clean', '--fname', str(path)], check=True, cwd=repo)
    return time.time() - t0

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('paths', nargs='*', help=f'notebooks in nbs/ (default: {" ".join(DEFAULT)})')
    p.add_argument('--check', action='store_true', help='only check the committed outputs')
    p.add_argument('--small', action='store_true', help='the small IN_TEST configuration (not for committing)')
    p.add_argument('--timeout', type=int, default=1800, help='seconds per cell')
    a = p.parse_args()
    files = [repo/'nbs'/Path(n).name for n in (a.paths or DEFAULT)]
    if missing := [f.name for f in files if not f.is_file()]: sys.exit(f"no such notebook in nbs/: {', '.join(missing)}")
    n_ok = n_fail = 0
    for f in files:
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
