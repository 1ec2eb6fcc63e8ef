"""Building blocks of the published methods against direct computations on small tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from serbench.api.blocks import gender_ids
from serbench.run.registry import create
from serbench.run.vad import speech_frames
from serbench_plugins.protocols.synthetic_speech import make_speaker, synthesize
from serbench_plugins.wavlm_cond.conditioning import Conditioning

torch.manual_seed(0)
B, T, D = 3, 7, 8
LENGTHS = torch.tensor([7, 4, 2])
MASK = torch.arange(T)[None, :] < LENGTHS[:, None]


def _frames(fill: float = 0.0) -> torch.Tensor:
    """Random frames with padding set to ``fill``: a pooling must not care which."""
    x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(1))
    return x.masked_fill(~MASK.unsqueeze(-1), fill)


@pytest.mark.parametrize("name", ["mean", "std", "attention"])
def test_padding_never_counts(name):
    pooling = create("pooling", name, D)
    torch.testing.assert_close(pooling(_frames(0.0), MASK, {}), pooling(_frames(123.0), MASK, {}))


def test_std_is_mean_and_population_std_of_valid_frames():
    out = create("pooling", "std", D)(_frames(), MASK, {})
    for b in range(B):
        valid = _frames()[b, : LENGTHS[b]].numpy()
        np.testing.assert_allclose(out[b, :D], valid.mean(0), atol=1e-5)
        np.testing.assert_allclose(out[b, D:], np.sqrt(np.maximum(valid.var(0), 1e-5)), atol=1e-5)


def test_attention_weights_follow_the_formula():
    pooling = create("pooling", "attention", D)
    out = pooling(_frames(), MASK, {})
    p = pooling.p.detach().numpy()
    for b in range(B):
        z = _frames()[b, : LENGTHS[b]].numpy()
        scores = np.tanh(z) @ p
        w = np.exp(scores - scores.max())
        w /= w.sum()
        mean = (w[:, None] * z).sum(0)
        std = np.sqrt(np.maximum((w[:, None] * (z - mean) ** 2).sum(0), 1e-5))
        np.testing.assert_allclose(out[b].detach().numpy(), np.concatenate([mean, std]), atol=1e-5)


def test_segmental_attends_and_averages_over_speech_frames_only():
    pooling = create("pooling", "segmental", D, heads=2, dropout=0.0).eval()
    vad = torch.tensor([[1, 0, 1, 1, 0, 0, 1], [0, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    x = _frames(55.0)
    out = pooling(x, MASK, {"vad": vad})
    reference = torch.nn.MultiheadAttention(D, 2, batch_first=True).eval()  # torch's own, same weights
    with torch.no_grad():
        reference.in_proj_weight.copy_(pooling.in_proj.weight)
        reference.in_proj_bias.copy_(pooling.in_proj.bias)
        reference.out_proj.weight.copy_(pooling.out_proj.weight)
        reference.out_proj.bias.copy_(pooling.out_proj.bias)
    for b in range(B):
        keep = (MASK[b] & vad[b]) if (MASK[b] & vad[b]).any() else MASK[b]  # utterance 3: no speech -> all frames
        z = x[b, keep].unsqueeze(0)
        alone, _ = reference(z, z, z, need_weights=False)
        torch.testing.assert_close(out[b], alone[0].mean(0), atol=1e-5, rtol=1e-5)
    # speech frames decide: changing a non-speech frame changes nothing
    x2 = x.clone()
    x2[0, 1] += 10.0
    torch.testing.assert_close(out[0], pooling(x2, MASK, {"vad": vad})[0])


def test_vad_marks_known_silences_on_the_frames_of_the_features():
    rng = np.random.default_rng(0)
    speech, _ = synthesize(make_speaker(1, "F", rng), "ang", rng)
    silence = rng.normal(0, 3e-4, 16000).astype(np.float32)  # 1 s at the synthetic noise floor
    wav = np.concatenate([silence, speech, silence])
    frames = int(wav.size / 16000 * 50)
    mask = speech_frames(wav, frame_rate=50.0, num_frames=frames, aggressiveness=3)
    assert mask.shape == (frames,)
    assert not mask[:45].any() and not mask[-45:].any()  # the silences (20 ms frames), edges spared
    voiced = mask[55 : frames - 55]
    assert voiced.mean() > 0.5  # most of the utterance between its pauses is speech
    fbank_rate = speech_frames(wav, frame_rate=100.0, num_frames=2 * frames, aggressiveness=3)
    assert abs(fbank_rate.mean() - mask.mean()) < 0.05  # the same decisions at 10 ms frames


def test_mtl_loss_value():
    classes = ["a", "b", "c"]
    loss = create("loss", "mtl", classes, [10, 5, 5], ce=0.5, valence=0.25, arousal=0.25)
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    outputs = {"logits": logits, "valence": torch.tensor([0.2, 0.9]), "arousal": torch.tensor([0.5, 0.1])}
    batch = {"labels": torch.tensor([0, 2]), "attributes": torch.tensor([[0.4, 0.5, 0.0], [0.6, 0.3, 0.0]])}
    w = torch.tensor([20 / 30, 20 / 15, 20 / 15])
    logp = torch.log_softmax(logits, 1)
    ce = (w[0] * -logp[0, 0] + w[2] * -logp[1, 2]) / (w[0] + w[2])
    expected = 0.5 * ce + 0.25 * (0.2 + 0.3) / 2 + 0.25 * (0.0 + 0.2) / 2
    assert float(loss(outputs, batch)) == pytest.approx(float(expected), rel=1e-5)


def test_a_corpus_with_valence_and_arousal_but_no_dominance_feeds_the_mtl_loss(tmp_path):
    """The 'attributes' need asks for valence and arousal: the batch must carry them then (it
    waited for dominance too, and every sap_gap job failed on such a corpus)."""
    from serbench.api.protocol import Utterance
    from serbench.run.batching import side_information

    utterances = {str(k): Utterance(str(k), tmp_path / f"{k}.wav", "ab"[k], "s", attributes={"valence": 0.25 * k, "arousal": 0.5})
                  for k in range(2)}
    batch = side_information(["0", "1"], utterances, {"a": 0, "b": 1}, None, "cpu")
    assert batch["attributes"][:, :2].tolist() == [[0.0, 0.5], [0.25, 0.5]] and batch["attributes"][:, 2].isnan().all()
    loss = create("loss", "mtl", ["a", "b"], [1, 1], ce=0.5, valence=0.25, arousal=0.25)
    outputs = {"logits": torch.zeros(2, 2), "valence": torch.zeros(2), "arousal": torch.zeros(2)}
    assert torch.isfinite(loss(outputs, batch))
    del utterances["1"].attributes["arousal"]
    assert "attributes" not in side_information(["0", "1"], utterances, {"a": 0, "b": 1}, None, "cpu")


def _conditioned(gender="none", text="none"):
    torch.manual_seed(0)
    module = Conditioning(D, gender, text, 5, dropout=0.0).eval()
    x = torch.randn(3, D)
    batch = {"genders": ["F", "M", None], "text_embedding": torch.randn(3, 5)}
    return module, x, batch, module.embedding(gender_ids(batch["genders"], "cpu")) if module.embedding else None


@pytest.mark.parametrize("mode, expected", [
    ("sum", lambda x, e, m: x + e),
    ("sum_half", lambda x, e, m: (x + e) / 2),
    ("mul", lambda x, e, m: x * e),
    ("stack_linear", lambda x, e, m: m.stack(torch.cat([x, e], -1))),
    ("cln", lambda x, e, m: m.cln.scale(e) * F.layer_norm(x, (D,), eps=1e-5) + m.cln.shift(e)),
])
def test_gender_modes(mode, expected):
    module, x, batch, e = _conditioned(gender=mode)
    torch.testing.assert_close(module(x, batch), expected(x, e, module), atol=1e-5, rtol=1e-5)
    assert not torch.equal(e[0], e[2])  # unknown gender has its own embedding


@pytest.mark.parametrize("mode", ["sum_third", "mul", "cln"])
def test_text_modes(mode):
    module, x, batch, e = _conditioned(text=mode)
    t = module.text(batch["text_embedding"])
    expected = {
        "sum_third": (x + e + t) / 3,
        "mul": x * e * t,
        "cln": None,
    }[mode]
    if mode == "cln":
        c = module.merge(torch.cat([e, t], -1))
        expected = module.cln.scale(c) * F.layer_norm(x, (D,), eps=1e-5) + module.cln.shift(c)
    torch.testing.assert_close(module(x, batch), expected, atol=1e-5, rtol=1e-5)


def test_no_conditioning_is_identity_and_both_at_once_is_refused():
    module, x, batch, _ = _conditioned()
    assert torch.equal(module(x, batch), x)
    with pytest.raises(ValueError, match="set gender=none"):
        Conditioning(D, "sum", "mul", 5, 0.0)


def test_label_smoothing_moves_gamma_to_the_other_classes():
    classes, gamma = ["a", "b", "c", "d"], 0.2
    loss = create("loss", "label_smoothing", classes, [5, 5, 5, 5], smoothing=gamma, weighted=False)
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 0, 2])
    target = torch.full((6, 4), gamma / 3).scatter(1, labels[:, None], 1 - gamma)  # the paper's targets
    expected = -(target * torch.log_softmax(logits, -1)).sum(-1).mean()
    torch.testing.assert_close(loss({"logits": logits}, {"labels": labels}), expected)


@pytest.mark.parametrize("pooling", ["mean", "std", "attention"])
def test_wavlm_cond_conditions_a_256_wide_vector(pooling):
    from serbench.api.downstream import DownstreamContext

    context = DownstreamContext(3, 64, 50.0, ("a", "b", "c", "d"), lambda dim: create("pooling", pooling, dim))
    model = create("downstream", "wavlm_cond", context, gender="sum")
    assert model.pooling.out_dim == 256 and model.classifier.in_features == 256
    out = model({"features": torch.randn(2, 3, 10, 64), "mask": torch.ones(2, 10, dtype=torch.bool),
                 "genders": ["F", "M"]})
    assert out["logits"].shape == (2, 4)
