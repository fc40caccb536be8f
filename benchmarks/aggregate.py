#!/usr/bin/env python
"""`aggregate_patch_features` of this tree against a git revision's, as a fraction of the backbone forward, on
a batch of 8 at 224 px (random-initialised backbones: the cost is the real networks'), interleaved medians.

    python benchmarks/aggregate.py --baseline 2f7468f~1
"""
import argparse, subprocess, sys, types
from pathlib import Path
import torch
from speed import med_times

def revision_aggregate(rev):
    "`aggregate_patch_features` of `reconpatch_nb/backbone.py` at git revision `rev`."
    root = Path(__file__).resolve().parent.parent
    src = subprocess.run(['git', 'show', f'{rev}:reconpatch_nb/backbone.py'], cwd=root, check=True, capture_output=True, text=True).stdout
    src = src.replace('from .core', 'from reconpatch_nb.core').replace('from .data', 'from reconpatch_nb.data')
    m = sys.modules[f'backbone_{rev}'] = types.ModuleType(f'backbone_{rev}'); exec(compile(src, f'{rev}:backbone.py', 'exec'), m.__dict__)
    return m.aggregate_patch_features

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--baseline', default='2f7468f~1', help='git revision with the previous implementation (unfold)')
    p.add_argument('--backbones', nargs='+', default=['resnet18', 'wide_resnet50_2'])
    p.add_argument('--reps', type=int, default=5); p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from reconpatch_nb.backbone import Backbone, aggregate_patch_features
    old = revision_aggregate(a.baseline)
    print(f'| backbone | forward s | {a.baseline} aggregate / forward | current / forward | current / {a.baseline} | max abs diff |\n|---|---|---|---|---|---|')
    for name in a.backbones:
        torch.manual_seed(0); bb = Backbone(name, pretrained=False); x = torch.randn(8, 3, 224, 224)
        with torch.inference_mode():
            maps = bb(x)
            t = med_times({'forward': lambda: bb(x), 'old': lambda: old(maps), 'new': lambda: aggregate_patch_features(maps)}, a.reps)
            d = (old(maps)[0] - aggregate_patch_features(maps)[0]).abs().max().item()
        print(f"| {name} | {t['forward']:.3f} | {t['old'] / t['forward']:.2f} | {t['new'] / t['forward']:.2f} | {t['new'] / t['old']:.2f} | {d:.1e} |", flush=True)

if __name__ == '__main__': main()
