"""The installed serbench's version: recorded in every result (``serbench_version``) and shown
as ``serbench.__version__``; at the bottom layer so that report reads it without importing the
package root above it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("serbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
