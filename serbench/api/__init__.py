"""The contract between serbench and its plugins: the only part of serbench a plugin imports.

    from serbench.api import DownstreamMeta, Param, Spec, hookimpl

One contract per plugin kind, each documenting shapes, dtypes, padding and determinism:
:class:`Upstream` (:mod:`~serbench.api.upstream`), :class:`Pooling`, :class:`Loss`,
:class:`Downstream` with its :class:`DownstreamContext` and :class:`Batch`, :class:`Protocol`
with :class:`Fold` and :class:`Utterance` (:mod:`~serbench.api.protocol`), :class:`Stage`
(with its :class:`Optimiser` and :class:`Schedule`) and :class:`StageInput`, :class:`Executor`
and the :class:`WorkUnit` it runs. Hooks
(:mod:`~serbench.api.hookspecs`) return :class:`Spec` lists; each kind's typed ``meta`` is in
:mod:`~serbench.api.meta`. The building blocks plugins share are modules of this package:
``blocks`` (layer weights, masked pooling and self-attention, cosine classifier, class
weights), ``kmeans``, ``folds``, ``textfiles``, ``audio``, ``recipes``, ``stage_recipes``,
``devices``, ``user_config``, ``atomic``, ``errors``. Nothing here imports the layers above
(``report``, ``run``, ``cli``). The torch-based names load on first use (PEP 562), so that
registering a plugin imports no torch.
"""

from serbench.api.errors import ContractError, SerbenchError
from serbench.api.hookspecs import hookimpl
from serbench.api.meta import DownstreamMeta, ExecutorMeta, LossMeta, PerturbationMeta, PoolingMeta, ProtocolMeta, UpstreamMeta
from serbench.api.recipes import Recipe
from serbench.api.specs import Param, Spec
from serbench.api.stage_recipes import StageRecipe

_LAZY = {
    "Upstream": "serbench.api.upstream", "UpstreamOutput": "serbench.api.upstream",
    "Pooling": "serbench.api.pooling", "Loss": "serbench.api.loss",
    "Downstream": "serbench.api.downstream", "DownstreamContext": "serbench.api.downstream",
    "Batch": "serbench.api.batch",
    "Protocol": "serbench.api.protocol", "Fold": "serbench.api.protocol", "Utterance": "serbench.api.protocol",
    "Stage": "serbench.api.stages", "StageInput": "serbench.api.stages", "Optimiser": "serbench.api.stages",
    "Schedule": "serbench.api.stages",
    "Executor": "serbench.api.executor", "WorkUnit": "serbench.api.work", "Job": "serbench.api.work",
    "Shard": "serbench.api.work", "Reporter": "serbench.api.progress",
}

__all__ = ["ContractError", "DownstreamMeta", "ExecutorMeta", "LossMeta", "Param", "PerturbationMeta", "PoolingMeta",
           "ProtocolMeta", "Recipe",
           "SerbenchError", "Spec", "StageRecipe", "UpstreamMeta", "hookimpl", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'serbench.api' has no attribute {name!r}")
