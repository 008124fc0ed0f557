"""The site catalogue: which sites and partitions the federation has, with sources."""
