#!/usr/bin/env python
"""Speed ratios of issue 11 in one run on the same data: a ReConPatch training step against its FLOP floor,
exact search with torch against faiss, start-up, warm predict against the bare backbone forward (with where
predict's time goes), and whole ReConPatch fits against PatchCore fits with their peak memory, on synthetic
categories with random-initialised backbones; it ends with a table of issue 11's targets, pass or fail.

    python benchmarks/speed.py --small             # a few minutes on 2 CPU cores
    python benchmarks/speed.py                     # the sizes of issue 11 (10k and 100k x 1024 banks)
    python benchmarks/speed.py --baseline HEAD~3   # also time the step with similarities/loss of a git revision
    python benchmarks/speed.py --only fit --fit-sizes 400   # one section, one size
    python benchmarks/speed.py --only threads      # the demo at the automatic thread count vs fixed counts, a busy neighbour

Every number is the median of a few repeats, and every result is a ratio of two timings taken in the same
run, so a shared machine moves both sides. The FLOP floor of the step is the time of its bare matrix
products (the same shapes: target and online forward, the two Gram matrices, the backward products).
"""
import argparse, os, statistics, subprocess, sys, tempfile, time, types
from pathlib import Path
import torch

def med_time(fn, reps=5, warm=1):
    "Median wall seconds of `fn()` over `reps` runs after `warm` untimed runs."
    return med_times({'x': fn}, reps, warm)['x']

def med_times(fns:dict, reps=5, warm=1):
    "Median wall seconds of each `fns[name]()`, the calls interleaved (a load change hits every entry alike)."
    for f in fns.values():
        for _ in range(warm): f()
    ts = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in ts.items()}

def load_revision(rev):
    "The pseudo-label function and the loss of git revision `rev` (its `similarities` and `loss` modules, standalone)."
    root, mods = Path(__file__).resolve().parent.parent, {}
    for name in ('similarities', 'loss'):
        src = subprocess.run(['git', 'show', f'{rev}:reconpatch_nb/{name}.py'], cwd=root, check=True,
                             capture_output=True, text=True).stdout.replace('from .core', 'from reconpatch_nb.core')
        m = types.ModuleType(f'{name}_{rev}'); exec(compile(src, f'{rev}:{name}.py', 'exec'), m.__dict__); mods[name] = m
    sim = mods['similarities']
    labels = getattr(sim, 'pseudo_labels', None) or labels_from_combined(sim.combined_similarity)
    return labels, mods['loss'].relaxed_contrastive_loss

def labels_from_combined(combined):
    "`pseudo_labels` for a revision that had only `combined_similarity`: w and its parts' off-diagonal means."
    from reconpatch_nb.similarities import _offdiag_mean
    def labels(z, alpha, sigma, k, normalize=True):
        w, wp, wc = combined(z, alpha, sigma, k, normalize=normalize, return_parts=True)
        return w, _offdiag_mean(wp), _offdiag_mean(wc)
    return labels

# ---------------------------------------------------------------- training step
def floor_fn(B, D, H, P):
    "The bare matrix products of one step (B x D patches, D -> H -> P nets), as a function to time."
    g = torch.Generator().manual_seed(0)
    p, W1, W2 = torch.randn(B, D, generator=g), torch.randn(H, D, generator=g), torch.randn(P, H, generator=g)
    h, z, G = torch.randn(B, H, generator=g), torch.randn(B, P, generator=g), torch.randn(B, B, generator=g)
    def mm():
        for _ in range(2): p @ W1.T; h @ W2.T          # target and online forward
        for _ in range(2): z @ z.T                      # Gram of z_bar (labels) and of z (loss)
        G @ z                                           # Gram backward
        z.T @ h; z @ W2; h.T @ p                        # dW2, dh, dW1
    return mm

