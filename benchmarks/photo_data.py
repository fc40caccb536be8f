#!/usr/bin/env python
"""Real photographs as anomaly-detection categories, for measuring on more than the package's drawings (issue 24).

The photographs are those the dependencies ship: scikit-learn's `china.jpg` and `flower.jpg` (a dev dependency) and
matplotlib's `grace_hopper.jpg`. Each becomes one category in the MVTec AD layout:
- train/good: 50 random square crops (sides of 35-45 % of its height, anywhere), resized to 256 px, with sensor noise,
- test/good: 12 more such crops,
- test/<crack|stain|scratch> with ground_truth masks: 6 crops each with the synthetic generator's granite crack, weave
  stain and timber scratch painted on (their severities stratified as the generator does),
- shifted/good: 12 crops under the generator's mild shifts (gain, position, rotation, focus, one each in turn),
and `<fresh>/<category>/train/good`: 60 more crops (fresh good images, no shift).
A photograph's regions differ far more than a product's images do (a pagoda and the sky beside it), so these are
hard categories; what they test is whether the defaults and the thresholds hold on real image statistics.

    python benchmarks/photo_data.py --out /tmp/photos --fresh /tmp/photos_fresh
"""
import argparse, os
from pathlib import Path
import numpy as np
from PIL import Image

DEFECTS = {'crack': ('granite', 'crack'), 'stain': ('weave', 'stain'), 'scratch': ('timber', 'scratch')}

def photographs()->dict:
    "name -> (H, W, 3) float image in [0, 1] of every photograph found."
    import matplotlib
    paths = {'hopper': Path(matplotlib.get_data_path())/'sample_data'/'grace_hopper.jpg'}
    try:
        import sklearn
        for n in ('china', 'flower'): paths[n] = Path(sklearn.__file__).parent/'datasets'/'images'/f'{n}.jpg'
    except ImportError: print('scikit-learn is not installed: its two photographs are left out')
    return {n: np.asarray(Image.open(p).convert('RGB'), np.float32) / 255 for n, p in paths.items() if p.exists()}

def crop(photo, rng, x0:float, x1:float, size:int)->np.ndarray:
    "A random square crop whose left edge lies in [x0, x1) of the width (fractions), resized to `size`."
    H, W, _ = photo.shape; side = int(rng.uniform(0.35, 0.45) * H)
    lo, hi = int(x0 * W), max(int(x0 * W) + 1, min(int(x1 * W), W) - side)
    x, y = int(rng.integers(lo, hi)), int(rng.integers(0, H - side + 1))
    im = Image.fromarray((photo[y:y + side, x:x + side] * 255 + 0.5).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    return np.asarray(im, np.float32) / 255

def save(a:np.ndarray, path:Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a if a.dtype == np.uint8 else (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)

def make_photo_dataset(out, fresh, size:int=256, seed:int=0, n_train:int=50, n_good:int=12, n_defect:int=6,
                       n_shifted:int=12, n_fresh:int=60)->list:
    "Write the photo categories under `out` (and their fresh good crops under `fresh`); return the category names."
    from reconpatch_nb.synthetic import SHIFTS, _DEFECT_FNS, _MASK_LEVEL, _finish, _shift
    out, fresh, cats = Path(out), Path(fresh), []
    noise = lambda rng: 0.012 * rng.standard_normal((size, size, 3), dtype=np.float32)
    ones = np.ones((size, size), np.float32)
    for name, photo in photographs().items():
        cat, rng = f'photo_{name}', np.random.default_rng([seed, sum(map(ord, name))]); cats.append(cat)
        for i in range(n_train): save(_finish(crop(photo, rng, 0, 1, size), ones, noise(rng)), out/cat/'train'/'good'/f'{i:03d}.png')
        for i in range(n_good): save(_finish(crop(photo, rng, 0, 1, size), ones, noise(rng)), out/cat/'test'/'good'/f'{i:03d}.png')
        for d, key in DEFECTS.items():
            for i in range(n_defect):
                img, t = crop(photo, rng, 0, 1, size), (i + rng.uniform()) / n_defect
                for _ in range(20):   # as the generator does: redraw a defect that fell (almost) outside
                    target, a, k = _DEFECT_FNS[key](rng, img, {'S': size}, t)
                    mask = a >= _MASK_LEVEL
                    if mask.sum() >= 4: break
                save(_finish(np.where(mask[..., None], img + (k * a)[..., None] * (target - img), img), ones, noise(rng)),
                     out/cat/'test'/d/f'{i:03d}.png')
                save(mask.astype(np.uint8) * 255, out/cat/'ground_truth'/d/f'{i:03d}_mask.png')
        for i in range(n_shifted):
            save(_finish(_shift(SHIFTS[i % len(SHIFTS)], rng, crop(photo, rng, 0, 1, size)), ones, noise(rng)),
                 out/cat/'shifted'/'good'/f'{i:03d}.png')
        for i in range(n_fresh): save(_finish(crop(photo, rng, 0, 1, size), ones, noise(rng)), fresh/cat/'train'/'good'/f'{i:03d}.png')
    return cats

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='/tmp/photos'); p.add_argument('--fresh', default='/tmp/photos_fresh')
    p.add_argument('--size', type=int, default=256); p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    print(make_photo_dataset(a.out, a.fresh, a.size, a.seed))
