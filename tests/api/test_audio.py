"""Audio input: mono mixdown, polyphase resampling, and bad files named."""

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from serbench.api.audio import load_audio
from serbench.api.errors import SerbenchError


def test_stereo_is_mixed_down_and_8khz_resampled(tmp_path):
    t = np.arange(8000) / 8000
    left, right = np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)
    path = tmp_path / "stereo8k.wav"
    sf.write(path, np.stack([left, right], 1) * 0.3, 8000, subtype="FLOAT")
    wav = load_audio(path)
    expected = resample_poly((left + right) / 2 * 0.3, 2, 1)
    assert wav.shape == (16000,) and wav.dtype == np.float32
    np.testing.assert_allclose(wav, expected, atol=1e-5)
    spectrum = np.abs(np.fft.rfft(wav))
    assert sorted(np.argsort(spectrum)[-2:].tolist()) == [440, 660]  # 1 Hz bins over one second


def test_16khz_is_read_as_is(tmp_path):
    data = (np.random.default_rng(0).normal(0, 0.1, 1234)).astype(np.float32)
    sf.write(tmp_path / "a.wav", data, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "a.wav"), data)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(SerbenchError, match=rf"{tmp_path}/missing.wav: audio file not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"this is not audio")
    with pytest.raises(SerbenchError, match=rf"{tmp_path}/junk.wav: cannot read audio"):
        load_audio(tmp_path / "junk.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(SerbenchError, match=rf"{tmp_path}/empty.wav: audio file has no samples"):
        load_audio(tmp_path / "empty.wav")
    sf.write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(SerbenchError, match=rf"{tmp_path}/nan.wav: audio has non-finite samples"):
        load_audio(tmp_path / "nan.wav")
