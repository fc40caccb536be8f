#!/usr/bin/env python
"""One prepared run of the CUDA paths: faiss GPU index vs CPU, float16 feature cache, training steps, dense
coreset on the GPU, a large bank, and a whole fit/predict on the GPU; prints seconds and peak GPU memory and
exits 1 on any mismatch. Meant for a lent GPU machine (see DEVELOPERS.md); `--device cpu` smoke-tests it here.

    python benchmarks/gpu_check.py                 # on a GPU machine
    python benchmarks/gpu_check.py --device cpu --small
"""
import argparse, sys, tempfile, time
import torch
from reconpatch_nb.core import get_device
from reconpatch_nb.training import TrainConfig, train_reconpatch
from reconpatch_nb.memory_bank import NearestNeighbours, greedy_coreset
from reconpatch_nb.synthetic import make_synthetic_dataset
from reconpatch_nb.data import AnomalyDataset
from reconpatch_nb.model import ReConPatch

def peak_mb(dev): return torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else float('nan')

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cuda'); p.add_argument('--small', action='store_true')
    a = p.parse_args()
    dev, fails = get_device(a.device), []
    n_bank, n_q, n_feat = (20_000, 5_000, 50_000) if a.small else (3_136_000, 78_400, 1_500_000)
    import faiss
    print(f'device {dev} | torch {torch.__version__} | faiss {faiss.__version__}, GPUs {faiss.get_num_gpus()}', flush=True)

    # 1. faiss: GPU index gives the CPU index's neighbours
    g = torch.Generator().manual_seed(0)
    bank, q = torch.randn(n_bank, 512, generator=g), torch.randn(n_q, 512, generator=g)
    t = time.time(); d_cpu, i_cpu = NearestNeighbours(bank, use_gpu=False).search(q); t_cpu = time.time() - t
    nn = NearestNeighbours(bank)
    t = time.time(); d_gpu, i_gpu = nn.search(q); t_gpu = time.time() - t
    agree = (i_cpu == i_gpu).float().mean().item()
    print(f'search {n_q} x {n_bank} x 512: CPU {t_cpu:.1f} s, default index ({nn}) {t_gpu:.1f} s, same neighbour {agree:.4f}, '
          f'max |d| diff {(d_cpu - d_gpu).abs().max():.2e}', flush=True)
    if agree < 0.999: fails.append('faiss GPU/CPU neighbours differ')

    # 2. training on float16 features on the device, memory bounded by B
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    feats = torch.randn(n_feat, 1024, generator=g).half()
    t = time.time()
    net, hist = train_reconpatch(feats, TrainConfig(epochs=1, steps_per_epoch=50), device=dev, progress=False)
    print(f'training 50 steps B=1024 on {n_feat} fp16 features: {time.time() - t:.1f} s, peak GPU {peak_mb(dev):.0f} MB, '
          f'loss {hist[0]["loss"]:.2f}', flush=True)
    if not all(torch.isfinite(torch.tensor(h['loss'])) for h in hist): fails.append('training loss not finite')

    # 3. dense coreset on the device (1% of n_feat), no N x N matrix
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    t = time.time(); idx = greedy_coreset(feats, ratio=0.01, device=dev, progress=False)
    print(f'coreset 1% of {n_feat} x 1024: {time.time() - t:.1f} s, peak GPU {peak_mb(dev):.0f} MB, {len(idx)} unique '
          f'{len(set(idx.tolist())) == len(idx)}', flush=True)
    if len(set(idx.tolist())) != len(idx): fails.append('coreset picked duplicates')

    # 4. a whole fit / predict / save / load on the device
    root = make_synthetic_dataset(tempfile.mkdtemp(), categories=['vial'], n_train=20 if a.small else 50, progress=False)
    train = AnomalyDataset.mvtec(root, 'vial', 'train'); test = AnomalyDataset.mvtec(root, 'vial', 'test')
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    m = ReConPatch('reconpatch', device=dev, pretrained=False, epochs=2, progress=False).fit(train)
    imgs = torch.stack([test[i]['image'] for i in range(8)])
    s, maps = m.predict(imgs)
    path = m.save(tempfile.mkdtemp() + '/m.rcp')
    s2, _ = ReConPatch.load(path, device=dev, progress=False).predict(imgs)
    print(f"fit on {dev}: {m.timings['fit_seconds']:.1f} s, stages {[(k, v['seconds']) for k, v in m.timings.items() if isinstance(v, dict)]}, "
          f'peak GPU {peak_mb(dev):.0f} MB; reload max |diff| {abs(s - s2).max():.2e}', flush=True)
    print(f"threshold: {m.threshold_rule} (calibration_folds stage: the fold models, f trained again for each on a GPU)", flush=True)
    if abs(s - s2).max() > 1e-4: fails.append('reloaded model scores differ')

    print('OK' if not fails else 'FAILED: ' + '; '.join(fails))
    sys.exit(1 if fails else 0)

if __name__ == '__main__': main()
