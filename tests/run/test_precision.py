"""``-o upstream.precision``: the frozen extraction's precision, as a choice (issue 27 item 3).

The cache folder and comparability key are checked against hashes computed here from their
documented identities; bf16 extraction against a plain forward of the same encoder under
``torch.autocast``; refusals by replacing the one capability check (the forward is real)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

import serbench
from serbench.api.errors import SerbenchError
from serbench.api.protocol import Utterance
from serbench.report.results import comparability, comparability_difference
from serbench.run import precision
from serbench.run.cache import FORMAT_VERSION, CacheKey
from serbench.run.features import extract
from serbench.run.plan import plan
from serbench.run.registry import create, registry
from serbench.run.request import RunRequest

from lookalike import tiny_wav

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
SMALL = ["protocol.per_class=1", "train.max_epochs=1"]


def _sha16(parts) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def test_default_precision_keeps_the_cache_folder_and_another_gets_its_own():
    key = CacheKey("tiny", "tiny-wavlm-l2-d32-h2-seed0", (0, 2), "float16", 32, 50.0, "2")
    # the identity documented before the option existed: [format, fingerprint, layers, dtype, version]
    assert key.folder_name == _sha16([FORMAT_VERSION, "tiny-wavlm-l2-d32-h2-seed0", [0, 2], "float16", "2"])
    bf16 = CacheKey(**{**key.__dict__, "precision": precision.cache_field("bf16", CPU)})
    assert bf16.folder_name == _sha16([FORMAT_VERSION, "tiny-wavlm-l2-d32-h2-seed0", [0, 2], "float16", "2",
                                       {"precision": "bf16"}])
    assert bf16.folder_name != key.folder_name
    # each device's own default is the folder it always used; the other precision is marked
    assert precision.cache_field("fp32", CPU) == "" and precision.cache_field("bf16", CUDA) == ""
    assert precision.cache_field("fp32", CUDA) == "fp32"
    fp32_cuda = CacheKey(**{**key.__dict__, "precision": "fp32"})
    assert len({key.folder_name, bf16.folder_name, fp32_cuda.folder_name}) == 3
    noisy = CacheKey(**{**key.__dict__, "perturbation": "noise#ab", "precision": "bf16"})
    assert noisy.folder_name == _sha16([FORMAT_VERSION, "tiny-wavlm-l2-d32-h2-seed0", [0, 2], "float16", "2",
                                        "noise#ab", {"precision": "bf16"}])


def test_auto_resolves_to_what_serbench_did_before():
    assert precision.resolve("auto", CPU) == "fp32"
    assert precision.resolve("auto", CUDA) == "bf16"
    assert precision.resolve("bf16", CPU) == "bf16" and precision.resolve("fp32", CUDA) == "fp32"


def test_comparability_key_has_precision_only_for_bf16():
    parts = ("synthetic", "abc", ["a", "b"], "test session")
    plain = comparability(*parts)
    hand = {"protocol": "synthetic", "corpus": "abc", "classes": ["a", "b"], "test_split": "test session",
            "metrics": "serbench.metrics/1"}
    assert plain["key"] == hashlib.sha256(json.dumps(hand, sort_keys=True).encode()).hexdigest()[:10]
    assert comparability(*parts, precision="fp32")["key"] == plain["key"]  # fp32 results keep their keys
    bf16 = comparability(*parts, precision="bf16")
    assert bf16["key"] == hashlib.sha256(json.dumps(hand | {"precision": "bf16"}, sort_keys=True).encode()).hexdigest()[:10]
    assert bf16["key"] != plain["key"]
    assert comparability_difference(plain, bf16).startswith("precision fp32 vs bf16")
    assert comparability_difference(plain, bf16, ignore=("precision",)) == ""


def test_default_leaves_the_run_configuration_as_it_was():
    default = plan(RunRequest("tiny", "superb", protocol="synthetic", overrides=SMALL))
    assert "precision" not in default.config["upstream"]["params"]  # the run id hashes what it hashed before
    chosen = plan(RunRequest("tiny", "superb", protocol="synthetic", overrides=SMALL + ["upstream.precision=bf16"]))
    assert chosen.config["upstream"]["params"]["precision"] == "bf16"
    assert chosen.run_id != default.run_id
    with pytest.raises(SerbenchError, match="upstream.precision: 'fp16' is not one of"):
        plan(RunRequest("tiny", "superb", protocol="synthetic", overrides=SMALL + ["upstream.precision=fp16"]))


def test_bf16_refused_for_an_upstream_without_a_neural_forward():
    with pytest.raises(SerbenchError, match="upstream fbank computes in fp32 only") as caught:
        precision.check("bf16", CPU, create("upstream", "fbank"), "fbank")
    assert "\n" not in str(caught.value)
    assert precision.check("fp32", CPU, create("upstream", "fbank"), "fbank") == "fp32"


def test_bf16_refused_on_a_device_without_bf16(monkeypatch):
    tiny = create("upstream", "tiny")
    monkeypatch.setattr(precision, "device_supports_bf16", lambda device: False)
    with pytest.raises(SerbenchError, match=r"upstream.precision=bf16 on cpu: this CPU has no bf16 support"):
        precision.check("bf16", CPU, tiny, "tiny")
    with pytest.raises(SerbenchError, match=r"on cuda: this GPU has no bf16 support"):
        precision.check("bf16", CUDA, tiny, "tiny")
    assert precision.check("auto", CPU, tiny, "tiny") == "fp32"  # the default is never refused


def test_the_run_refuses_before_it_starts(tmp_path, monkeypatch):
    with pytest.raises(SerbenchError, match="upstream fbank computes in fp32 only"):
        serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path,
                               overrides=SMALL + ["upstream.precision=bf16"])
    with pytest.raises(SerbenchError, match="a fine-tuned encoder runs in the training precision"):
        serbench.run_benchmark("tiny", "superb", protocol="synthetic", out=tmp_path,
                               overrides=SMALL + ["upstream.finetune=true", "upstream.precision=bf16"])
    assert not any(tmp_path.rglob("config.json"))  # nothing was started


def _utterances(folder, n=3):
    out = []
    for k in range(n):
        tiny_wav(folder / f"{k}.wav", seed=k, seconds=0.6 + 0.2 * k)
        out.append(Utterance(id=f"u{k}", path=folder / f"{k}.wav", label="a", speaker="s"))
    return out


def _reference(model, wav: np.ndarray, bf16: bool) -> np.ndarray:
    """Every hidden state of one utterance from transformers directly: normalised to zero mean
    and unit variance (the checkpoint's ``do_normalize``), optionally under bf16 autocast."""
    x = torch.from_numpy(wav)[None]
    x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(x, attention_mask=torch.ones_like(x, dtype=torch.long), output_hidden_states=True)
    return torch.stack(out.hidden_states).float()[:, 0].numpy()


@pytest.mark.skipif(not precision.device_supports_bf16(CPU), reason="this CPU has no bf16 support")
def test_bf16_extraction_is_close_to_fp32_and_is_the_autocast_forward(tmp_path):
    import soundfile as sf

    upstream = create("upstream", "tiny", depth=2, dim=64, heads=2)
    utts = _utterances(tmp_path)
    layers = tuple(range(upstream.num_layers))
    fp32, _ = extract(upstream, utts, CPU, layers, None, dtype="float32", precision="fp32")
    bf16, _ = extract(upstream, utts, CPU, layers, None, dtype="float32", precision="bf16")
    for u in utts:
        wav = sf.read(u.path, dtype="float32")[0]
        want32, want16 = _reference(upstream.model, wav, False), _reference(upstream.model, wav, True)
        np.testing.assert_allclose(fp32[u.id], want32, rtol=1e-4, atol=1e-4)
        scale = np.abs(want32).max()
        # bf16 extraction is transformers' forward under autocast, up to summation order
        assert np.abs(bf16[u.id] - want16).max() <= 1e-3 * scale
        drift = np.linalg.norm(bf16[u.id] - fp32[u.id]) / np.linalg.norm(fp32[u.id])
        assert 1e-5 < drift < 5e-2  # not fp32's numbers, yet close (bf16 keeps 8 significant bits)


@pytest.mark.e2e
@pytest.mark.skipif(not precision.device_supports_bf16(CPU), reason="this CPU has no bf16 support")
def test_a_bf16_run_is_logged_recorded_cached_apart_and_compared(tmp_path, monkeypatch):
    from serbench.report.compare import compare
    from serbench.run.cache import scan

    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))
    default = serbench.run_benchmark("tiny", "superb", protocol="synthetic", out=tmp_path / "runs", overrides=SMALL)
    bf16 = serbench.run_benchmark("tiny", "superb", protocol="synthetic", out=tmp_path / "runs",
                                  overrides=SMALL + ["upstream.precision=bf16"])
    assert default.data["annotations"]["extraction_precision"] == "fp32"
    assert bf16.data["annotations"]["extraction_precision"] == "bf16"
    assert "precision" not in default.data["comparability"] and bf16.data["comparability"]["precision"] == "bf16"
    assert default.data["comparability"]["key"] != bf16.data["comparability"]["key"]
    assert "extraction precision: bf16 on cpu" in (bf16.run_dir / "run.log").read_text()
    folders = {e.meta.get("precision", ""): e.folder.name for e in scan(tmp_path / "cache")}
    tiny, version = create("upstream", "tiny"), registry().get("upstream", "tiny").version
    same = [FORMAT_VERSION, tiny.fingerprint(), list(range(tiny.num_layers)), "float16", version]
    assert folders[""] == _sha16(same)  # the name it had before the option
    assert folders["bf16"] == _sha16(same + [{"precision": "bf16"}])
    row = compare([bf16.run_dir, default.run_dir])["comparisons"][0]
    assert row["extraction_precision"] == {"a": "bf16", "b": "fp32"}
