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
from serbench.registry import available, create  # noqa: E402
from serbench.results import Result, load_result  # noqa: E402
from serbench.runner import run  # noqa: E402

__all__ = ["SerbenchError", "Result", "available", "create", "load_result", "run", "__version__"]
