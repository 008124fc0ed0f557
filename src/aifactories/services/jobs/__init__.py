"""Jobs as users see them: submit (with #SBATCH directives), list, show, cancel; balances; the
catalogue of sites.
"""
