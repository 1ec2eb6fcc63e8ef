"""serbench: benchmark speech emotion recognition methods under fixed protocols.

The Python API the CLI is a thin layer over::

    import serbench
    serbench.available("upstreams")                  # names of one plugin kind
    serbench.create("upstream", "fbank", n_mels=40)  # build one plugin
    result = serbench.run_benchmark(upstream="fbank", downstream="superb", protocol="synthetic")
    result.summary["ua"]                             # {mean, std, ci95, ci95_bootstrap}
    request = serbench.RunRequest("fbank", "superb", protocol="synthetic", seeds=(0, 1))  # frozen
    result = serbench.run_request(request, out="runs")  # what run_benchmark calls
"""

from serbench.api.errors import SerbenchError
from serbench.api.version import __version__

# The rest is imported on first use (PEP 562): torch, pandas and scipy cost seconds, and
# ``serbench --help`` needs none of them. Plugins import none of this: their one import is
# ``serbench.api``. ``run_benchmark`` is the run command's function (``serbench.run`` is the
# run layer, a package).
_LAZY = {"available": ("serbench.run.registry", "available"), "create": ("serbench.run.registry", "create"),
         "Result": ("serbench.report.results", "Result"), "load_result": ("serbench.report.results", "load_result"),
         "run_benchmark": ("serbench.run.execute", "run_benchmark"), "RunRequest": ("serbench.run.request", "RunRequest"),
         "run_request": ("serbench.run.execute", "run"), "compare": ("serbench.report.compare", "compare")}

__all__ = ["SerbenchError", "Result", "RunRequest", "available", "compare", "create", "load_result", "run_benchmark", "run_request", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        module, attribute = _LAZY[name]
        return getattr(import_module(module), attribute)
    raise AttributeError(f"module 'serbench' has no attribute {name!r}")
