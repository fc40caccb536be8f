#!/usr/bin/env python
"""Run all of 21_benchmark_colab against a fake MVTec AD server on 127.0.0.1, with no internet: the notebook's own
download cell (the cells marked `#| download` run too) must fall through a first mirror that answers 404, fetch and
check the archive from the second, extract it, and the notebook must finish with MVTec-layout rows (bottle and grid,
no error rows), a heatmap, the explorer built and drawn, and no 'OFFLINE FALLBACK' line.

The archive is `mvtec_anomaly_detection.tar.xz` in the real layout (category folders at the top, license.txt and
readme.txt beside them), made from the package's synthetic generator with two categories renamed into MVTec's names
(hexnut -> bottle, weave -> grid), small images. The notebook is run on a copy, in a temporary folder (its data and
results go there), with IN_TEST=1 and RECONPATCH_DATA_URL / RECONPATCH_DATA_SHA256 pointing at the server; one cell
is inserted after the settings, `PRETRAINED = False` (ImageNet weights cannot be downloaded offline), and one check cell
is appended that reports the rows and the explorer's state as JSON.

Usage: python .ci/fake_mvtec_server.py [--keep DIR] [--timeout S] [--total-timeout S]  # prints PASS/FAIL lines, `N passed, N failed`
       python .ci/fake_mvtec_server.py --serve [--keep DIR]            # only build and serve (Ctrl-C stops), to try by hand
Needs nbclient + ipykernel (the dev install has them). About 2-4 minutes on 2 CPU cores."""
from __future__ import annotations
import argparse, hashlib, http.server, json, os, shutil, sys, tarfile, tempfile, threading, time, uuid
from pathlib import Path

repo = Path(__file__).resolve().parent.parent
NOTEBOOK = repo/'nbs'/'21_benchmark_colab.ipynb'
ARCHIVE = 'mvtec_anomaly_detection.tar.xz'
RENAME = {'hexnut': 'bottle', 'weave': 'grid'}   # synthetic category -> the MVTec category it plays
T0 = time.time()
def log(*a): print(f'[{time.time() - T0:6.1f} s]', *a, flush=True)

def build_archive(work:Path)->tuple[Path, str]:
    "Write the fake `mvtec_anomaly_detection.tar.xz` under `work`; return its path and SHA-256."
    from reconpatch_nb.synthetic import make_synthetic_dataset
    src = make_synthetic_dataset(work/'synthetic', categories=list(RENAME), n_train=16, n_test_good=6, n_test_defect=2,
                                 size=128, progress=False)
    top = work/'mvtec_anomaly_detection'; top.mkdir()
    for s, d in RENAME.items(): shutil.copytree(src/s, top/d)
    (top/'license.txt').write_text('Fake MVTec AD for CI: synthetic images from reconpatch_nb.synthetic, not MVTec data.\n')
    (top/'readme.txt').write_text('Categories: ' + ', '.join(RENAME.values()) + ' (renamed synthetic categories).\n')
    path = work/'www'/ARCHIVE; path.parent.mkdir()
    with tarfile.open(path, 'w:xz') as tar:
        for p in sorted(top.iterdir()): tar.add(p, arcname=p.name)   # as MVTec's: the category folders at the top
    return path, hashlib.sha256(path.read_bytes()).hexdigest()

def serve(archive:Path):
    "Serve `archive` at /mirror/<name> (with Range) and 404 at /gone/<name>, on 127.0.0.1; return (server, base URL, request log)."
    requests, data = [], archive.read_bytes()
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self): self._answer(body=False)
        def do_GET(self): self._answer(body=True)
        def _answer(self, body:bool):
            if self.path != f'/mirror/{archive.name}':
                requests.append((self.command, self.path, 404)); self.send_error(404, 'Not Found'); return
            start, code = 0, 200
            rng = self.headers.get('Range', '')
            if rng.startswith('bytes=') and rng[6:].split('-')[0].isdigit() and int(rng[6:].split('-')[0]) < len(data):
                start, code = int(rng[6:].split('-')[0]), 206
            requests.append((self.command, self.path, code))
            self.send_response(code)
            self.send_header('Content-Type', 'application/x-xz')
            self.send_header('Content-Length', str(len(data) - start))
            self.send_header('Accept-Ranges', 'bytes')
            if code == 206: self.send_header('Content-Range', f'bytes {start}-{len(data) - 1}/{len(data)}')
            self.end_headers()
            if body: self.wfile.write(data[start:])
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f'http://127.0.0.1:{srv.server_address[1]}', requests

