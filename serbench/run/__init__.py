"""Running benchmarks: a plan checked before anything is written, then features (cache,
fine-tuning), (fold, seed) jobs and their claims, the trainer and the stages, the executor
seam. Writes what a run leaves on disk through :mod:`serbench.report`; builds on
:mod:`serbench.api`."""
