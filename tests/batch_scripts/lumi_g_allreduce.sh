#!/bin/bash -l
#SBATCH --job-name=lumi-allreduce
#SBATCH --account=project_465000000
#SBATCH --partition=standard-g
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=7
#SBATCH --mem=0
#SBATCH --time=00:10:00
#SBATCH --output=%x-%j.out

# Two LUMI-G nodes: one task per GCD (8 per node), 7 cores each.
# A stand-in for a data-parallel training step: every rank checks what
# Slurm gave it, then "reduces" its rank number through a shared file.

export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
export MPICH_GPU_SUPPORT_ENABLED=1

# Each task sees only its own GCD, as the usual wrapper does on LUMI-G.
wrapper="select_gpu_${SLURM_JOB_ID}"
cat > "$wrapper" <<'WRAP'
#!/bin/bash
export ROCR_VISIBLE_DEVICES=$SLURM_LOCALID
exec "$@"
WRAP
chmod +x "$wrapper"

mkdir -p "reduce_${SLURM_JOB_ID}"
echo "job $SLURM_JOB_NAME on $SLURM_JOB_NUM_NODES nodes, $SLURM_NTASKS tasks"

srun "./$wrapper" python3 -c '
import os, socket
rank = int(os.environ["SLURM_PROCID"])
world = int(os.environ["SLURM_NTASKS"])
local = int(os.environ["SLURM_LOCALID"])
gcd = os.environ["ROCR_VISIBLE_DEVICES"]
threads = os.environ["OMP_NUM_THREADS"]
assert gcd == str(local), (gcd, local)
with open(os.path.join("reduce_" + os.environ["SLURM_JOB_ID"], str(rank)), "w") as f:
    f.write(str(rank))
print(f"rank {rank}/{world} local {local} gcd {gcd} threads {threads} on {socket.gethostname()}", flush=True)
'
status=$?

total=0
for part in "reduce_${SLURM_JOB_ID}"/*; do total=$((total + $(cat "$part"))); done
echo "allreduce sum $total"
rm -rf "$wrapper" "reduce_${SLURM_JOB_ID}"
exit $status
