#!/bin/bash
#SBATCH --job-name=leo-train
#SBATCH --account=EUHPC_D00_000
#SBATCH --partition=boost_usr_prod
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=8
#SBATCH --mem=480G
#SBATCH --time=00:15:00
#SBATCH --output=%x-%j.out
#SBATCH --error=%x-%j.err

# Leonardo Booster: 4 A100 per node, one task per GPU, 8 cores per task.
# The "training" is a few steps of a toy loss; rank 0 writes a checkpoint.

export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" 2>/dev/null | head -n 1)
export MASTER_PORT=29500
mkdir -p checkpoints

srun python3 -c '
import os, sys
rank = int(os.environ["SLURM_PROCID"])
world = int(os.environ["SLURM_NTASKS"])
local = int(os.environ["SLURM_LOCALID"])
gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
if not gpus:
    sys.exit(f"rank {rank}: no GPU visible")
loss = 1.0
for step in range(5):
    loss *= 0.5
print(f"rank {rank}/{world} local {local} gpus {gpus} loss {loss:.5f}", flush=True)
print(f"rank {rank} done", file=sys.stderr)
if rank == 0:
    name, job = os.environ["SLURM_JOB_NAME"], os.environ["SLURM_JOB_ID"]
    with open(f"checkpoints/{name}-{job}.ckpt", "w") as f:
        f.write(f"loss={loss}\n")
'