CHECK = '''# CI check (appended by .ci/fake_mvtec_server.py): what the run produced, as one JSON line
import json as _json
_t0, _s0 = explorer.threshold, explorer.stats.value
explorer.w_threshold.value = float(explorer.result.scores.min())   # through the widget, as a user would
print('CI-RESULT ' + _json.dumps(dict(
    dataset=DATASET, categories=list(CATEGORIES), data_root=str(DATA_ROOT.resolve()),
    rows=[{k: r.get(k) for k in ('category', 'method', 'image_auroc', 'pixel_auroc', 'error')} for r in rows],
    explorer=type(explorer).__name__, explorer_categories=list(explorer.categories), n_draws=explorer.n_draws,
    png=explorer.png is not None, slider_moves_counts=explorer.stats.value != _s0)))
'''

def notebook_copy(work:Path):
    "21_benchmark_colab with `PRETRAINED = False` after the settings and the check cell at the end."
    import nbformat
    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if c.cell_type == 'code' and c.source.lstrip().startswith('DATASET ='))
    pre = nbformat.v4.new_code_cell('# CI (fake MVTec server): ImageNet weights cannot be downloaded offline\nPRETRAINED = False')
    chk = nbformat.v4.new_code_cell(CHECK)
    for c in (pre, chk): c.id = uuid.uuid4().hex[:8]
    nb.cells.insert(at + 1, pre); nb.cells.append(chk)
    return nb

def outputs_text(cell)->str:
    "Everything a cell printed or displayed as text."
    out = []
    for o in cell.get('outputs', []):
        if o.output_type == 'stream': out.append(''.join(o.text))
        elif o.output_type in ('display_data', 'execute_result'): out.append(''.join(o.data.get('text/plain', '')))
        elif o.output_type == 'error': out.append(f'{o.ename}: {o.evalue}')
    return '\n'.join(out)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--keep', help='work in this folder and keep it (the executed copy is 21_fake_mvtec.ipynb there)')
    p.add_argument('--timeout', type=int, default=600, help='seconds per cell')
    p.add_argument('--total-timeout', type=int, default=1800, help='seconds for the whole notebook (then FAIL, never a hang)')
    p.add_argument('--serve', action='store_true', help='only build the archive and serve it until interrupted')
    a = p.parse_args()
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix='fake_mvtec_'))
    if a.keep and work.exists() and any(work.iterdir()): sys.exit(f'--keep {work}: not empty')
    work.mkdir(parents=True, exist_ok=True)
    try:
        archive, sha = build_archive(work)
        srv, base, requests = serve(archive)
        urls = [f'{base}/gone/{ARCHIVE}', f'{base}/mirror/{ARCHIVE}']
        log(f'{archive.name}: {archive.stat().st_size / 1e6:.2f} MB, sha256 {sha}; serving {" ".join(urls)}')
        if a.serve:
            print(f'RECONPATCH_DATA_URL="{" ".join(urls)}" RECONPATCH_DATA_SHA256={sha}')
            try:
                while True: time.sleep(3600)
            except KeyboardInterrupt: return
        return run_and_check(work, urls, sha, requests, a.timeout, a.total_timeout)
    finally:
        if not a.keep: shutil.rmtree(work, ignore_errors=True)

