"""Where a transformers checkpoint's weights are, and their fingerprint: shared by the upstreams
that read Hugging Face checkpoints (wav2vec2-style encoders, Whisper).

Weights come from the local Hugging Face cache or a folder, never downloaded at run time; the
fingerprint (repo id and snapshot revision, or the folder and a digest of its files) keys the
feature cache and is recorded in results.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from serbench.api.errors import SerbenchError


def _weights_digest(folder: Path) -> str:
    files = sorted(p for p in folder.iterdir() if p.suffix in (".json", ".safetensors", ".bin"))
    # hashed once per process per file state: fine-tuning builds a fresh encoder for every job
    return _digest(tuple((p, p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@lru_cache(maxsize=16)
def _digest(files: tuple) -> str:
    digest = hashlib.sha256()
    for path, _, _ in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def locate(target: str, scheme: str = "hf") -> tuple[Path, str]:
    """(local folder, fingerprint) for a repo id in the local cache or a directory; ``scheme``
    is the upstream prefix the how-to-get-them message suggests for a folder."""
    path = Path(target).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SerbenchError(f"{path}: no config.json (expected a transformers checkpoint folder)")
        return path, f"dir:{path.resolve()}@sha256:{_weights_digest(path)}"
    if target.startswith((".", "/", "~")):
        raise SerbenchError(f"{target}: no such checkpoint directory")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(target, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        home = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise SerbenchError(
            f"weights for {target} are not in the local Hugging Face cache ({home}); serbench never downloads "
            f"at run time. Where there is a network, run: hf download {target} "
            f"(or: huggingface-cli download {target}); or pass --upstream {scheme}:/path/to/checkpoint"
        ) from None
    return folder, f"{target}@{folder.name}"
