#!/usr/bin/env python
"""Per-image time of the torch-free runtime (reconpatch_nb/onnx_runtime.py: onnxruntime, numpy, Pillow) against
`predict_files` (the package's own path) on the same CPU, image files in, scores out, as a ratio. One run.

    python benchmarks/deploy.py                          # PatchCore and ReConPatch, resnet18 (random weights), 224 px, 1 thread
    python benchmarks/deploy.py --threads 4 --methods patchcore --image-size 112 --json deploy.json

For each method: fit on the synthetic data, export to ONNX (`export_onnx`, with its parity check), then time both
paths on the same test image files, from file to score: one image per call (latency) and batches of 8 (throughput).
Each time is the median of `--repeats` passes over the files after `--warmup` passes; the runtime runs in a fresh
Python process that never imports torch (checked), as it would beside a line, `predict_files` in this one, and their
passes alternate so that both see the same load; the ratio is the median of the paired passes' ratios.
Both use `--threads` CPU threads (torch's and onnxruntime's intra-op threads).
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time
from pathlib import Path

RUNTIME = r'''
import json, sys, time
from reconpatch_nb.onnx_runtime import OnnxDetector
a = json.loads(sys.argv[1])
det = OnnxDetector(a['onnx'], threads=a['threads'])
print(json.dumps(dict(ready=True)), flush=True)
for line in sys.stdin:   # one pass over the files per line: the number of files per call (0: stop)
    bs = int(line)
    if bs == 0: break
    t0, rows = time.perf_counter(), []
    for s in range(0, len(a['files']), bs): rows += det.score_files(a['files'][s:s + bs], batch_size=bs)[0]
    print(json.dumps(dict(seconds=time.perf_counter() - t0, scores=[r['score'] for r in rows])), flush=True)
print(json.dumps(dict(torch_imported='torch' in sys.modules)), flush=True)
'''

class Runtime:
    "The torch-free runtime in a fresh process (never importing torch), scoring the files one pass per request."
    def __init__(self, onnx:Path, files:list, threads:int):
        arg = json.dumps(dict(onnx=str(onnx), files=[str(f) for f in files], threads=threads))
        self.p = subprocess.Popen([sys.executable, '-c', RUNTIME, arg], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, 'OMP_NUM_THREADS': str(threads)})
        self._read()
    def _read(self)->dict:
        line = self.p.stdout.readline()
        if not line: sys.exit(f'the runtime stopped (exit status {self.p.wait()})')
        return json.loads(line)
    def one_pass(self, bs:int)->dict: self.p.stdin.write(f'{bs}\n'); self.p.stdin.flush(); return self._read()
    def close(self)->bool: # whether torch was imported
        self.p.stdin.write('0\n'); self.p.stdin.flush(); r = self._read()['torch_imported']; self.p.wait(); return r

def predict_pass(model, files:list, bs:int)->float:
    "Seconds of one pass of `predict_files` over `files`, `bs` files per call."
    t0 = time.perf_counter()
    for s in range(0, len(files), bs): model.predict_files(files[s:s + bs])
    return time.perf_counter() - t0

def paired(model, rt:Runtime, files:list, bs:int, warmup:int, repeats:int)->dict:
    "Median seconds per image of each path and the median of the paired ratios; the passes alternate, so both see the same load."
    for _ in range(warmup): predict_pass(model, files, bs); rt.one_pass(bs)
    tp, tr = [], []
    for _ in range(repeats): tp.append(predict_pass(model, files, bs)); tr.append(rt.one_pass(bs)['seconds'])
    n = len(files)
    return dict(predict=statistics.median(tp) / n, runtime=statistics.median(tr) / n,
                ratio=statistics.median(r / p for r, p in zip(tr, tp)))

def cpu_name()->str:
    try: return next(l.split(':', 1)[1].strip() for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or platform.machine()

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--methods', nargs='+', default=['patchcore', 'reconpatch'])
    p.add_argument('--backbone', default='resnet18')
    p.add_argument('--image-size', type=int, default=224, help='crop in px (resize = size * 256 / 224)')
    p.add_argument('--n-train', type=int, default=20)
    p.add_argument('--n-test', type=int, default=16, help='test image files timed')
    p.add_argument('--steps', type=int, default=50, help="ReConPatch's training steps (the time of f's embedding does not depend on them)")
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--json', default=None)
    a = p.parse_args()
    os.environ['OMP_NUM_THREADS'] = str(a.threads)
    import numpy as np, torch, onnxruntime
    torch.set_num_threads(a.threads)
    import reconpatch_nb, reconpatch_nb.export   # adds ReConPatch.export
    from reconpatch_nb.synthetic import make_synthetic_dataset, SYNTHETIC_CATEGORIES
    from reconpatch_nb.data import AnomalyDataset
    from reconpatch_nb.model import ReConPatch
    tmp = Path(tempfile.mkdtemp(prefix='reconpatch_deploy_'))
    cat, resize = SYNTHETIC_CATEGORIES[0], int(round(a.image_size * 256 / 224))
    root = make_synthetic_dataset(tmp/'data', categories=[cat], n_train=a.n_train, seed=0, progress=False)
    train = AnomalyDataset.mvtec(root, cat, 'train', resize=resize, crop=a.image_size)
    files = [s.path for s in AnomalyDataset.mvtec(root, cat, 'test', resize=resize, crop=a.image_size).samples][:a.n_test]
    print(f"CPU {cpu_name()}, {os.cpu_count()} logical CPUs, {a.threads} thread(s); torch {torch.__version__}, onnxruntime "
          f"{onnxruntime.__version__}, reconpatch_nb {reconpatch_nb.__version__}; {a.backbone} (random weights) at {a.image_size} px; "
          f"{len(files)} test files of {cat}; median of {a.repeats} passes after {a.warmup} warm-up passes", flush=True)
    rows = []
    for method in a.methods:
        m = ReConPatch(method, progress=False, threads=a.threads, backbone=a.backbone, pretrained=False, resize=resize,
                       crop=a.image_size, steps=a.steps).fit(train)
        rep = m.export(tmp/f'{method}.onnx')
        rt = Runtime(tmp/f'{method}.onnx', files, a.threads)
        scores = np.array(rt.one_pass(a.batch)['scores'])
        diff = float(np.max(np.abs(scores - m.predict_files(files)[0])) / np.max(np.abs(scores)))
        for bs in (1, a.batch):
            t = paired(m, rt, files, bs, a.warmup, a.repeats)
            rows.append(dict(method=method, images_per_call=bs, predict_ms=1e3 * t['predict'], runtime_ms=1e3 * t['runtime'],
                             ratio=t['ratio'], bank=list(m.bank.shape), score_rel_diff=diff, parity=rep))
        if rt.close(): sys.exit('the runtime imported torch')
    print('\n| method | images per call | predict ms/image | onnxruntime ms/image | ratio (onnxruntime / predict, paired) |')
    print('|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['method']} | {r['images_per_call']} | {r['predict_ms']:.1f} | {r['runtime_ms']:.1f} | {r['ratio']:.2f} |")
    print('\nscores of the runtime against predict_files, largest difference / largest score: '
          + ', '.join(f"{r['method']} {r['score_rel_diff']:.1e}" for r in rows[::2]))
    if a.json: Path(a.json).write_text(json.dumps(dict(cpu=cpu_name(), threads=a.threads, image_size=a.image_size,
                                                         backbone=a.backbone, rows=rows), indent=1))

if __name__ == '__main__': main()