def run_and_check(work:Path, urls:list[str], sha:str, requests:list, timeout:int, total:int)->None:
    import nbformat
    from nbclient import NotebookClient
    nb = notebook_copy(work)
    env = {k: v for k, v in os.environ.items() if not k.startswith('RECONPATCH_DATA_')}
    env.update(IN_TEST='1', RECONPATCH_DATA_URL=' '.join(urls), RECONPATCH_DATA_SHA256=sha)
    env.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    # every cell runs, `#| download` ones included (nbclient knows no nbdev flags)
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(work)}},
                            allow_errors=True)
    log('running 21_benchmark_colab (a copy, every cell) ...')
    def execute():
        try: client.execute(env=env)
        except Exception as e: log(f'execution stopped: {type(e).__name__}: {e}')
    run = threading.Thread(target=execute, daemon=True); run.start(); run.join(total)
    if run.is_alive():   # never hang CI: a stuck kernel or client fails the check instead
        log(f'FAIL: the notebook did not finish within {total} s (--total-timeout); stopping its kernel')
        try: client.km.shutdown_kernel(now=True)
        except Exception as e: log(f'could not stop the kernel: {type(e).__name__}: {e}')
        print('0 passed, 1 failed'); os._exit(1)
    nbformat.write(nb, work/'21_fake_mvtec.ipynb')
    log('executed')
    code = [c for c in nb.cells if c.cell_type == 'code']
    text = '\n'.join(outputs_text(c) for c in code)
    results, bad = [], []
    def check(name:str, ok:bool, why:str=''):
        results.append(ok); print(('PASS ' if ok else 'FAIL ') + name + ('' if ok else f': {why}'), flush=True)

    errs = [(i, o.ename, o.evalue) for i, c in enumerate(code) for o in c.get('outputs', []) if o.output_type == 'error']
    check('every cell ran without an error', not errs, str(errs[:3]))
    dl = next((c for c in code if c.source.startswith('#| download')), None)
    check('the download cell ran', dl is not None and dl.get('execution_count') is not None, 'not found or not executed')
    served = [r for r in requests if r[0] == 'GET']
    check('first mirror answered 404, the second served the archive',
          [(r[1].split('/')[1], r[2]) for r in served][:2] == [('gone', 404), ('mirror', 200)], str(served))
    dl_text = outputs_text(dl) if dl is not None else ''
    check('the download cell names the failed link and its status, and what the next one installed',
          'link 1/2 failed' in dl_text and '404' in dl_text and "installed ['bottle', 'grid'] from link 2/2" in dl_text, dl_text[-600:])
    check("no 'FALLBACK' line", 'FALLBACK' not in text, [l for l in text.splitlines() if 'FALLBACK' in l][:2])
    line = next((l for l in text.splitlines() if l.startswith('CI-RESULT ')), None)
    r = json.loads(line[len('CI-RESULT '):]) if line else {}
    check('the check cell reported', bool(r), 'no CI-RESULT line')
    if r:
        root = Path(r['data_root'])
        check('MVTec AD extracted: bottle and grid in the MVTec layout, license.txt and readme.txt beside them',
              all((root/c/'train'/'good').is_dir() and (root/c/'ground_truth').is_dir() for c in RENAME.values())
              and (root/'license.txt').is_file() and (root/'readme.txt').is_file(), str(sorted(p.name for p in root.iterdir())))
        rows = [x for x in r['rows'] if x['category'] != 'mean']
        check("dataset 'mvtec', categories bottle and grid",
              r['dataset'] == 'mvtec' and r['categories'] == ['bottle', 'grid'], f"{r['dataset']} {r['categories']}")
        check('one row per category and method, none with an error, every AUROC computed',
              sorted((x['category'], x['method']) for x in rows) == sorted((c, m) for c in ('bottle', 'grid') for m in ('reconpatch', 'patchcore'))
              and all(x['error'] is None and x['image_auroc'] is not None and x['pixel_auroc'] is not None for x in rows), str(rows))
        check('the explorer is built over both categories, drawn, and its slider changes the counts',
              r['explorer'] == 'AnomalyExplorer' and r['explorer_categories'] == ['bottle', 'grid'] and r['n_draws'] >= 2
              and r['png'] and r['slider_moves_counts'], str({k: r[k] for k in ('explorer', 'explorer_categories', 'n_draws', 'png', 'slider_moves_counts')}))
    heat = next((c for c in code if 'show_prediction(' in c.source), None)
    check('a heatmap figure in the outputs', heat is not None and any('image/png' in o.get('data', {}) for o in heat.get('outputs', [])),
          'no show_prediction cell with an image')
    exp = next((c for c in code if c.source.rstrip().endswith('\nexplorer')), None)
    data = [o.get('data', {}) for o in (exp.get('outputs', []) if exp is not None else [])]
    check("the explorer's output: its widget view and a PNG of its first view",
          any('application/vnd.jupyter.widget-view+json' in d and 'image/png' in d for d in data), str([sorted(d) for d in data]))
    n_ok = sum(results); n_bad = len(results) - n_ok
    log(f'fake MVTec run all: {n_ok} passed, {n_bad} failed')
    print(f'{n_ok} passed, {n_bad} failed')
    sys.exit(1 if n_bad else 0)

if __name__ == '__main__': main()
