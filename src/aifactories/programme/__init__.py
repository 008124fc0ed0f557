"""The access programme's pure rules: modes, eligibility, review, the allocation optimiser."""
