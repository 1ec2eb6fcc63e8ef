"""Every path inside a run directory, in one place.

A run directory (``runs/<run_id>/``) is what a run leaves on disk and what every reader
(``finish``, ``status``, ``compare``, ``fuse``, ``predict``, the site) finds again, so its layout
is spelt here alone: ``run`` writes through a :class:`RunDir` and ``report`` reads through one
(it lives in ``report``, which never imports ``run``, so both can). A job's files are named by
its :attr:`~serbench.api.work.Job.key`; a fold name is read from data, so it is checked to be
a plain file name before it becomes one (:func:`~serbench.report.safe_paths.checked_name`).

Layout::

    config.json  jobs.json  corpus.json  run.log  result.json  predictions.csv
    predictions_perturbed.csv
    folds/<key>.json .csv .dev.csv .perturbed.csv   a job's record and predictions
    failed/<key>.json                                a job that raised: error and traceback
    claims/<key>.claim                               which process runs a job
    models/<key>.json .safetensors                   a job's saved model (serbench predict)
    stages/<key>/                                    a staged method's checkpoints
    figures/                                         serbench plot's default output
    predict/                                         serbench predict's default output

(An executor plugin may keep its own logs in a folder of its own, such as ``slurm/``: plugins
see ``serbench.api`` alone.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from serbench.api.work import Job
from serbench.report.safe_paths import checked_name


@dataclass(frozen=True)
class RunDir:
    """The run directory at ``path`` (which need not exist yet)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        """The run id."""
        return self.path.name

    # the run's own files
    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def jobs_list(self) -> Path:
        """Every job of the run (``serbench status``, ``predict``); rewritten by every ``serbench run``."""
        return self.path / "jobs.json"

    @property
    def corpus(self) -> Path:
        """The corpus's digest and its audio's content hashes when the run started."""
        return self.path / "corpus.json"

    @property
    def log(self) -> Path:
        return self.path / "run.log"

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.csv"

    @property
    def predictions_perturbed(self) -> Path:
        return self.path / "predictions_perturbed.csv"

    # folders
    @property
    def folds(self) -> Path:
        return self.path / "folds"

    @property
    def failed(self) -> Path:
        return self.path / "failed"

    @property
    def claims(self) -> Path:
        return self.path / "claims"

    @property
    def models(self) -> Path:
        return self.path / "models"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def predict(self) -> Path:
        return self.path / "predict"

    # one job's files
    def _key(self, job: Job) -> str:
        fold, seed = job
        return Job(checked_name(fold, "fold", str(self.path)), int(seed)).key

    def job_record(self, job: Job) -> Path:
        """The job's metrics record: its presence (with valid checksums) marks the job done."""
        return self.folds / f"{self._key(job)}.json"

    def job_predictions(self, job: Job) -> Path:
        return self.folds / f"{self._key(job)}.csv"

    def job_dev(self, job: Job) -> Path:
        """Dev-set probabilities of the selected model: what fusion weights are fitted on."""
        return self.folds / f"{self._key(job)}.dev.csv"

    def job_perturbed(self, job: Job) -> Path:
        """The job's predictions on each --perturb condition's test set."""
        return self.folds / f"{self._key(job)}.perturbed.csv"

    def failure(self, job: Job) -> Path:
        """Where a job that raised leaves its error and traceback (removed once the job is done)."""
        return self.failed / f"{self._key(job)}.json"

    def claim(self, job: Job) -> Path:
        return self.claims / f"{self._key(job)}.claim"

    def model(self, job: Job) -> tuple[Path, Path]:
        """(description JSON, safetensors weights) of the job's saved model."""
        key = self._key(job)
        return self.models / f"{key}.json", self.models / f"{key}.safetensors"

    def stages(self, job: Job) -> Path:
        """The folder of a staged method's checkpoints for the job."""
        return self.path / "stages" / self._key(job)
