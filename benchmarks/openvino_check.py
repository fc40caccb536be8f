#!/usr/bin/env python
"""Does OpenVINO read the exported ONNX file and score as `predict` does? (A bonus beside onnxruntime; not a dependency.)

    pip install openvino && python benchmarks/openvino_check.py      # PatchCore and ReConPatch, resnet18 (random), 224 px

For each method: fit on the synthetic weave, export with the parity check (onnxruntime), then compile the same file with
OpenVINO on the CPU and compare its image scores and maps with `predict` on the test images, with 14_export's tolerances
(scores within 1e-4 of the largest score, maps within 1e-3 of their range, the same decisions away from the
threshold), and time both runtimes on the same batches (median of paired passes, ratio OpenVINO / onnxruntime).
"""
import argparse, json, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np, torch

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--methods', nargs='+', default=['patchcore', 'reconpatch']); p.add_argument('--threads', type=int, default=1)
    p.add_argument('--repeats', type=int, default=5); p.add_argument('--image-size', type=int, default=224)
    a = p.parse_args()
    try: import openvino as ov
    except ImportError: sys.exit('openvino is not installed: pip install openvino')
    import onnxruntime as ort
    from reconpatch_nb.synthetic import make_synthetic_dataset
    from reconpatch_nb.data import AnomalyDataset
    from reconpatch_nb.model import ReConPatch
    from reconpatch_nb.export import export_onnx
    torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp())
    root = make_synthetic_dataset(tmp/'data', categories=['weave'], n_train=30, progress=False)
    size = dict(resize=int(round(a.image_size * 256 / 224)), crop=a.image_size)
    train, test = (AnomalyDataset.mvtec(root, 'weave', s, **size) for s in ('train', 'test'))
    x = torch.stack([test[i]['image'] for i in range(len(test))]); xs = x.numpy()
    core = ov.Core(); rows = []
    for meth in a.methods:
        m = ReConPatch(meth, progress=False, backbone='resnet18', pretrained=False, threads=a.threads, **size).fit(train)
        rep = export_onnx(m, tmp/f'{meth}.onnx', check_images=x[:8])
        cm = core.compile_model(str(tmp/f'{meth}.onnx'), 'CPU', {'INFERENCE_NUM_THREADS': a.threads, 'INFERENCE_PRECISION_HINT': 'f32'})
        sess = ort.InferenceSession(str(tmp/f'{meth}.onnx'), providers=['CPUExecutionProvider'],
                                    sess_options=(lambda o: (setattr(o, 'intra_op_num_threads', a.threads), o)[1])(ort.SessionOptions()))
        run_ov = lambda b: [cm(b)[cm.output(i)] for i in range(2)]
        run_ort = lambda b: sess.run(None, {'images': b})
        so, mo = (np.concatenate(v) for v in zip(*[run_ov(xs[s:s + 8]) for s in range(0, len(xs), 8)]))
        sp, mp = m.predict(x)
        scale, span, thr = float(np.abs(sp).max()), float(mp.max() - mp.min()), m.threshold
        clear = np.abs(sp - thr) > 1e-4 * scale
        r = dict(method=meth, images=len(sp), onnxruntime_score_rel_diff=rep['score_rel_diff'],
                 openvino_score_rel_diff=float(np.abs(so - sp).max() / scale), openvino_map_rel_diff=float(np.abs(mo - mp).max() / span),
                 decisions_differ=int(((so >= thr) != (sp >= thr))[clear].sum()))
        t = {'ov': [], 'ort': []}
        for _ in range(1 + a.repeats):   # the first pass warms up; passes alternate so both see the same load
            for k, f in (('ov', run_ov), ('ort', run_ort)):
                t0 = time.perf_counter()
                for s in range(0, len(xs), 8): f(xs[s:s + 8])
                t[k].append(time.perf_counter() - t0)
        r['openvino_over_onnxruntime'] = statistics.median(o / r_ for o, r_ in zip(t['ov'][1:], t['ort'][1:]))
        r['ok'] = r['openvino_score_rel_diff'] <= 1e-4 and r['openvino_map_rel_diff'] <= 1e-3 and r['decisions_differ'] == 0
        rows.append(r); print(json.dumps(r), flush=True)
    print(f"openvino {ov.__version__}: " + ('every method within the tolerances' if all(r['ok'] for r in rows) else 'NOT within the tolerances'))
    sys.exit(0 if all(r['ok'] for r in rows) else 1)

if __name__ == '__main__': main()
