#!/usr/bin/env python
"""False alarms at the stored threshold on good images the model has never seen (issue 24), with real features.

For each synthetic category, method and seed: fit on the category's training images, then count the good images
over `model.threshold` among (a) fresh good images drawn by the generator with another seed (no shift) and (b) the
data's `shifted` split (good images under a mild gain, position, rotation or focus shift, 02_synthetic), or where
there is none the fresh images under severity 1 of `reconpatch_nb.perturb` (a kind per image in turn), beside the
test split's metrics and what the threshold promises (`model.false_alarms()`). `--photos`: real photographs instead
(benchmarks/photo_data.py).

    python benchmarks/thresholds.py --weights /tmp/realfeat/inception_v3_nsfw.pt --seeds 0 1 2 3 4

Without --weights: a random-initialised resnet18 (quick, says little)."""
import argparse, json, sys, time
from pathlib import Path
import numpy as np, torch

MILD = ('brightness', 'contrast', 'colour', 'rotation', 'translation', 'blur')

def good_scores(model, ds, batch_size=8):
    "Image scores of every item of `ds` (all good)."
    return np.concatenate([s for _, s, _ in model.predict_dataset(ds, batch_size=batch_size, progress=False)])

class MildShift(torch.utils.data.Dataset):
    "Each item of `base` under one mild perturbation at severity 1, the kinds taken in turn."
    def __init__(self, base, seed):
        from reconpatch_nb.perturb import PerturbedDataset
        self.parts = [PerturbedDataset(base, k, 1, seed=seed, stream=7) for k in MILD]; self.base = base
        self.mean, self.std = base.mean, base.std
    def __len__(self): return len(self.base)
    def __getitem__(self, i): return self.parts[i % len(MILD)][i]

