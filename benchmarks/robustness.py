#!/usr/bin/env python
"""The robustness study (issue 22) from a shell, with the flags `reconpatch benchmark` has: `run_robustness` per
category, method, seed, protocol, perturbation and severity, then the table (results.md) and the figures.

    python benchmarks/robustness.py --data syn --out rob_real --backbone timm/inception_v3 --weights inception_v3.pt \
        --layers 2 3 --mean 0 0 0 --std 1 1 1 --image-size 256 --seeds 0 1 --severities 1 3 5 --protocol test train_test
"""
import argparse, sys, time
from pathlib import Path

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arg = p.add_argument
    arg('--data', required=True, help='dataset root'); arg('--out', required=True, help='results folder (resumed when it holds rows)')
    arg('--categories', nargs='+'); arg('--methods', nargs='+', default=['reconpatch', 'patchcore'])
    arg('--perturbations', nargs='+', default=['rotation', 'translation', 'brightness', 'contrast', 'blur', 'noise'])
    arg('--severities', nargs='+', type=int, default=[1, 3, 5]); arg('--protocol', nargs='+', default=['test'])
    arg('--seeds', nargs='+', type=int, default=[0]); arg('--backbone'); arg('--weights')
    arg('--pretrained', action=argparse.BooleanOptionalAction, default=None)
    arg('--layers', nargs='+'); arg('--mean', nargs=3, type=float); arg('--std', nargs=3, type=float)
    arg('--image-size', type=int); arg('--steps', type=int); arg('--coreset-ratio', type=float)
    arg('--threads', type=int); arg('--device'); arg('--figures', action='store_true', help='also write the severity curves')
    a = p.parse_args(argv)
    from reconpatch_nb.robustness import run_robustness, severity_curves
    from reconpatch_nb.visual import save_figure
    kw = {k: getattr(a, k) for k in ('backbone', 'weights', 'mean', 'std', 'steps', 'coreset_ratio', 'threads') if getattr(a, k) is not None}
    if a.layers: kw['layers'] = tuple(int(x) if x.isdigit() else x for x in a.layers)
    if a.image_size: kw.update(crop=a.image_size, resize=int(round(a.image_size * 256 / 224)))
    t0 = time.time()
    rows = run_robustness(a.data, a.categories, a.methods, a.out, a.perturbations, a.severities, a.protocol, a.seeds,
                          pretrained=a.pretrained, device=a.device, **kw)
    print((Path(a.out)/'results.md').read_text() + f"\n{len(rows)} rows in {time.time() - t0:.0f} s")
    if a.figures:
        for proto in a.protocol:
            for m in ('image_auroc', 'pixel_auroc', 'fpr_at_threshold'):
                save_figure(severity_curves(rows, m, proto), Path(a.out)/'figures'/f'{proto}_{m}.png')

if __name__ == '__main__': sys.exit(main())
