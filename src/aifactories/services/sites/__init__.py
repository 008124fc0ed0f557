"""Keeping the sites' Slurm accounts and usage in step with the books."""
