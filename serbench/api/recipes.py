"""Training recipes: a method is its model *and* the way its paper trained it.

A downstream may declare a :class:`Recipe` (``DownstreamMeta.recipe``): overrides in the ``-o`` key
space (``train.lr``, ``upstream.finetune``, ``downstream.*``), the pooling and loss it was
trained with, and the encoder and protocol the paper used. ``--recipe paper`` (the default
for a method that has one) applies it; ``--recipe shared`` applies the harness's common
frozen-encoder recipe (every ``train.*`` at its default), for an equal-budget comparison of
heads. What the user sets with ``-o``, ``--pooling`` or ``--loss`` always wins. The paper's
encoder and protocol are suggestions: shown, never imposed.

A recipe too big for a demo corpus may name a ``demo`` variant (overrides applied on top
when the protocol declares ``ProtocolMeta(demo=True)``, as ``synthetic`` does); the run log and
``result.json`` say so.

The record in ``result.json`` (``config.recipe``) never shows a paper's value that did not
act: a value the user replaced (``-o``, ``--pooling``, ``--loss``) is listed in
``replaced_by_user``, and a value this run cannot apply (fine-tuning settings on a frozen
encoder, a setting meant for another test split) in ``not_applied`` with the reason. The
choices a paper leaves open are the plugin's own and are recorded as such (``own_choices``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from serbench.api.errors import SerbenchError
from serbench.api.specs import Param
from serbench.api.stage_recipes import StageRecipe

CHOICES = ("paper", "shared")


@dataclass(frozen=True)
class Recipe:
    """``overrides``: ``{"train.lr": 3e-5, ...}``; ``pooling``/``loss``: plugin names;
    ``suggested``: ``{"upstream": ..., "protocol": ..., "options": "-o protocol.x=y"}``;
    ``source``: where the values come from; ``demo``: overrides of the demo-sized variant
    and ``demo_why``, the reason it exists; ``own_choices``: what the paper leaves open and
    the plugin chose (``{"weight decay 0.01": "the harness's AdamW default; the paper names
    none"}``), never attributed to the paper; ``only_when_scored_on``: keys of ``overrides``
    that apply only to runs scored on one of the named test splits (a paper's protocol on its
    own corpus), else listed as not applied."""

    overrides: Mapping[str, Any]
    source: str
    pooling: str | None = None
    loss: str | None = None
    suggested: Mapping[str, str] = field(default_factory=dict)
    demo: Mapping[str, Any] = field(default_factory=dict)
    demo_why: str = ""
    own_choices: Mapping[str, str] = field(default_factory=dict)
    only_when_scored_on: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # every stage's optimiser, lr, schedule, epochs, batch and stopping rule, paper or own
    # (serbench.api.stage_recipes); resolved into config.recipe.stages
    stages: tuple[StageRecipe, ...] = ()

    def nested(self, demo: bool) -> dict[str, dict[str, Any]]:
        """The overrides as ``{section: {param: value}}``, with the demo variant on top."""
        out: dict[str, dict[str, Any]] = {}
        for key, value in {**self.overrides, **(self.demo if demo else {})}.items():
            section, _, name = key.partition(".")
            out.setdefault(section, {})[name] = value
        return out

    def describe(self) -> str:
        values = ", ".join(f"{k}={v}" for k, v in self.overrides.items())
        parts = [values]
        if self.pooling:
            parts.append(f"pooling {self.pooling}")
        if self.loss:
            parts.append(f"loss {self.loss}")
        return "; ".join(p for p in parts if p)


def suggestion(suggested: Mapping[str, str]) -> str:
    """``upstream wavlm_large, protocol iemocap_loso10``: what the paper ran, for display."""
    return ", ".join(f"{k} {v}" for k, v in suggested.items())


def choose(name: str | None, recipe: Recipe | None, downstream: str) -> str:
    """The recipe in force: ``paper`` for a method with one, else ``shared``."""
    if name is None:
        return "paper" if recipe is not None else "shared"
    if name not in CHOICES:
        raise SerbenchError(f"--recipe {name!r}: expected one of {', '.join(CHOICES)}")
    if name == "paper" and recipe is None:
        raise SerbenchError(f"--recipe paper: downstream {downstream} declares no paper recipe; use --recipe shared")
    return name


def merge(recipe_values: Mapping[str, Mapping[str, Any]], user: Mapping[str, Mapping[str, Any]]) -> dict:
    """Recipe overrides under the user's: ``-o`` always wins."""
    merged = {section: dict(values) for section, values in recipe_values.items()}
    for section, values in user.items():
        merged.setdefault(section, {}).update(values)
    return merged


# recipe settings that act only when the encoder is trained (the frozen path reads cached features)
FINE_TUNING_ONLY = {
    "upstream.lr": "the encoder is frozen on this run (cached features): there is no encoder to train",
    "train.crop_seconds": "the encoder is frozen on this run (cached features): random crops apply to "
                          "fine-tuning batches only",
}


def set_aside(values: dict[str, dict[str, Any]], paper: Recipe, user: Mapping[str, Mapping[str, Any]], *,
              upstream: str, trainable: bool, trains_encoder: bool, test_split: str) -> dict[str, str]:
    """Remove from ``values`` (the recipe's, by section) every setting this run cannot apply
    and return ``{key: why}``. ``trains_encoder``: the method always trains it; ``test_split``:
    what the run is scored on. A key the user set is the user's, never set aside here."""
    user_keys = {f"{section}.{k}" for section, kv in user.items() for k in kv}
    reasons: dict[str, str] = {}

    def drop(key: str, why: str) -> None:
        section, _, name = key.partition(".")
        if key not in user_keys and name in values.get(section, {}):
            values[section].pop(name)
            reasons[key] = why

    if values.get("upstream", {}).get("finetune") and not trainable:
        drop("upstream.finetune", f"{upstream} has no trainable weights")
    tuned = user.get("upstream", {}).get("finetune", values.get("upstream", {}).get("finetune", False))
    tuned = Param("finetune", bool, False, "").coerce(tuned, "-o upstream.finetune")  # "false" as typed on the CLI
    if not (trains_encoder or tuned):
        for key, why in FINE_TUNING_ONLY.items():
            drop(key, why)
    for key, splits in paper.only_when_scored_on.items():
        if test_split not in splits:
            drop(key, f"meant for runs scored on {' or '.join(splits)}; this run is scored on {test_split or 'its test split'}")
    return reasons


def record(chosen: str, paper: Recipe | None, values: Mapping, user: Mapping, demo: bool,
           not_applied: Mapping[str, str], pooling: str | None = None, loss: str | None = None) -> dict:
    """What result.json says about the recipe: which one, from where, what it set, which of its
    values the user replaced (``-o``; ``--pooling``/``--loss`` naming another plugin than the
    paper's), what it could not apply here, and the plugin's own choices. ``pooling``/``loss``:
    the user's ``--pooling``/``--loss`` (None when not given)."""
    rec: dict[str, Any] = {"name": chosen}
    if paper is None:
        return rec
    flat = {f"{section}.{k}": v for section, kv in values.items() for k, v in kv.items()}
    user_keys = {f"{section}.{k}" for section, kv in user.items() for k in kv}
    replaced = sorted(k for k in flat if k in user_keys)
    pooling_replaced = bool(paper.pooling and pooling and pooling != paper.pooling)
    loss_replaced = bool(paper.loss and loss and loss != paper.loss)
    replaced += ["pooling"] * pooling_replaced + ["loss"] * loss_replaced
    rec.update(
        source=paper.source,
        values={k: v for k, v in flat.items() if k not in user_keys},
        replaced_by_user=sorted(replaced),
        pooling=None if pooling_replaced else paper.pooling,
        loss=None if loss_replaced else paper.loss,
        suggested=dict(paper.suggested),
        demo=dict(paper.demo) if demo else None,
        demo_why=paper.demo_why if demo else None,
        not_applied=dict(not_applied),
        own_choices=dict(paper.own_choices),
    )
    return rec


def describe(config: Mapping) -> str:
    """One log line: the recipe in force and what it set (the line after the run's id in run.log)."""
    rec = config["recipe"]
    if rec["name"] == "shared":
        return "recipe shared: the harness's frozen-encoder training (train.* defaults)"
    values = ", ".join(f"{k}={v}" for k, v in rec["values"].items()) or "nothing left to set"
    line = f"recipe paper ({rec['source']}): {values}"
    replaced = rec["replaced_by_user"]
    if rec.get("pooling") or rec.get("loss") or {"pooling", "loss"} & set(replaced):
        line += "; " + ", ".join(f"{kind} {config[kind]['name']}" + (" (the user's)" if kind in replaced else "")
                                 for kind in ("pooling", "loss"))
    if rec["replaced_by_user"]:
        line += f"; replaced by the user: {', '.join(rec['replaced_by_user'])}"
    if rec["demo"]:
        line += f"; demo-sized variant for this protocol ({rec['demo_why']})"
    for key, why in rec["not_applied"].items():
        line += f"; {key} not applied: {why}"
    if config.get("train", {}).get("select_split") == "test":
        line += "; epochs selected on the scored split itself, as the paper did: optimistic, not a held-out score"
    if rec.get("own_choices"):
        line += "; the plugin's own choices (the paper leaves them open): " + ", ".join(rec["own_choices"])
    if rec["suggested"]:
        line += "; the paper ran " + suggestion(rec["suggested"])
    return line
