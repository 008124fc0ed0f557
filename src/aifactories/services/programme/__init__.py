"""The access programme, from a call to a closed allocation: calls, proposals, checks, peer review,
awards, projects and members, allocations.
"""
