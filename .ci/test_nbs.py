#!/usr/bin/env python
"""Run every notebook in nbs/ as a test (as `nbdev_test` does: cells flagged with settings.ini's
`tst_flags` are skipped) and print one line per notebook and a closing `N passed, N failed` line.

Usage: python .ci/test_nbs.py [NOTEBOOK_OR_GLOB ...] [--workers N] [--flags "download gpu"]"""
import argparse, multiprocessing as mp, os, sys, time
import json
from pathlib import Path

os.environ['IN_TEST'] = '1'
os.environ.setdefault('MPLBACKEND', 'agg')
repo = Path(__file__).resolve().parent.parent

def _one(fn, skip, force, threads):
    import torch
    torch.set_num_threads(threads)  # 2 workers x 2 threads on 2 cores is many times slower than 2 x 1
    from nbdev.test import test_nb
    os.chdir(repo/'nbs')
    t0 = time.time()
    try: ok, _ = test_nb(fn, skip_flags=skip, force_flags=force, basepath=repo)
    except Exception as e: ok = False; print(f'{fn.name}: {type(e).__name__}: {e}', file=sys.stderr)
    return ok, time.time() - t0

def _run(args): return _one(*args)

TIMES = repo/'.ci'/'test_times.json'   # seconds per notebook of the last `--record` run: the schedule's order

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('paths', nargs='*', help='notebooks or globs relative to nbs/ (default: all)')
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--flags', default='', help='test flags to run although settings.ini skips them')
    p.add_argument('--record', action='store_true', help=f'write the run times to {TIMES.name} (the order of later runs)')
    a = p.parse_args()
    from nbdev.config import get_config
    skip = get_config(path=repo).tst_flags.split()
    force = a.flags.split()
    pats = a.paths or ['*.ipynb']
    files = sorted({f.resolve() for pat in pats for f in (repo/'nbs').glob(Path(pat).name)
                    if not f.name.startswith(('_', '.'))})
    if not files: sys.exit(f'no notebooks match {pats}')
    # longest first keeps both workers busy until the end: by the run times recorded in TIMES (size where none yet)
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    files.sort(key=lambda f: (-times.get(f.name, -1), -f.stat().st_size))
    t0, results = time.time(), {}
    threads = max(1, (os.cpu_count() or 1) // a.workers)
    os.environ['OMP_NUM_THREADS'] = str(threads)
    # a fresh process per notebook (maxtasksperchild=1, any Python >= 3.9): running a notebook replaces __main__,
    # and state must not leak between notebooks
    with mp.get_context('spawn').Pool(a.workers, maxtasksperchild=1) as pool:
        for f, (ok, secs) in zip(files, pool.imap(_run, [(f, skip, force, threads) for f in files])):
            results[f] = ok; times[f.name] = round(secs, 1)
            print(f"{'PASS' if ok else 'FAIL'} {f.name} ({secs:.0f} s)", flush=True)
    if a.record: TIMES.write_text(json.dumps(dict(sorted(times.items())), indent=1) + '\n')
    n_ok = sum(results.values()); n_fail = len(results) - n_ok
    print(f'total {time.time() - t0:.0f} s')
    print(f'{n_ok} passed, {n_fail} failed')
    sys.exit(1 if n_fail else 0)

if __name__ == '__main__': main()
