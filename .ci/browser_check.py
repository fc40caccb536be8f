#!/usr/bin/env python
"""Open notebooks (default: the quickstart and 11_widgets) in JupyterLab in headless Chromium, Run all (IN_TEST=1, or as a user
gets it with --full), and check what a
person would see: no error output, an image in every figure cell, every progress bar finished (tqdm's ipywidgets bars
drawn full, or their text fallback at 100%; not stuck at 0% or stopped) and, where a notebook builds an AnomalyExplorer,
the explorer as controls and the threshold slider changing the confusion counts and the mask. Prints PASS/FAIL lines and
`N passed, N failed`.

Needs jupyterlab + selenium (pip) and Debian's chromium + chromium-driver (apt); .ci/run installs them.
Usage: python .ci/browser_check.py [NOTEBOOK ...] [--full] [--break] [--screens DIR] [--ipywidgets VERSION]
  --break appends a cell whose figure renders as text and one whose progress bar stays at 0%: the check must then FAIL
    on both (a test of the check).
  --ipywidgets appends a cell that prints the kernel's ipywidgets version, which must be VERSION: one run per version
    (e.g. 7.7.1, Colab's, from `pip install --target DIR ipywidgets==7.7.1 ...` and PYTHONPATH=DIR; and 8.x)."""
import argparse, json, os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

repo = Path(__file__).resolve().parent.parent
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run', '--window-size=1280,2000']

def free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

T0 = time.time()
def log(*a): print(f'[{time.time() - T0:6.1f} s]', *a, flush=True)

def start_lab(root:Path, port:int, full:bool=False):
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    if not full: env['IN_TEST'] = '1'  # the kernel inherits it: the small configuration
    # Lab 4 renders only the cells near the viewport by default: render all, so every output can be inspected
    sdir = root/'lab-settings'/'@jupyterlab'/'notebook-extension'; sdir.mkdir(parents=True)
    (sdir/'tracker.jupyterlab-settings').write_text(json.dumps({'windowingMode': 'none'}))
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', f'--ServerApp.root_dir={root}',
           "--IdentityProvider.token=", "--ServerApp.password=", '--ServerApp.disable_check_xsrf=True', '--allow-root',
           f'--LabApp.user_settings_dir={root/"lab-settings"}', f'--LabApp.workspaces_dir={root/"lab-workspaces"}']
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(root/'lab.log', 'w'))
    for _ in range(120):
        try: urllib.request.urlopen(f'http://127.0.0.1:{port}/api/status', timeout=2); return p
        except Exception: time.sleep(1)
    p.kill(); sys.exit(f'JupyterLab did not start; see {root}/lab.log')

NB = '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook'   # the notebook in the current tab only
def stop_kernels(port:int):
    for k in json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/api/kernels')):
        urllib.request.urlopen(urllib.request.Request(f'http://127.0.0.1:{port}/api/kernels/{k["id"]}', method='DELETE'))

JS_CELLS = """return [...document.querySelectorAll('""" + NB + """ .jp-CodeCell')].map(c => ({
  src: c.querySelector('.jp-InputArea-editor').innerText,
  prompt: (c.querySelector('.jp-InputPrompt') || {innerText: ''}).innerText,
  out: c.querySelector('.jp-OutputArea').innerText,
  err: c.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').length,
  errs: [...c.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText).filter(t => t.includes('Traceback')).length,
  imgs: c.querySelectorAll('.jp-OutputArea img').length,
  sliders: c.querySelectorAll('.widget-slider').length, dropdowns: c.querySelectorAll('.widget-dropdown').length,
  bars: [...c.querySelectorAll('.jp-OutputArea .widget-hprogress, .jp-OutputArea .jupyter-widget-hprogress')]
    .filter((el, i, all) => all.indexOf(el) === i && getComputedStyle(el).visibility !== 'hidden')   // a bar that hid itself when done (leave=False) is not shown
    .map(el => { const b = el.querySelector('.progress-bar') || {style: {}, classList: {contains: () => false}};
                 const box = el.parentElement || el;
                 return {pct: parseFloat(b.style.width || b.style.height || '0'), danger: b.classList.contains('progress-bar-danger'),
                         text: box.innerText.replace(/\s+/g, ' ').trim()}; })}));"""

