"""serbench: benchmark speech emotion recognition methods under fixed protocols.

The Python API the CLI is a thin layer over::

    import serbench
    serbench.available("upstreams")                  # names of one plugin kind
    serbench.create("upstream", "fbank", n_mels=40)  # build one plugin
    result = serbench.run(upstream="fbank", downstream="superb", protocol="synthetic")
    result.summary["ua"]                             # {mean, std, ci95, ci95_bootstrap}
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("serbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

from serbench.errors import SerbenchError  # noqa: E402

# The rest is imported on first use (PEP 562): torch, pandas and scipy cost seconds, and
# ``serbench --help`` needs none of them.
_LAZY = {"available": "serbench.registry", "create": "serbench.registry", "Result": "serbench.results",
         "load_result": "serbench.results", "run": "serbench.execute", "compare": "serbench.compare",
         # what a plugin author needs: ``from serbench import hookimpl, Spec, Param`` (and a kind's Meta)
         "hookimpl": "serbench.hookspecs", "Spec": "serbench.specs", "Param": "serbench.specs",
         **{kind: "serbench.meta" for kind in ("UpstreamMeta", "DownstreamMeta", "PoolingMeta", "LossMeta",
                                               "ProtocolMeta", "ExecutorMeta", "PerturbationMeta")}}

__all__ = ["SerbenchError", "DownstreamMeta", "ExecutorMeta", "LossMeta", "Param", "PerturbationMeta", "PoolingMeta", "ProtocolMeta", "Result",
           "Spec", "UpstreamMeta", "available", "compare", "create", "hookimpl", "load_result",
           "run", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'serbench' has no attribute {name!r}")
