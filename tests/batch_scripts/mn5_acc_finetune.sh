#!/bin/bash
#SBATCH --job-name=mn5-finetune
#SBATCH --account=ehpc000
#SBATCH --qos=acc_debug
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=4
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=20
#SBATCH --exclusive
#SBATCH --time=00:20:00
#SBATCH --output=finetune_%j.out
#SBATCH --error=finetune_%j.err

# MareNostrum 5 ACC: a whole node (4 H100, 80 cores), one task per GPU.
# Each task "fine-tunes" on its shard of a small generated data set.

export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
echo "shards: $SLURM_NTASKS, cores per shard: $SLURM_CPUS_PER_TASK"

srun bash -c '
set -e
shard=$SLURM_PROCID
seq $((shard * 100)) $((shard * 100 + 99)) > "shard_${SLURM_JOB_ID}_${shard}.txt"
python3 - "$shard" "shard_${SLURM_JOB_ID}_${shard}.txt" <<"PY"
import os, sys
shard, path = int(sys.argv[1]), sys.argv[2]
values = [int(v) for v in open(path)]
mean = sum(values) / len(values)
tasks, cores = os.environ["SLURM_NTASKS"], os.environ["SLURM_CPUS_PER_TASK"]
print(f"shard {shard} of {tasks} mean {mean} cores {cores}")
PY
rm -f "shard_${SLURM_JOB_ID}_${shard}.txt"
'