def run_all(d, url:str, timeout:int)->list:
    from selenium.webdriver.common.by import By
    d.get(url)
    t0 = time.time()
    while time.time() - t0 < 120:   # notebook open, kernel idle
        if d.find_elements(By.CSS_SELECTOR, NB + ' .jp-CodeCell') and d.find_elements(By.XPATH, "//*[contains(text(),'Idle')]"): break
        time.sleep(1)
    else: log('notebook/kernel not ready after 120 s; trying anyway')
    log(f'opened {url}: {len(d.find_elements(By.CSS_SELECTOR, NB + " .jp-CodeCell"))} code cells')
    d.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']").click()
    d.find_element(By.XPATH, "//div[contains(@class,'lm-Menu-itemLabel') and text()='Run All Cells']").click()
    log('Run All Cells clicked')
    time.sleep(3); last = -1
    while time.time() - t0 < timeout:
        cells = d.execute_script(JS_CELLS)
        todo = [i for i, c in enumerate(cells) if c['src'].strip() and (c['prompt'].strip() in ('', '[ ]:') or '*' in c['prompt'])]
        if not todo: log('all cells ran'); return cells
        if any(c['errs'] for c in cells): log('a cell shows a traceback: Run all stopped'); return cells
        if todo[0] != last or int(time.time() - t0) % 30 < 2:
            last = todo[0]; log(f'{len(cells) - len(todo)}/{len(cells)} cells done; waiting on cell {todo[0]}: {cells[todo[0]]["src"][:60]!r}')
        time.sleep(2)
    log(f'timed out after {timeout} s'); return d.execute_script(JS_CELLS)

def check_cells(name:str, cells:list)->list[str]:
    bad = []
    for i, c in enumerate(cells):
        if c['errs']: bad.append(f'{name}: cell {i} shows a traceback')
        figure_cell = 'visual.' in c['src'] and not c['src'].strip().startswith(('from', 'import', '#| export'))   # a definition draws nothing
        if figure_cell and not c['imgs']: bad.append(f"{name}: figure cell {i} shows no image (text: {c['out'][:80]!r})")
    return bad + check_bars(name, cells)

TEXT_BAR = re.compile(r'(\d{1,3})%\|')   # tqdm's text bar, 'desc: 40%|████      | 4/10 [...]', as the front end shows its last state
def check_bars(name:str, cells:list)->list[str]:
    "Every progress bar shown ended finished: a widget bar drawn full and not stopped (red), a text bar at 100%."
    bad = []
    for i, c in enumerate(cells):
        for b in c['bars']:
            if b['pct'] < 99.5 or b['danger']:
                bad.append(f"{name}: cell {i} shows a progress bar {'stopped' if b['danger'] else 'unfinished'} at {b['pct']:.0f}% ({b['text'][:80]!r})")
        for line in c['out'].splitlines():
            if (m := TEXT_BAR.search(line)) and int(m.group(1)) < 100:
                bad.append(f"{name}: cell {i} shows a text progress bar at {m.group(1)}% ({line.strip()[:80]!r})")
    return bad

def settled(d, cells:list, wait:float=20)->list:
    "The cells again once their progress bars are finished or `wait` seconds have passed (the last widget updates may trail the run)."
    t0 = time.time()
    while check_bars('', cells) and time.time() - t0 < wait: time.sleep(2); cells = d.execute_script(JS_CELLS)
    return cells

