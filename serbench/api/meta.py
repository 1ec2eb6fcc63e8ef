"""What a Spec declares about itself beyond its parameters: one frozen dataclass per kind.

A plugin writes ``meta=DownstreamMeta(default_loss="ce", ...)``, or a plain dict with the same
keys; the registry turns the dict into its kind's dataclass when the plugin registers, so an
unknown key (a typo) or a value of the wrong type is refused there, naming the plugin, and
every reader gets attributes with defaults (``spec.meta.default_loss``), never a missing key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from serbench.api.errors import SerbenchError, did_you_mean
from serbench.api.recipes import Recipe

_NEEDS_DOC = ("what the plugin needs beyond features and labels (serbench.run.needs: attributes, gender, "
              "transcript, soft_labels, vad), or a function of its parameters returning that")


def _key(doc: str, types: Any, choices: tuple = ()) -> dict:
    """Field metadata: what the key means, the types it accepts and, if closed, its values."""
    return {"doc": doc, "types": types if isinstance(types, tuple) else (types,), "choices": choices}


def _needs() -> Any:
    return field(default=(), metadata=_key(_NEEDS_DOC, (tuple, list, Callable)))


class _Meta:
    """Type and value checks shared by every kind's dataclass."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value == f.default:
                continue
            types, choices = f.metadata["types"], f.metadata["choices"]
            if not (isinstance(value, tuple(t for t in types if t is not Callable))
                    or (Callable in types and callable(value))):
                raise SerbenchError(f"meta {f.name!r} is {type(value).__name__}, expected {f.metadata['doc']}")
            if choices and value not in choices:
                raise SerbenchError(f"meta {f.name!r} is {value!r}, expected one of {', '.join(map(repr, choices))}")
            if isinstance(value, list):  # frozen means frozen: a list shared with the plugin module becomes a tuple
                object.__setattr__(self, f.name, tuple(value))


@dataclass(frozen=True)
class UpstreamMeta(_Meta):
    trainable: bool = field(default=True, metadata=_key(
        "false: no weights to fine-tune (a recipe's upstream.finetune is then not applied)", bool))


@dataclass(frozen=True)
class DownstreamMeta(_Meta):
    default_pooling: str = field(default="", metadata=_key("pooling used when the user names none", str))
    default_loss: str = field(default="", metadata=_key("loss used when the user names none", str))
    own_pooling: str = field(default="", metadata=_key(
        "a description: the method pools by itself and refuses --pooling", str))
    upstream: str = field(default="frozen", metadata=_key(
        "'finetune' (or 'frozen'): the method trains its encoder (refused on an upstream without weights)", str,
        ("frozen", "finetune")))
    spec_augment: bool | None = field(default=None, metadata=_key(
        "sets upstream.spec_augment unless the user does", bool))
    needs: Any = _needs()
    paper: str = field(default="", metadata=_key("the paper, short (shown in tables)", str))
    dimensions: tuple = field(default=(), metadata=_key(
        "what it predicts under --task dimensional: ('*',) any dimension the protocol gives (built with the dimension "
        "names as its classes, logits[:, k] predicts dimension k), or the names of its own [B] outputs "
        "(outputs['valence'], ...); empty: it refuses --task dimensional", (tuple, list)))
    recipe: Recipe | None = field(default=None, metadata=_key(
        "the paper's training recipe, a serbench.api.recipes.Recipe", Recipe))
    reported: tuple = field(default=(), metadata=_key(
        "the paper's numbers: rows with protocol, split, metric, value, ci95, unit, encoder, pooling, corpus, release "
        "and n_test (None: the paper does not say), settings (the run values that define the row's variant) and "
        "checkpoint (the Hugging Face id of the paper's encoder, or 'unclear: <evidence>'; a run on another is marked), "
        "train_split (what the paper trained on, when a run's dev carve-out trains on less: the share is shown)",
        (tuple, list)))


@dataclass(frozen=True)
class PoolingMeta(_Meta):
    needs: Any = _needs()


@dataclass(frozen=True)
class LossMeta(_Meta):
    needs: Any = _needs()
    targets: str = field(default="labels", metadata=_key(
        "'soft': trains on the raters' label distributions (batch['soft_labels']); its factory then also receives "
        "train_distributions, the training utterances' distributions [N, K] (or 'labels')", str, ("labels", "soft")))
    tasks: tuple = field(default=("categorical",), metadata=_key(
        "the tasks it trains (serbench.report.dimensions.TASKS): ('categorical',), ('dimensional',) for a regression loss "
        "reading outputs['values'] and batch['targets'], or both for a multitask loss", (tuple, list)))


@dataclass(frozen=True)
class ProtocolMeta(_Meta):
    data_key: str = field(default="", metadata=_key(
        "the corpus's name in 'serbench config set data.KEY' and SERBENCH_DATA_KEY (empty: needs no data)", str))
    default_loss: str = field(default="", metadata=_key(
        "loss used when neither the user nor the downstream names one", str))
    demo: bool = field(default=False, metadata=_key("a small demonstration corpus: a recipe's demo values apply", bool))
    test_split: str = field(default="", metadata=_key(
        "what the test split is (reported rows pair on it); {param} is filled in", str))
    folds: int = field(default=0, metadata=_key(
        "how many folds the protocol always makes (0: known once the corpus is read); a dry run counts jobs "
        "without the corpus", int))
    reads_protocols: bool = field(default=False, metadata=_key(
        "the factory reads other registered protocols' corpora: the host passes it load_protocol= (a "
        "serbench.api.protocol.ProtocolLoader)", bool))


@dataclass(frozen=True)
class ExecutorMeta(_Meta):
    pass


@dataclass(frozen=True)
class PerturbationMeta(_Meta):
    pass


BY_KIND: dict[str, type] = {"upstream": UpstreamMeta, "downstream": DownstreamMeta, "pooling": PoolingMeta,
                            "loss": LossMeta, "protocol": ProtocolMeta, "executor": ExecutorMeta,
                            "perturbation": PerturbationMeta}


def typed(kind: str, meta: Any) -> Any:
    """``meta`` as ``kind``'s dataclass: a dict is checked key by key (an unknown key is refused
    with a suggestion), an instance of another kind's dataclass is refused."""
    cls = BY_KIND[kind]
    if isinstance(meta, cls):
        return meta
    if not isinstance(meta, Mapping):
        raise SerbenchError(f"meta is {type(meta).__name__}, expected a dict or serbench.api.meta.{cls.__name__}")
    known = [f.name for f in fields(cls)]
    for key in meta:
        if key not in known:
            raise SerbenchError(f"meta key {key!r} is not one a {kind} declares{did_you_mean(str(key), known)}; "
                                f"known: {', '.join(known) or 'none'}")
    return cls(**meta)


def keys(kind: str) -> list[tuple[str, Any, str]]:
    """``[(key, default, meaning)]`` a ``kind`` may declare, for the generated reference."""
    return [(f.name, f.default, f.metadata["doc"]) for f in fields(BY_KIND[kind])]
