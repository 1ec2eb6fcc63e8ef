"""gmp_atl: GMP-ATL of Pan et al. (Interspeech 2024): multi-task, pseudo-label and fine-tuning stages."""
