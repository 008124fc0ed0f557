"""A stand-in training script for the demo: prints what a job sees, then "trains".

    aif submit --gpus 8 --time 2:00:00 -- python examples/train.py --steps 20
"""

import argparse
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=10)
parser.add_argument("--step-seconds", type=float, default=0.5)
args = parser.parse_args()

print(f"job {os.environ.get('AIF_JOB_ID')} at {os.environ.get('AIF_SITE')} "
      f"({os.environ.get('AIF_PARTITION')}), GPUs {os.environ.get('CUDA_VISIBLE_DEVICES')}",
      flush=True)
loss = 2.5
for step in range(1, args.steps + 1):
    time.sleep(args.step_seconds)
    loss *= 0.9
    print(f"step {step}/{args.steps} loss {loss:.4f}", flush=True)
print("done", flush=True)
