"""The third-party plugin examples in examples/ (one per kind): each imports nothing of
serbench outside ``serbench.api``, and what each computes is checked against an independent
reference. tests/e2e/test_examples_installed.py installs them with pip and runs them."""

from __future__ import annotations

import ast
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from serbench.api import SerbenchError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KINDS = {"upstream": "serbench-prosody", "pooling": "serbench-maxpool", "loss": "serbench-focal",
         "downstream": "serbench-probe", "protocol": "serbench-folders", "executor": "serbench-subprocess",
         "perturbation": "serbench-packetloss"}


def _module(package: str):
    (path,) = (EXAMPLES / package).glob("serbench_*.py")
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_there_is_an_example_for_every_plugin_kind():
    from serbench.run.registry import HOOKS

    assert set(KINDS) == set(HOOKS), "a plugin kind without an example in examples/"
    for kind, package in KINDS.items():
        text = (EXAMPLES / package / "pyproject.toml").read_text(encoding="utf-8")
        assert "[project.entry-points.serbench]" in text, package
        assert f"def {HOOKS[kind]}(" in next((EXAMPLES / package).glob("serbench_*.py")).read_text(encoding="utf-8")


@pytest.mark.parametrize("package", sorted(KINDS.values()))
def test_an_example_imports_only_the_api(package):
    for path in (EXAMPLES / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name == "serbench" or name.startswith("serbench."):
                    assert name == "serbench.api" or name.startswith("serbench.api."), f"{path.name} imports {name}"


def test_focal_loss_is_cross_entropy_at_gamma_0_and_down_weights_easy_utterances():
    focal = _module("serbench-focal").FocalLoss
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
    labels = torch.tensor([0, 2, 1])
    batch, outputs = {"labels": labels}, {"logits": logits}
    assert focal(["a", "b", "c"], [1, 1, 1], gamma=0.0)(outputs, batch).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-6)
    by_hand = []  # Lin et al.'s -(1 - p)^gamma log p, one utterance at a time
    for row, label in zip(logits.tolist(), labels.tolist()):
        p = math.exp(row[label]) / sum(math.exp(v) for v in row)
        by_hand.append(-((1 - p) ** 2) * math.log(p))
    assert focal(["a", "b", "c"], [1, 1, 1], gamma=2.0)(outputs, batch).item() == pytest.approx(sum(by_hand) / 3, rel=1e-6)


def test_prosody_frames_match_a_numpy_computation_and_ignore_padding():
    prosody = _module("serbench-prosody").Prosody(floor=1e-8)
    rng = np.random.default_rng(0)
    wav = rng.normal(0, 0.1, 16000).astype(np.float32)
    out = prosody(torch.from_numpy(np.stack([wav, np.pad(wav[:8000], (0, 8000))])), torch.tensor([16000, 8000]))
    frames = 1 + (16000 - 400) // 160
    assert out.hidden_states.shape == (2, 2, frames, 3) and out.lengths.tolist() == [frames, 1 + (8000 - 400) // 160]
    window = wav[160 * 7: 160 * 7 + 400].astype(np.float64)  # frame 7, by hand
    energy = math.log(np.mean(window ** 2) + 1e-8)
    zcr = np.mean(np.signbit(window[1:]) != np.signbit(window[:-1]))
    power = np.abs(np.fft.rfft(window * np.hanning(401)[:400])) ** 2  # torch's periodic Hann window
    centroid = np.sum(power * np.linspace(0, 8, 201)) / (power.sum() + 1e-8)
    assert out.hidden_states[0, 0, 7].tolist() == pytest.approx([energy, zcr, centroid], rel=1e-4)
    assert torch.allclose(out.hidden_states[1, 0, 7], out.hidden_states[0, 0, 7] - out.hidden_states[0, 0, 6])
    short = out.lengths[1]
    assert torch.allclose(out.hidden_states[:, 1, :short], prosody(torch.from_numpy(wav[None, :8000]), torch.tensor([8000])).hidden_states[:, 0])
    assert not out.hidden_states[:, 1, short:].any()


def test_the_folders_protocol_holds_out_one_speaker_per_fold(tmp_path):
    folders = _module("serbench-folders").folders
    for speaker in ("s1", "s2", "s3"):
        for label in ("calm", "loud"):
            (tmp_path / speaker / label).mkdir(parents=True)
            for k in range(2):
                sf.write(tmp_path / speaker / label / f"u{k}.wav", np.zeros(1600, dtype=np.float32), 16000)
    protocol = folders(tmp_path)
    assert protocol.classes == ["calm", "loud"] and len(protocol.utterances) == 12
    assert [(f.name, {protocol.utterances[i].speaker for i in f.dev}) for f in protocol.folds] == \
        [("s1", {"s2"}), ("s2", {"s3"}), ("s3", {"s1"})]
    for fold in protocol.folds:
        assert {protocol.utterances[i].speaker for i in fold.test} == {fold.name}
        assert len(fold.train) == 4 and fold.name not in {protocol.utterances[i].speaker for i in fold.train}
    (tmp_path / "s 4" / "calm").mkdir(parents=True)
    with pytest.raises(SerbenchError, match=r"s 4: a speaker or label folder's name"):
        folders(tmp_path)


def test_the_subprocess_executor_runs_each_unit_as_serbench_job():
    from serbench.api.work import Job, Shard, WorkUnit

    def unit(what):  # what an executor is handed: the unit of work, ready to run (never called here)
        return WorkUnit("runs/x", what, "cpu", lambda *args: "")

    command = _module("serbench-subprocess").command
    assert command(Path("runs/x"), unit(Job("3", 1)), "cpu")[2:] == ["serbench", "job", "runs/x", "--device", "cpu",
                                                                      "--quiet", "--fold", "3", "--seed", "1"]
    assert command(Path("runs/x"), unit(Shard(0, 2)), "cpu")[-2:] == ["--shard", "1/2"]


def test_packet_loss_loses_its_share_of_packets_in_bursts_and_keeps_the_rest_untouched():
    module = _module("serbench-packetloss")
    rng = np.random.default_rng(3)
    wav = rng.uniform(0.1, 0.9, 16000 * 120).astype(np.float32)  # no sample is 0: a zero marks a loss
    out = module.PacketLoss(rate=0.2, burst=4.0)(wav, np.random.default_rng(11))
    assert out.shape == wav.shape and out.dtype == np.float32
    packets = out.reshape(-1, 320)  # 20 ms at 16 kHz
    lost = (packets == 0).all(axis=1)
    assert ((packets == 0).any(axis=1) == lost).all(), "a packet is lost whole or not at all"
    kept = ~lost
    assert np.array_equal(packets[kept], wav.reshape(-1, 320)[kept])
    n = lost.size  # 6,000 packets: the loss share within binomial-ish reach of 0.2 (bursts widen it)
    assert abs(lost.mean() - 0.2) < 5 * math.sqrt(0.2 * 0.8 * 4 / n)
    bursts, run = [], 0  # mean burst length by hand: lengths of the runs of lost packets
    for flag in lost.tolist() + [False]:
        if flag:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    assert 3.0 < np.mean(bursts) < 5.0
    again = module.PacketLoss(rate=0.2, burst=4.0)(wav, np.random.default_rng(11))
    assert np.array_equal(out, again), "the generator is its only randomness"
    assert np.array_equal(module.PacketLoss(rate=0.0)(wav, np.random.default_rng(0)), wav)
