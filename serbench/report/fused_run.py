"""The fused run a ``serbench fuse`` writes, categorical (:mod:`serbench.report.fusion`) or
dimensional (:mod:`serbench.report.dimension_fusion`): its ``config.json`` and its result,
through the same ``finish`` a run uses."""

from __future__ import annotations

from pathlib import Path

from serbench.api.atomic import write_json
from serbench.api.work import Job
from serbench.report.results import Result, finish
from serbench.report.rundir import RunDir


def speaker_record(runs: list[Result]) -> dict | None:
    """The fused run's ``speakers`` record, from its source runs' (None when one of them was made
    before results kept it): fused predictions are no more speaker-independent, and their
    speakers no better known, than the least of the runs they come from."""
    records = [r.data.get("speakers") for r in runs]
    if not all(isinstance(record, dict) for record in records):
        return None
    return {"source": " / ".join(dict.fromkeys(str(record.get("source")) for record in records)),
            "known": all(record.get("known") is not False for record in records),
            "speaker_dependent": any(record.get("speaker_dependent") is True for record in records)}


def finish_fused(out: Path, runs, jobs, classes: list[str], metric: str, key: dict, left_out: dict,
                 weights_by_job: dict, extra: dict | None = None, **fields):
    """The fused run's ``config.json`` (its inputs and weights) and ``result.json``, through the
    same ``finish`` a run uses; categorical and dimensional fusion alike. ``extra``: entries both
    files gain (the dimensional weighting); ``fields``: ``finish``'s own (``dimensions``)."""
    first = runs[0].data
    extra = extra or {}
    write_json(RunDir(out).config, {"fused_runs": [str(r.run_dir) for r in runs], "weights": weights_by_job, **extra})
    speakers = speaker_record(runs)
    return finish(
        out, [Job(*job) for job in jobs], classes, metric, speakers_known=speakers is None or speakers["known"],
        **({"speakers": speakers} if speakers else {}), **fields,
        config={
            "upstream": "+".join(sorted({r.data["config"]["upstream"] for r in runs})),
            "downstream": "fusion(" + ", ".join(r.run_id for r in runs) + ")",
            "pooling": None, "loss": None,
            "protocol": first["config"]["protocol"],
            "seeds": sorted({s for _, s in jobs}),
            "overrides": {},
            "fused_runs": [r.run_id for r in runs],
            **extra,
            "jobs_used": {"folds": list(dict.fromkeys(f for f, _ in jobs)), "seeds": sorted({s for _, s in jobs})},
            "left_out": left_out,
        },
        plugins={"fusion": "1"},
        comparability=key,
        environment=first["environment"],
        timing={"total_s": 0.0, "features_s": 0.0},
    )
