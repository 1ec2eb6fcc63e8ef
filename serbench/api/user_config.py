"""Saved settings (corpus locations), so a run command works as written in a paper.

Lookup order for a corpus: ``--data``, then ``SERBENCH_DATA_<KEY>``, then the config file
(``$SERBENCH_CONFIG``, default ``$XDG_CONFIG_HOME/serbench/config.json``).
"""

from __future__ import annotations

import os
from pathlib import Path

from serbench.api.atomic import write_json
from serbench.api.errors import SerbenchError
from serbench.api.textfiles import read_json


def config_path() -> Path:
    if "SERBENCH_CONFIG" in os.environ:
        return Path(os.environ["SERBENCH_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "serbench" / "config.json"


def load() -> dict[str, str]:
    path = config_path()
    if not path.exists():
        return {}
    if path.is_dir():
        raise SerbenchError(f"SERBENCH_CONFIG / {path}: is a folder, expected a JSON file")
    data = read_json(path, ": fix or delete it")
    if not isinstance(data, dict):
        raise SerbenchError(f"{path}: expected a JSON object of settings")
    return data


def set_value(key: str, value: str) -> Path:
    data = load()
    data[key] = value
    path = config_path()
    write_json(path, data)
    return path


def unset_value(key: str) -> None:
    data = load()
    if key not in data:
        raise SerbenchError(f"config key {key!r} is not set ({config_path()})")
    del data[key]
    write_json(config_path(), data)


def env_var(data_key: str) -> str:
    return f"SERBENCH_DATA_{data_key.upper()}"


def data_location(data_key: str, given: str | Path | None) -> Path | None:
    """Where corpus ``data_key`` lives, or None when nothing says."""
    if given:
        return Path(given).expanduser()
    if os.environ.get(env_var(data_key)):
        return Path(os.environ[env_var(data_key)]).expanduser()
    saved = load().get(f"data.{data_key}")
    return Path(saved).expanduser() if saved else None


def cache_dir() -> Path:
    """``SERBENCH_CACHE``, default ``~/.cache/serbench``: generated corpora, later features."""
    path = Path(os.environ.get("SERBENCH_CACHE") or Path.home() / ".cache" / "serbench")
    if path.exists() and not path.is_dir():
        raise SerbenchError(f"SERBENCH_CACHE={path}: is a file, expected a folder")
    return path
