#!/usr/bin/env python
"""Speed and memory of the memory bank (reconpatch_nb.memory_bank): greedy coreset selection and exact
nearest-neighbour search at the sizes of a real category. Prints a markdown table.

Usage: python benchmarks/memory_bank.py [--device cpu|cuda] [--threads N] [--dense] [--quick]

Each case runs in a fresh process, so its peak resident memory is its own ("peak RSS"; "extra" is the
peak minus the resident memory once the input exists). Features are i.i.d. Gaussian: the worst case for
the lazy coreset (every block stays a candidate), real patch features are easier. Timings are wall-clock
seconds; on a shared machine compare them with the CPU seconds and the load average printed above the
table. tracemalloc is not used: it does not see torch's or faiss's allocations."""
import argparse, multiprocessing as mp, os, platform, time
from concurrent.futures import ProcessPoolExecutor


def _status_mb(key):
    for line in open('/proc/self/status'):
        if line.startswith(key): return int(line.split()[1]) / 1024
    return float('nan')


def _reset_peak():
    try: open('/proc/self/clear_refs', 'w').write('5')
    except OSError: pass


def _features(n, d, dtype, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, d, dtype=dtype)
    for s in range(0, n, 32768):  # in chunks: never a float32 copy of a float16 matrix
        x[s:s + 32768] = torch.randn(min(32768, n - s), d, generator=g)
    return x


def _run(case, device, threads):
    import torch, faiss
    if threads:
        torch.set_num_threads(threads); faiss.omp_set_num_threads(threads)
    from reconpatch_nb.memory_bank import greedy_coreset, NearestNeighbours, patch_scores
    kind = case['kind']
    if kind == 'coreset':
        x = _features(case['n'], case['d'], case['dtype'], 0)
    else:
        bank = _features(case['bank'], case['d'], torch.float32, 1)
        q = _features(case['n'], case['d'], torch.float32, 2).reshape(-1, case['per_image'], case['d'])
    base = _status_mb('VmRSS:'); _reset_peak()
    if device == 'cuda': torch.cuda.reset_peak_memory_stats()
    t0, c0 = time.perf_counter(), time.process_time()
    if kind == 'coreset':
        idx = greedy_coreset(x, case['ratio'], device=device, progress=False, lazy=case.get('lazy'))
        if device == 'cuda': torch.cuda.synchronize()
        out = f'{len(idx):,} selected'
    else:
        t_build = time.perf_counter()
        nn = NearestNeighbours(bank, backend=case['backend'])
        t_build = time.perf_counter() - t_build
        s, _ = patch_scores(nn, q)
        out = f"{s.numel():,} scores, {nn.backend} on {'GPU' if nn.on_gpu else 'CPU'} (build {t_build:.2f} s)"
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_mb('VmHWM:')
    gpu = torch.cuda.max_memory_allocated() / 2**20 if device == 'cuda' else None
    return dict(secs=secs, cpu=cpu, peak=peak, extra=peak - base, gpu=gpu, out=out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default=None, help="'cpu' or 'cuda' (default: cuda when available)")
    p.add_argument('--threads', type=int, default=None, help='torch and faiss threads (default: their own default)')
    p.add_argument('--dense', action='store_true', help='also time the dense coreset path on the CPU (slower)')
    p.add_argument('--quick', action='store_true', help='a tenth of the sizes (smoke test)')
    a = p.parse_args()
    import torch
    device = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    f = 10 if a.quick else 1
    cases = [
        dict(name='coreset 10% of 100,000 x 1024 (float32)', kind='coreset', n=100_000 // f, d=1024, ratio=0.1, dtype=torch.float32),
        dict(name='coreset 1% of 313,600 x 1024 (float16)', kind='coreset', n=313_600 // f, d=1024, ratio=0.01, dtype=torch.float16),
        dict(name='search (faiss): bank 3,136 x 1024, 50 x 784 queries', kind='search', bank=3136 // f, n=50 * 784,
             per_image=784, d=1024, backend='faiss'),
        dict(name='search (torch): bank 3,136 x 1024, 50 x 784 queries', kind='search', bank=3136 // f, n=50 * 784,
             per_image=784, d=1024, backend='torch'),
    ]
    if a.dense and device == 'cpu':
        cases.insert(1, dict(cases[0], name=cases[0]['name'] + ', dense path', lazy=False))
    ctx = mp.get_context('spawn')
    print(f"# memory bank benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, threads {a.threads or torch.get_num_threads()}, device {device}")
    print(f"load average before: {os.getloadavg()[0]:.2f}\n")
    rows = []
    for c in cases:
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
            r = ex.submit(_run, c, device, a.threads).result()
        rows.append((c['name'], r)); print(f"done: {c['name']}: {r['secs']:.1f} s", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}\n")
    gpu = device == 'cuda'
    print('| case | result | seconds | CPU seconds | peak RSS MB | extra RSS MB |' + (' peak GPU MB |' if gpu else ''))
    print('|---|---|---|---|---|---|' + ('---|' if gpu else ''))
    for name, r in rows:
        print(f"| {name} | {r['out']} | {r['secs']:.1f} | {r['cpu']:.1f} | {r['peak']:.0f} | {r['extra']:.0f} |"
              + (f" {r['gpu']:.0f} |" if gpu else ''))


if __name__ == '__main__': main()
