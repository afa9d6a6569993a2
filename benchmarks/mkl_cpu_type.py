"""Does MKL_DEBUG_CPU_TYPE=5 (Intel MKL's AVX2 code path on AMD CPUs) change a hourglass forward pass on
this CPU, in output or speed? Runs the same seeded forward pass in two fresh processes, one with the
variable, and prints the max abs difference of the heatmaps and the seconds per forward of each.

    python -m benchmarks.mkl_cpu_type [--stacks 2 --size 256 --batch 4 --repeats 3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r'''
import json, re, sys, time, dataclasses
import numpy as np
from lib.utils.threads import use_cpu_threads
import paddle
from lib.config import load_preset
from lib.models import build_model_from
stacks, size, batch, repeats, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
threads = use_cpu_threads()
paddle.seed(0)
model = build_model_from(dataclasses.replace(load_preset().model, num_stacks=stacks))
model.eval()
x = paddle.to_tensor(np.random.RandomState(0).rand(batch, 3, size, size).astype('float32'))
with paddle.no_grad():
    y = model(x)[-1].numpy()
    start = time.time()
    for _ in range(repeats):
        model(x)
seconds = (time.time() - start) / repeats
maps = open('/proc/self/maps').read()
libraries = sorted(set(m.split('/')[-1] for m in re.findall(r'/\S*(?:mkl|iomp|dnnl|openblas)\S*', maps)))
np.save(out, y)
print(json.dumps({'seconds': seconds, 'threads': threads, 'libraries': libraries}))
'''


def run(env_value, args, out):
    env = dict(os.environ)
    env.pop('MKL_DEBUG_CPU_TYPE', None)
    if env_value is not None:
        env['MKL_DEBUG_CPU_TYPE'] = env_value
    result = subprocess.run([sys.executable, '-c', CHILD, str(args.stacks), str(args.size), str(args.batch),
                             str(args.repeats), out], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--stacks', type=int, default=2)
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--repeats', type=int, default=3)
    args = p.parse_args(argv)
    vendor = next((line.split(':')[1].strip() for line in open('/proc/cpuinfo') if line.startswith('vendor_id')), '?')
    with tempfile.TemporaryDirectory() as tmp:
        default = run(None, args, os.path.join(tmp, 'default.npy'))
        forced = run('5', args, os.path.join(tmp, 'forced.npy'))
        again = run(None, args, os.path.join(tmp, 'again.npy'))     # run-to-run noise, for scale
        heatmaps = {name: np.load(os.path.join(tmp, f'{name}.npy')) for name in ('default', 'forced', 'again')}
    difference = np.abs(heatmaps['default'] - heatmaps['forced']).max()
    noise = np.abs(heatmaps['default'] - heatmaps['again']).max()
    scale = np.abs(heatmaps['default']).max()
    print(f'CPU vendor {vendor}; Paddle loads {", ".join(default["libraries"])}; {default["threads"]} threads')
    print(f'hourglass{args.stacks} {args.size}px batch {args.batch}, heatmaps up to {scale:.3g}: max abs difference '
          f'{difference:.3g} with MKL_DEBUG_CPU_TYPE=5 ({noise:.3g} between two default runs); '
          f'{default["seconds"]:.3f} and {again["seconds"]:.3f} s/forward by default, {forced["seconds"]:.3f} s with '
          f'MKL_DEBUG_CPU_TYPE=5 (speed-up x{(default["seconds"] + again["seconds"]) / 2 / forced["seconds"]:.2f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
