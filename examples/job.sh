#!/bin/bash
#SBATCH --job-name=demo-finetune
#SBATCH --gres=gpu:A100:4
#SBATCH --nodes=1
#SBATCH --time=01:00:00
#SBATCH --output=finetune-%j.out
#AIF --countries=IT,LU,SI,CZ
python3 train.py --steps 10