def step_fns(labels, loss_fn, B=1024, D=1024, H=512, P=128):
    "Functions timing the parts of one `reconpatch_step` with the pseudo-label function `labels` and loss `loss_fn`."
    import reconpatch_nb.training as T
    cfg = T.TrainConfig()
    torch.manual_seed(0)
    net = T.ReConPatchNet(D, H, P); target = T.make_target(net)
    opt = T.AdamP(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    p = torch.randn(B, D)
    with torch.no_grad(): zt = target(p)
    w = labels(zt, cfg.alpha, cfg.sigma, cfg.k, normalize=True)[0]
    def fwd(): return loss_fn(net(p), w, cfg.margin)
    def fwd_bwd(): opt.zero_grad(set_to_none=True); fwd().backward()
    def step():   # the library's step, with `labels` and `loss_fn` in place of its own
        own = T.pseudo_labels, T.relaxed_contrastive_loss
        T.pseudo_labels, T.relaxed_contrastive_loss = labels, loss_fn
        try: T.reconpatch_step(net, target, opt, p, cfg)
        finally: T.pseudo_labels, T.relaxed_contrastive_loss = own
    return dict(similarity=lambda: labels(zt, cfg.alpha, cfg.sigma, cfg.k, normalize=True),
                forward_loss=fwd, fwd_bwd=fwd_bwd, step=step)

def bench_step(a):
    from reconpatch_nb.similarities import pseudo_labels
    from reconpatch_nb.loss import relaxed_contrastive_loss
    from reconpatch_nb.core import keep_freed_memory
    keep_freed_memory()   # as train_reconpatch does: the steps reuse their freed B x B blocks (core, 'Keeping freed blocks')
    B = 1024
    codes = {'current': (pseudo_labels, relaxed_contrastive_loss)}
    if a.baseline: codes = {a.baseline: load_revision(a.baseline), **codes}
    fns = {'floor': floor_fn(B, 1024, 512, 128)}
    for name, (sim, loss) in codes.items():
        fns.update({(name, part): f for part, f in step_fns(sim, loss, B).items()})
    t = med_times(fns, a.reps)
    floor = t['floor']
    print(f'\n## training step, B={B}, 1024 -> 512 -> 128, AdamP + EMA, {torch.get_num_threads()} threads, interleaved medians of {a.reps}')
    print(f'FLOP floor (bare matmuls of the same shapes): {floor * 1e3:.1f} ms')
    print('| code | similarity ms | forward+loss ms | backward ms | step ms | step / floor |\n|---|---|---|---|---|---|')
    for name in codes:
        r = {part: t[(name, part)] for part in ('similarity', 'forward_loss', 'fwd_bwd', 'step')}
        print(f"| {name} | {r['similarity']*1e3:.1f} | {r['forward_loss']*1e3:.1f} | {max(r['fwd_bwd'] - r['forward_loss'], 0)*1e3:.1f} | "
              f"{r['step']*1e3:.1f} | {r['step'] / floor:.2f} |", flush=True)
    return t[('current', 'step')] / floor

# ---------------------------------------------------------------- search
def bench_search(a):
    import faiss
    from reconpatch_nb.memory_bank import MEASURE_ROWS, NearestNeighbours, patch_scores
    faiss.omp_set_num_threads(a.threads)
    banks, nq = ((10_000, 20_000), 1568) if a.small else ((10_000, 100_000), 6272)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(nq, 1024, generator=g)
    print(f'\n## exact search, {nq} queries x 1024, k = 1 (patch_scores), torch vs faiss-cpu {faiss.__version__}')
    print('| bank | torch s | faiss s | faiss / torch | same neighbour |\n|---|---|---|---|---|')
    for n in banks:
        bank = torch.randn(n, 1024, generator=g)
        nns = {b: NearestNeighbours(bank, use_gpu=False, backend=b) for b in ('torch', 'faiss')}
        t = med_times({b: (lambda nn=nn: patch_scores(nn, q)) for b, nn in nns.items()}, reps=max(1, a.reps // 2), warm=0)
        same = (patch_scores(nns['torch'], q)[1] == patch_scores(nns['faiss'], q)[1]).float().mean()
        print(f"| {n:,} x 1024 | {t['torch']:.2f} | {t['faiss']:.2f} | {t['faiss'] / t['torch']:.2f} | {same:.4f} |", flush=True)
    auto = NearestNeighbours(bank, use_gpu=False)   # the library's fixed rule (memory_bank: torch on CPU)
    print(f"backend='auto' on this CPU: {auto.backend} (a fixed rule; backend='measure' times both once and caches the choice)")

# ---------------------------------------------------------------- fit, predict, start-up, memory
RANDOM_NOTE = 'random-initialised backbone (no weights can be downloaded here): timings are those of the real networks'

def proc_status_mb(key):
    "A `/proc/self/status` field in MB (VmRSS: now, VmHWM: peak), Linux only."
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(key + ':'): return int(line.split()[1]) / 1024
    raise KeyError(key)

def category_root(a, n_train):
    "The synthetic category `a.category` with `n_train` training images (written once under `a.data`)."
    from reconpatch_nb.synthetic import make_synthetic_dataset
    return make_synthetic_dataset(Path(a.data)/f'n{n_train}', categories=[a.category], n_train=n_train, progress=False)

def open_split(a, root, split, size):
    from reconpatch_nb.data import AnomalyDataset
    return AnomalyDataset.mvtec(root, a.category, split, resize=int(round(size * 256 / 224)), crop=size)

def fit_worker(a):
    "Child process: one whole fit; prints a JSON line with its seconds, stage timings and memory."
    import json
    torch.set_num_threads(a.threads)
    from reconpatch_nb.model import ReConPatch
    method, n_train = a.fit_worker[0], int(a.fit_worker[1])
    train = open_split(a, category_root(a, n_train), 'train', a.image_size)
    m = ReConPatch(method, device='cpu', progress=False, backbone=a.fit_backbone, pretrained=False,
                   resize=int(round(a.image_size * 256 / 224)), crop=a.image_size)
    rss0 = proc_status_mb('VmRSS')        # imports, data set opened, nothing built yet
    # fit's `measure` resets VmHWM at every stage, so VmHWM after the fit is only its last stage's peak: sample VmRSS too
    import threading
    peak, done = [rss0], threading.Event()
    def sample():
        while not done.wait(0.01): peak[0] = max(peak[0], proc_status_mb('VmRSS'))
    th = threading.Thread(target=sample, daemon=True); th.start()
    t = time.perf_counter(); m.fit(train); sec = time.perf_counter() - t
    done.set(); th.join()
    stages = {k: v['seconds'] for k, v in getattr(m, 'timings', {}).items() if isinstance(v, dict) and 'seconds' in v}
    peaks = {k: v['peak_rss_mb'] - rss0 for k, v in getattr(m, 'timings', {}).items() if isinstance(v, dict) and v.get('peak_rss_mb')}
    print('RESULT ' + json.dumps(dict(method=method, n=n_train, seconds=sec, stages=stages, stage_peaks_mb=peaks, rss_imports_mb=rss0,
                                      peak_mb=max(peak[0], proc_status_mb('VmHWM'), *(rss0 + v for v in peaks.values())),
                                      bank=list(m.bank.shape))), flush=True)

def run_fit(a, method, n_train):
    "One whole fit in a fresh process (clean peak RSS, no caches shared between fits)."
    import json
    cmd = [sys.executable, __file__, '--fit-worker', method, str(n_train), '--threads', str(a.threads), '--data', a.data,
           '--category', a.category, '--fit-backbone', a.fit_backbone, '--image-size', str(a.image_size)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in r.stdout.splitlines() if l.startswith('RESULT ')]
    if r.returncode or not lines: sys.exit(f'fit worker {method} {n_train} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT '):])

def bench_fit(a, results):
    "Whole fits, ReConPatch (default training budget) against PatchCore, interleaved P R P R ... P in fresh processes."
    print(f'\n## whole fits (features + training + coreset + calibration), {a.fit_backbone} at {a.image_size} px, '
          f'{RANDOM_NOTE}; each fit timed whole in its own process, features extracted by each fit (not shared)')
    print('| images | fit | seconds | features s | training s | coreset s | calibration s | peak RSS - imports MB | / features |\n|---|---|---|---|---|---|---|---|---|')
    for n in a.fit_sizes:
        category_root(a, n)
        feat_mb = n * (a.image_size // 8) ** 2 * 1024 * 4 / 2**20   # float32 (half_features switches on above 4 GiB only)
        runs = {'patchcore': [], 'reconpatch': []}
        for _ in range(a.fit_reps):
            for meth in ('patchcore', 'reconpatch'): runs[meth].append(run_fit(a, meth, n))
        runs['patchcore'].append(run_fit(a, 'patchcore', n))   # a PatchCore fit on both sides of every ReConPatch fit
        for meth, rs in runs.items():
            for r in rs:
                st = r['stages']; extra = r['peak_mb'] - r['rss_imports_mb']
                print(f"| {n} | {meth} | {r['seconds']:.1f} | {st.get('features', 0):.1f} | {st.get('training', 0):.1f} | "
                      f"{st.get('coreset', 0):.1f} | {st.get('calibration', 0):.1f} | {extra:.0f} | {extra / feat_mb:.2f} |", flush=True)
        ratio = statistics.median(r['seconds'] for r in runs['reconpatch']) / statistics.median(r['seconds'] for r in runs['patchcore'])
        results.append((f'ReConPatch fit / PatchCore fit, {n} images', ratio, 4 if n <= 60 else 8))
        if n >= 400 or n == max(a.fit_sizes):
            worst = max((r['peak_mb'] - r['rss_imports_mb']) / feat_mb for rs in runs.values() for r in rs)
            results.append((f'(peak RSS - imports) / features ({feat_mb:.0f} MB), {n}-image fit, worst method', worst, 1.3))
        for meth, rs in runs.items():
            pk = rs[-1].get('stage_peaks_mb', {})
            if pk: print(f"{n} images, {meth}: peak RSS - imports per stage (MB): " + ', '.join(f'{k} {v:.0f}' for k, v in pk.items()))
    print(f'features: {feat_mb:.0f} MB at the largest size; peak RSS = max of VmRSS sampled every 10 ms, of each stage\'s VmHWM and of VmHWM after the fit; imports = VmRSS before it')

def bench_predict(a, results):
    "Warm `predict` on a batch of 8 against the bare backbone forward, at 1 % and 10 % banks, and where predict's time goes."
    from reconpatch_nb.model import ReConPatch
    from reconpatch_nb.backbone import Backbone, aggregate_patch_features
    from reconpatch_nb.memory_bank import NearestNeighbours, patch_scores, image_scores, anomaly_map
    n, size = a.predict_images, 224
    root = category_root(a, n)
    train, test = open_split(a, root, 'train', size), open_split(a, root, 'test', size)
    x = torch.stack([test[i]['image'] for i in range(8)])
    kw = dict(device='cpu', progress=False, backbone='wide_resnet50_2', pretrained=False, resize=256, crop=size)
    feats = ReConPatch('patchcore', **kw).extract_features(train)   # shared by the fits below (same seed: same backbone)
    models = {}
    for ratio in (0.01, 0.10):
        for meth in ('untrained', 'patchcore'):  # untrained f: ReConPatch's predict cost without its training time
            models[meth, ratio] = ReConPatch(meth, coreset_ratio=ratio, **kw).fit(train, features=feats)
    torch.manual_seed(0); bb = Backbone('wide_resnet50_2', pretrained=False)
    def forward():
        with torch.inference_mode(): return bb(x)
    fns = {'backbone': forward, **{k: (lambda m=m: m.predict(x)) for k, m in models.items()}}
    t = med_times(fns, a.reps)
    print(f'\n## warm predict, batch of 8, wide_resnet50_2 at {size} px, {RANDOM_NOTE}; banks from {n} training images '
          f'({len(feats.features):,} patches); interleaved medians of {a.reps}')
    print(f"bare backbone forward: {t['backbone']:.2f} s\n| f | bank | predict s | predict / forward |\n|---|---|---|---|")
    for (meth, ratio), m in models.items():
        print(f"| {'ReConPatch (f at init)' if meth == 'untrained' else 'PatchCore'} | {ratio:.0%}: {tuple(m.bank.shape)} | "
              f"{t[meth, ratio]:.2f} | {t[meth, ratio] / t['backbone']:.2f} |", flush=True)
        if meth == 'untrained': results.append((f'predict / backbone forward, {ratio:.0%} bank', t[meth, ratio] / t['backbone'], 1.5 if ratio < 0.05 else 2.5))
    # where predict's time goes: the same stages as predict, through the public functions
    with torch.inference_mode(): maps = bb(x)
    pf, grid = aggregate_patch_features(maps, 1024)
    parts = {'backbone': forward, 'aggregate_patch_features': lambda: aggregate_patch_features(maps, 1024)}
    for ratio in (0.01, 0.10):
        m = models['untrained', ratio]; nn_ = NearestNeighbours(m.bank)
        emb = m.embed(pf.reshape(-1, pf.shape[-1])).reshape(len(x), pf.shape[1], -1)
        s, _ = patch_scores(nn_, emb)
        parts.update({('embed', ratio): lambda m=m: m.embed(pf.reshape(-1, pf.shape[-1])),
                      ('search', ratio): lambda nn_=nn_, emb=emb: patch_scores(nn_, emb),
                      ('image score + map', ratio): lambda s=s: (image_scores(s), anomaly_map(s.reshape(len(x), *grid), size=size, sigma=4.))})
    tp = med_times(parts, a.reps)
    print('| stage | bank | seconds | / forward |\n|---|---|---|---|')
    for k, v in tp.items():
        name, ratio = (k, '') if isinstance(k, str) else (k[0], f'{k[1]:.0%}')
        print(f"| {name} | {ratio} | {v:.3f} | {v / tp['backbone']:.2f} |")

def bench_startup(a, results):
    "`reconpatch --help` against `python -c 'import torch, torchvision'`, wall time, interleaved."
    exe = Path(sys.executable).parent/'reconpatch'
    exe = str(exe) if exe.exists() else 'reconpatch'   # the installed script itself, not a version manager's shim
    cmds = {'reconpatch --help': [exe, '--help'], 'reconpatch predict --help': [exe, 'predict', '--help'],
            'import torch, torchvision': [sys.executable, '-c', 'import torch, torchvision'],
            'import reconpatch_nb.model': [sys.executable, '-c', 'import reconpatch_nb.model']}
    run = lambda c: subprocess.run(c, check=True, capture_output=True)
    t = med_times({k: (lambda c=c: run(c)) for k, c in cmds.items()}, a.reps)
    print(f'\n## start-up, wall seconds, interleaved medians of {a.reps}\n| command | seconds | / import torch, torchvision |\n|---|---|---|')
    base = t['import torch, torchvision']
    for k, v in t.items(): print(f'| `{k}` | {v:.2f} | {v / base:.2f} |')
    results.append(('`reconpatch --help` / `import torch, torchvision`', t['reconpatch --help'] / base, 1.5))

# ---------------------------------------------------------------- threads
def run_demo_once(out, data, threads, categories):
    "Wall seconds of `reconpatch demo` into a fresh `out`, with OMP_NUM_THREADS=`threads` (None: the automatic policy)."
    import shutil
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    if threads is not None: env['OMP_NUM_THREADS'] = str(threads)
    exe = Path(sys.executable).parent/'reconpatch'
    cmd = [str(exe) if exe.exists() else 'reconpatch', 'demo', '--out', str(out), '--data', str(data)]
    if categories: cmd += ['--categories', *categories]
    t = time.perf_counter(); subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t

def bench_threads(a, results):
    "`reconpatch demo` at the automatic thread count against every fixed count, with and without CPU-bound neighbours."
    from reconpatch_nb.synthetic import make_synthetic_dataset
    from reconpatch_nb.core import usable_cpus
    cats = ['hexnut'] if a.small else None
    tmp = Path(tempfile.mkdtemp(prefix='reconpatch_threads_')); data = tmp/'data'
    make_synthetic_dataset(data, categories=cats or ['weave', 'hexnut', 'vial'], seed=0)   # the demo's categories, made once
    counts = [None] + list(range(1, len(usable_cpus()) + 1))
    name = lambda n: 'auto' if n is None else f'{n} thread{"s" if n > 1 else ""}'
    for n_hogs in (a.neighbours, 0):
        hogs = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(n_hogs)]
        try:
            time.sleep(1.)
            t = med_times({n: (lambda n=n: run_demo_once(tmp/'out', data, n, cats)) for n in counts}, a.demo_reps, warm=0)
        finally:
            for h in hogs: h.kill(); h.wait()
        best = min(v for k, v in t.items() if k is not None)
        print(f"\n## reconpatch demo{' --categories hexnut' if cats else ''}, {n_hogs} CPU-bound neighbour process(es), "
              f"{len(usable_cpus())} usable CPUs, interleaved medians of {a.demo_reps}\n| threads | seconds | / best fixed |\n|---|---|---|")
        for k, v in t.items(): print(f'| {name(k)} | {v:.1f} | {v / best:.2f} |', flush=True)
        results.append((f'demo at auto threads / best fixed count, {n_hogs} neighbour(s)', t[None] / best, 1.3))

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--small', action='store_true', help='reduced sizes: a few minutes on 2 CPU cores')
    p.add_argument('--threads', type=int, default=2, help='torch (and faiss) threads (default 2)')
    p.add_argument('--reps', type=int, default=5, help='repeats per timing (median)')
    p.add_argument('--baseline', default=None, help='git revision whose similarities/loss are timed too')
    p.add_argument('--only', nargs='+', default=SECTIONS, choices=SECTIONS)
    p.add_argument('--fit-sizes', type=int, nargs='+', default=None, help='training images per fitted category (default 60 400; --small: 60)')
    p.add_argument('--fit-reps', type=int, default=None, help='ReConPatch fits per size, between PatchCore fits (default 2; --small: 1)')
    p.add_argument('--fit-backbone', default='resnet18', help="backbone of the fit ratios (issue 11 measured them with resnet18)")
    p.add_argument('--image-size', type=int, default=224, help='crop of the fit ratios')
    p.add_argument('--predict-images', type=int, default=60, help='training images of the predict banks')
    p.add_argument('--data', default='/tmp/reconpatch_speed_data', help='where the synthetic categories are written')
    p.add_argument('--category', default='weave')
    p.add_argument('--neighbours', type=int, default=1, help='CPU-bound processes beside the threads section (default 1)')
    p.add_argument('--demo-reps', type=int, default=1, help='demo runs per thread count in the threads section (default 1)')
    p.add_argument('--fit-worker', nargs=2, metavar=('METHOD', 'N'), help=argparse.SUPPRESS)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.fit_worker: return fit_worker(a)
    if a.fit_sizes is None: a.fit_sizes = [60] if a.small else [60, 400]
    if a.fit_reps is None: a.fit_reps = 1 if a.small else 2
    print(f'# speed ratios: torch {torch.__version__}, {os.cpu_count()} CPUs, {a.threads} threads, '
          f'load average {os.getloadavg()[0]:.2f}{", --small" if a.small else ""}')
    results = []
    if 'step' in a.only: results.append(('training step / FLOP floor', bench_step(a), 2))
    if 'search' in a.only: bench_search(a)
    if 'startup' in a.only: bench_startup(a, results)
    if 'predict' in a.only: bench_predict(a, results)
    if 'fit' in a.only: bench_fit(a, results)
    if 'threads' in a.only: bench_threads(a, results)
    print(f'\n## targets (load average now {os.getloadavg()[0]:.2f})\n| ratio | value | target | |\n|---|---|---|---|')
    for name, v, target in results: print(f"| {name} | {v:.2f} | <= {target} | {'pass' if v <= target else 'FAIL'} |")

SECTIONS = ['step', 'search', 'startup', 'predict', 'fit', 'threads']

if __name__ == '__main__': main()
