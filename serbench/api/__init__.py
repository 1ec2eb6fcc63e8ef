"""The contract between serbench and its plugins: the only part of serbench a plugin imports.

    from serbench.api import Param, Spec, hookimpl, DownstreamMeta

Hooks (:mod:`serbench.api.hookspecs`) return :class:`Spec` lists; each kind's typed ``meta``
is in :mod:`serbench.api.meta`; the building blocks plugins share (:mod:`~serbench.api.blocks`,
:mod:`~serbench.api.kmeans`, :mod:`~serbench.api.folds`, :mod:`~serbench.api.textfiles`,
:mod:`~serbench.api.audio`, ...) are modules of this package. Nothing here imports the layers
above it (``report``, ``run``, ``cli``).
"""

from serbench.api.errors import SerbenchError
from serbench.api.hookspecs import hookimpl
from serbench.api.meta import DownstreamMeta, ExecutorMeta, LossMeta, PerturbationMeta, PoolingMeta, ProtocolMeta, UpstreamMeta
from serbench.api.specs import Param, Spec

__all__ = ["DownstreamMeta", "ExecutorMeta", "LossMeta", "Param", "PerturbationMeta", "PoolingMeta", "ProtocolMeta", "SerbenchError", "Spec",
           "UpstreamMeta", "hookimpl"]
