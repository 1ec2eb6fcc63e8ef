"""``-o report.*``: how a finished run's predictions are scored beyond the accuracy metrics.

These options change what ``result.json`` reports, never what is trained or predicted, so they
are not part of a run's id (:func:`serbench.run.plan.identity`): running the same command again
with another threshold rescores the run's job files without training anything.
"""

from __future__ import annotations

from serbench.api.specs import Param
from serbench.report.groups import FAIRNESS_THRESHOLD, PRECISION_PER_CLASS_THRESHOLD, RECALL_PER_CLASS_THRESHOLD

REPORT_PARAMS = (
    Param("fairness_threshold", float, FAIRNESS_THRESHOLD,
          "fairness flag: largest |UA (or CCC) of one sex - that of all test utterances| (audEERING ser-tests)",
          bounds="[0, 1]"),
    Param("fairness_recall_per_class", float, RECALL_PER_CLASS_THRESHOLD,
          "fairness flag: largest |recall of a class for one sex - for all| (audEERING ser-tests; categorical)",
          bounds="[0, 1]"),
    Param("fairness_precision_per_class", float, PRECISION_PER_CLASS_THRESHOLD,
          "fairness flag: largest |precision of a class for one sex - for all| (audEERING ser-tests; categorical)",
          bounds="[0, 1]"),
    Param("temperature_scaling", bool, False,
          "also report calibration after one temperature per job, fitted on its dev predictions only"),
)
