"""Slurm back-ends: ``slurm_cli`` (sbatch/squeue/sacct, :mod:`.cli`) and ``slurm_rest``
(slurmrestd). Both share the state table (:mod:`.states`), the job record reader
(:mod:`.jobrecord`), the batch job (:mod:`.batch`) and the accounting reader (:mod:`.sacct`).
"""