def kfold_scores(cls, kw, train, feats, k):
    "Each training image's score from a model fitted (f and bank) on the other folds: scores no part of the model has seen."
    from reconpatch_nb.backbone import Features
    n, (h, w) = len(train), feats.grid; P = h * w; out = np.zeros(n, np.float32)
    folds = np.array_split(np.random.default_rng(0).permutation(n), k)
    for held in folds:
        keep = np.setdiff1d(np.arange(n), held)
        rows = torch.cat([torch.arange(i * P, (i + 1) * P) for i in keep])
        m = cls(kw['method'], progress=False, **{k2: v for k2, v in kw.items() if k2 != 'method'})
        m.fit(torch.utils.data.Subset(train, keep.tolist()), features=Features(feats.features[rows], feats.grid))
        for i in held:
            emb = m.embed(feats.features[i * P:(i + 1) * P]).reshape(1, P, -1)
            out[i] = m.score_embeddings(emb, (h, w), (train[0]['image'].shape[-2], train[0]['image'].shape[-1]))[0][0]
    return out

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default='/tmp/reconpatch_thr/syn'); p.add_argument('--fresh', default='/tmp/reconpatch_thr/fresh')
    p.add_argument('--categories', nargs='+', default=None); p.add_argument('--methods', nargs='+', default=['patchcore', 'reconpatch'])
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2]); p.add_argument('--weights', default=None)
    p.add_argument('--n-fresh', type=int, default=60, help='fresh good images per category')
    p.add_argument('--set', nargs='*', default=[], help='model settings KEY=VALUE (JSON values), e.g. threshold_percentile=99')
    p.add_argument('--json', default=None, help='write the rows here')
    p.add_argument('--folds', type=int, default=0, help='also score each training image by a model fitted without it (k folds)')
    p.add_argument('--models', default=None, help='save each fitted model here (<category>_<method>_seed<seed>.rcp)')
    p.add_argument('--photos', action='store_true', help="the photo categories of benchmarks/photo_data.py (in --data, fresh crops in --fresh) "
                   "instead of the synthetic ones")
    a = p.parse_args()
    from reconpatch_nb.synthetic import make_synthetic_dataset, SYNTHETIC_CATEGORIES
    from reconpatch_nb.data import AnomalyDataset
    from reconpatch_nb.model import ReConPatch
    from reconpatch_nb.evaluation import evaluate
    cats = a.categories or list(SYNTHETIC_CATEGORIES)
    extra = {k: json.loads(v) for k, v in (s.split('=', 1) for s in a.set)}
    if a.weights:
        kw = dict(backbone='timm/inception_v3', weights=a.weights, layers=(2, 3), mean=0, std=1, crop=256, resize=293, **extra)
    else: kw = dict(backbone='resnet18', pretrained=False, crop=224, resize=256, **extra)
    if a.photos:
        sys.path.insert(0, str(Path(__file__).parent)); from photo_data import make_photo_dataset
        cats = make_photo_dataset(a.data, a.fresh, n_fresh=a.n_fresh)
    else:
        make_synthetic_dataset(a.data, categories=cats, seed=0, progress=False)
        make_synthetic_dataset(a.fresh, categories=cats, seed=1000, n_train=a.n_fresh, progress=False)   # fresh draws, same generator
    rows = []
    for cat in cats:
        size = dict(resize=kw['resize'], crop=kw['crop'], mean=(0, 0, 0) if a.weights else None, std=(1, 1, 1) if a.weights else None)
        size = {k: v for k, v in size.items() if v is not None}
        train, test = (AnomalyDataset.mvtec(a.data, cat, s, **size) for s in ('train', 'test'))
        fresh = AnomalyDataset.mvtec(a.fresh, cat, 'train', **size)
        split = Path(a.data)/cat/'shifted'/'good'   # the data's own shifted split (02_synthetic), else severity 1 of perturb
        shifted = (lambda seed: AnomalyDataset.folder(split, **size)) if split.is_dir() else (lambda seed: MildShift(fresh, seed))
        for seed in a.seeds:
            feats = None
            for meth in a.methods:
                t0 = time.perf_counter()
                m = ReConPatch(meth, progress=False, seed=seed, **kw)
                if feats is None: feats = m.extract_features(train)
                m.fit(train, features=feats)
                ev = evaluate(m, test, progress=False)
                f, sh = good_scores(m, fresh), good_scores(m, shifted(seed))
                r = dict(category=cat, method=meth, seed=seed, image_auroc=100 * ev.metrics['image_auroc'],
                         pixel_auroc=100 * ev.metrics['pixel_auroc'], aupro=100 * ev.metrics['aupro'],
                         far_fresh=100 * float((f >= m.threshold).mean()), far_shift=100 * float((sh >= m.threshold).mean()),
                         threshold=m.threshold, far_expected=100 * m.false_alarms()['expected'], far_upper=100 * m.false_alarms()['upper'], loo=list(m.calibration.get('scores', [])), fresh=f.tolist(), shift=sh.tolist())
                if a.folds: r['kfold'] = kfold_scores(ReConPatch, dict(method=meth, seed=seed, **kw), train, feats, a.folds).tolist()
                r['fit_s'] = round(time.perf_counter() - t0, 1)
                if a.models: m.save(Path(a.models)/f'{cat}_{meth}_seed{seed}.rcp')
                rows.append(r); print(json.dumps({k: v for k, v in r.items() if not isinstance(v, list)}), flush=True)
                if a.json: Path(a.json).write_text(json.dumps(rows))
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))
    print('\n| method | image AUROC | pixel AUROC | AUPRO | false alarms, fresh good % | under mild shift % | per-category sd of image AUROC over seeds |')
    print('|---|---|---|---|---|---|---|')
    for meth in a.methods:
        rs = [r for r in rows if r['method'] == meth]
        sd = np.mean([np.std([r['image_auroc'] for r in rs if r['category'] == c]) for c in cats])
        mean = lambda k: np.mean([r[k] for r in rs])
        print(f"| {meth} | {mean('image_auroc'):.1f} | {mean('pixel_auroc'):.1f} | {mean('aupro'):.1f} | {mean('far_fresh'):.1f} | "
              f"{mean('far_shift'):.1f} | {sd:.1f} |")

if __name__ == '__main__': main()