def check_explorer(d, name:str)->list[str]:
    "Type the lowest threshold into the slider's readout: the counts and the mask image must change."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    boxes = [b for b in d.find_elements(By.CSS_SELECTOR, NB + ' .jp-OutputArea .widget-vbox') if b.find_elements(By.CSS_SELECTOR, '.widget-slider')]
    if not boxes: return [f'{name}: no explorer controls (slider) rendered']
    box = boxes[-1]
    if not box.find_elements(By.CSS_SELECTOR, '.widget-dropdown select'): return [f'{name}: explorer has no dropdowns']
    d.execute_script('arguments[0].scrollIntoView()', box)
    def state():
        html = ' '.join(h.get_attribute('innerHTML') for h in box.find_elements(By.CSS_SELECTOR, '.widget-html-content'))
        imgs = [i.get_attribute('src') for i in box.find_elements(By.CSS_SELECTOR, 'img')]
        return html, imgs
    before = state(); log('typing a threshold into the slider readout')
    if not before[1]: return [f'{name}: explorer shows no image']
    readout = box.find_element(By.CSS_SELECTOR, '.widget-readout')
    readout.click(); readout.send_keys(Keys.CONTROL, 'a'); readout.send_keys('-1000000' + Keys.ENTER)
    for _ in range(60):
        time.sleep(1); after = state()
        if after[0] != before[0] and after[1] != before[1]: return []
    bad = []
    if after[0] == before[0]: bad.append(f'{name}: moving the threshold did not change the confusion counts')
    if after[1] == before[1]: bad.append(f'{name}: moving the threshold did not change the mask image')
    return bad

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('paths', nargs='*', default=['20_quickstart.ipynb', '11_widgets.ipynb'])
    p.add_argument('--break', dest='brk', action='store_true', help='append a figure cell that renders as text (must FAIL)')
    p.add_argument('--screens', help='folder for screenshots')
    p.add_argument('--timeout', type=int, default=900, help='seconds per notebook')
    p.add_argument('--full', action='store_true', help="the configuration a user's Run all gets (no IN_TEST)")
    p.add_argument('--ipywidgets', help="the ipywidgets version the kernel must run (checked in an appended cell)")
    a = p.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    root = Path(tempfile.mkdtemp(prefix='browser_check_'))
    for n in a.paths:
        nb = json.loads((repo/'nbs'/n).read_text())
        for c in nb['cells']:
            if c['cell_type'] == 'code': c['outputs'], c['execution_count'] = [], None
        nb['metadata'].pop('widgets', None)
        if a.brk: nb['cells'] += [dict(cell_type='code', metadata={}, outputs=[], execution_count=None,
                                       source='# a figure shown as text, no image: the check must FAIL\nfrom reconpatch_nb import visual\nrepr(visual.Figure(figsize=(2, 2)))'),
                                  dict(cell_type='code', metadata={}, outputs=[], execution_count=None,
                                       source="# a progress bar left at 0%: the check must FAIL\nfrom tqdm.auto import tqdm\nstuck = tqdm(total=10, desc='stuck'); stuck.update(0)")]
        if a.ipywidgets: nb['cells'].append(dict(cell_type='code', metadata={}, outputs=[], execution_count=None,
                                                 source="import ipywidgets; print('kernel ipywidgets', ipywidgets.__version__)"))
        (root/n).write_text(json.dumps(nb))
    port = free_port(); lab = start_lab(root, port, a.full)
    opts = webdriver.ChromeOptions(); opts.binary_location = shutil.which('chromium') or '/usr/bin/chromium'
    for f in FLAGS + [f'--user-data-dir={root/"chrome-profile"}']: opts.add_argument(f)
    d = webdriver.Chrome(options=opts, service=Service(shutil.which('chromedriver') or '/usr/bin/chromedriver'))
    n_ok = n_fail = 0
    try:
        for n in a.paths:
            t0 = time.time()
            cells = run_all(d, f'http://127.0.0.1:{port}/lab/workspaces/{Path(n).stem}/tree/{n}?reset', a.timeout)
            cells = settled(d, cells, wait=5 if a.brk else 20)
            has_explorer = 'AnomalyExplorer(' in (root/n).read_text()   # only notebooks that build one are checked for it
            bad = check_cells(n, cells) + (check_explorer(d, n) if has_explorer else [])
            if a.ipywidgets:
                shown = [c['out'].strip() for c in cells if 'kernel ipywidgets' in c['src']]
                if not shown or shown[-1] != f'kernel ipywidgets {a.ipywidgets}':
                    bad.append(f"{n}: expected the kernel to run ipywidgets {a.ipywidgets}, it printed {shown[-1] if shown else 'nothing'!r}")
            if a.screens:
                Path(a.screens).mkdir(parents=True, exist_ok=True); d.save_screenshot(str(Path(a.screens)/f'{Path(n).stem}.png'))
            for b in bad: print('FAIL', b)
            if bad: n_fail += 1
            else: n_ok += 1; print(f'PASS {n}: {len(cells)} cells, {sum(c["imgs"] > 0 for c in cells)} with images, '
                                      f'{sum(len(c["bars"]) for c in cells)} progress bars finished'
                                      + (f', ipywidgets {a.ipywidgets}' if a.ipywidgets else '') + f' ({time.time() - t0:.0f} s)')
            d.execute_script("window.onbeforeunload = null")
            stop_kernels(port)   # free the CPU for the next notebook
    finally:
        d.quit(); lab.terminate(); lab.wait(30)
    print(f'{n_ok} passed, {n_fail} failed')
    sys.exit(1 if n_fail else 0)

if __name__ == '__main__': main()
