#!/usr/bin/env python
"""Speed ratios of issue 11 in one run on the same data: a ReConPatch training step against its FLOP floor,
exact search with torch against faiss, and (without `--no-fit`) fit and predict ratios on a synthetic category.

    python benchmarks/speed.py --small             # a few minutes on 2 CPU cores
    python benchmarks/speed.py                     # the sizes of issue 11 (10k and 100k x 1024 banks)
    python benchmarks/speed.py --baseline HEAD~3   # also time the step with similarities/loss of a git revision

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
    "The `similarities` and `loss` modules of git revision `rev`, as standalone modules."
    root, mods = Path(__file__).resolve().parent.parent, {}
    for name in ('similarities', 'loss'):
        src = subprocess.run(['git', 'show', f'{rev}:reconpatch_nb/{name}.py'], cwd=root, check=True,
                             capture_output=True, text=True).stdout.replace('from .core', 'from reconpatch_nb.core')
        m = types.ModuleType(f'{name}_{rev}'); exec(compile(src, f'{rev}:{name}.py', 'exec'), m.__dict__); mods[name] = m
    return mods['similarities'].combined_similarity, mods['loss'].relaxed_contrastive_loss

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

def step_fns(sim, loss_fn, B=1024, D=1024, H=512, P=128):
    "Functions timing the parts of one ReConPatch step with the pseudo-label function `sim` and loss `loss_fn`."
    from reconpatch_nb.training import ReConPatchNet, TrainConfig, make_target, ema_update
    from adamp import AdamP
    cfg = TrainConfig()
    torch.manual_seed(0)
    net = ReConPatchNet(D, H, P); target = make_target(net)
    opt = AdamP(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    p = torch.randn(B, D)
    with torch.no_grad(): zt = target(p)
    w = sim(zt, cfg.alpha, cfg.sigma, cfg.k, normalize=True, return_parts=True)[0]
    def fwd(): return loss_fn(net(p), w, cfg.margin)
    def fwd_bwd(): opt.zero_grad(set_to_none=True); fwd().backward()
    def step():
        with torch.no_grad(): w_ = sim(target(p), cfg.alpha, cfg.sigma, cfg.k, normalize=True, return_parts=True)[0]
        l = loss_fn(net(p), w_, cfg.margin)
        opt.zero_grad(set_to_none=True); l.backward(); opt.step(); ema_update(target, net, cfg.gamma)
    return dict(similarity=lambda: sim(zt, cfg.alpha, cfg.sigma, cfg.k, normalize=True, return_parts=True),
                forward_loss=fwd, fwd_bwd=fwd_bwd, step=step)

def bench_step(a):
    from reconpatch_nb.similarities import combined_similarity
    from reconpatch_nb.loss import relaxed_contrastive_loss
    B = 1024
    codes = {'current': (combined_similarity, relaxed_contrastive_loss)}
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
    from reconpatch_nb.memory_bank import NearestNeighbours, patch_scores
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

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--small', action='store_true', help='reduced sizes: a few minutes on 2 CPU cores')
    p.add_argument('--threads', type=int, default=2, help='torch (and faiss) threads (default 2)')
    p.add_argument('--reps', type=int, default=5, help='repeats per timing (median)')
    p.add_argument('--baseline', default=None, help='git revision whose similarities/loss are timed too')
    p.add_argument('--only', nargs='+', default=['step', 'search', 'fit'], choices=['step', 'search', 'fit'])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f'# speed ratios: torch {torch.__version__}, {os.cpu_count()} CPUs, {a.threads} threads, '
          f'load average {os.getloadavg()[0]:.2f}{", --small" if a.small else ""}')
    if 'step' in a.only: bench_step(a)
    if 'search' in a.only: bench_search(a)
    if 'fit' in a.only: print('\n(fit / predict ratios: not implemented yet, see benchmarks/pipeline.py)')

if __name__ == '__main__': main()
