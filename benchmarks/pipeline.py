#!/usr/bin/env python
"""Seconds and peak memory per stage (feature extraction, training, coreset, calibration, scoring) of one
category, on the synthetic data, for each method. Prints a markdown table and writes it as JSON.

    python benchmarks/pipeline.py                       # 400 training images at 224 px, WRN-50 (random init)
    python benchmarks/pipeline.py --n-train 60 --epochs 3 --backbone resnet18
"""
import argparse, json
from pathlib import Path
import torch
from reconpatch_nb.core import measure, get_device
from reconpatch_nb.data import AnomalyDataset
from reconpatch_nb.synthetic import make_synthetic_dataset, SYNTHETIC_CATEGORIES
from reconpatch_nb.model import ReConPatch
from reconpatch_nb.evaluation import evaluate

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default='/tmp/reconpatch_bench_data')
    p.add_argument('--category', default=SYNTHETIC_CATEGORIES[0])
    p.add_argument('--n-train', type=int, default=400)
    p.add_argument('--backbone', default='wide_resnet50_2')
    p.add_argument('--image-size', type=int, default=224)
    p.add_argument('--epochs', type=int, default=None)
    p.add_argument('--coreset-ratio', type=float, default=0.01)
    p.add_argument('--methods', nargs='+', default=['reconpatch', 'patchcore'])
    p.add_argument('--device', default=None)
    p.add_argument('--json', default=None)
    a = p.parse_args()
    root = make_synthetic_dataset(Path(a.data)/f'n{a.n_train}', categories=[a.category], n_train=a.n_train)
    resize = int(round(a.image_size * 256 / 224))
    train = AnomalyDataset.mvtec(root, a.category, 'train', resize=resize, crop=a.image_size)
    test = AnomalyDataset.mvtec(root, a.category, 'test', resize=resize, crop=a.image_size)
    kw = dict(backbone=a.backbone, pretrained=False, resize=resize, crop=a.image_size, coreset_ratio=a.coreset_ratio)
    if a.epochs is not None: kw['epochs'] = a.epochs
    print(f'device {get_device(a.device)}, threads {torch.get_num_threads()}, {len(train)} train / {len(test)} test images, '
          f'{a.backbone} at {a.image_size} px', flush=True)
    rows = []
    for method in a.methods:
        m = ReConPatch(method, device=a.device, **kw).fit(train)
        with measure(m.timings, 'scoring'): ev = evaluate(m, test, progress=False)
        for stage, r in m.timings.items():
            if isinstance(r, dict): rows.append(dict(method=method, stage=stage, **r))
        rows.append(dict(method=method, stage='total fit', seconds=m.timings['fit_seconds'], peak_rss_mb=None, peak_gpu_mb=None))
        print(f"{method}: bank {tuple(m.bank.shape)}, image AUROC {ev.metrics['image_auroc']:.3f}, "
              f"pixel AUROC {ev.metrics['pixel_auroc']:.3f}", flush=True)
    print('\n| method | stage | seconds | peak RSS (MB) | peak GPU (MB) |\n|---|---|---|---|---|')
    for r in rows: print(f"| {r['method']} | {r['stage']} | {r['seconds']:.1f} | {r['peak_rss_mb'] or ''} | {r['peak_gpu_mb'] or ''} |")
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))

if __name__ == '__main__': main()
