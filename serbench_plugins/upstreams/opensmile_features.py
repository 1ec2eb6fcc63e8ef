"""``egemaps`` and ``compare_2016``: openSMILE's utterance-level functionals, the classic SER
features (Eyben et al. 2016; Schuller et al., ComParE 2016), through audEERING's ``opensmile``
package (an optional extra, ``pip install 'serbench[opensmile]'``).

openSMILE is under the audEERING Research License: free for private, research and
educational use; any commercial use needs a licence from audEERING. serbench itself does not
bundle it; the extra installs it from PyPI (the binary ships in its wheel).

A functional summarises a whole utterance, so the upstream returns one "frame" per
utterance: ``hidden_states`` ``[1, B, 1, D]``; ``frame_rate`` is nominal (1 Hz: a frame per
second would only matter to frame-aligned annotations, which functionals have none of). Each
row of a batch is processed alone, up to its length, so padding never changes a feature.

The plugin's own choices: functionals that openSMILE leaves undefined (it fills them with
NaN for a segment too short for its windows, with a warning) become 0.0, so that one very
short utterance does not stop a run; openSMILE's warning is silenced and the count is not
kept. Values are float32 as openSMILE returns them; ComParE's 6,373 functionals include
energies beyond float16's range on loud audio, hence ``-o cache.dtype=float32`` for it.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from serbench.api.errors import SerbenchError
from serbench.api.upstream import Upstream, UpstreamOutput

LICENCE = "audEERING Research License: research, educational and private use only; commercial use needs a licence"
INSTALL_HINT = ("upstream {name} needs the opensmile package: pip install 'serbench[opensmile]' "
                f"(openSMILE's {LICENCE})")

# serbench name -> (opensmile FeatureSet member, functionals per utterance as the opensmile docs list them)
FEATURE_SETS = {"egemaps": ("eGeMAPSv02", 88), "compare_2016": ("ComParE_2016", 6373)}


def _opensmile(name: str):
    try:
        import opensmile
    except ImportError:
        raise SerbenchError(INSTALL_HINT.format(name=name)) from None
    return opensmile


class OpenSmileFunctionals(Upstream):
    """One openSMILE functionals vector per utterance (see the module docstring)."""

    num_layers = 1
    frame_rate = 1.0  # nominal: one vector per utterance

    def __init__(self, name: str):
        super().__init__()
        opensmile = _opensmile(name)
        member, self.dim = FEATURE_SETS[name]
        self.name, self.feature_set = name, member
        self.smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, member),
                                     feature_level=opensmile.FeatureLevel.Functionals)
        self.opensmile_version = opensmile.__version__

    def functionals(self, wav: np.ndarray) -> np.ndarray:
        """``[D]`` float32 functionals of one 16 kHz waveform; undefined ones are 0.0."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Segment too short, filling with NaN."
            values = self.smile.process_signal(wav, self.sample_rate).to_numpy(dtype=np.float32)
        if values.shape != (1, self.dim):
            raise SerbenchError(f"upstream {self.name}: opensmile {self.opensmile_version} returned {values.shape[-1]} "
                                f"{self.feature_set} functionals, expected {self.dim}")
        return np.nan_to_num(values[0], nan=0.0, posinf=0.0, neginf=0.0)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> UpstreamOutput:
        rows = wavs.detach().float().cpu().numpy()
        vectors = [self.functionals(rows[b, : int(n)]) for b, n in enumerate(lengths.tolist())]
        hidden = torch.from_numpy(np.stack(vectors)).to(wavs.device)
        return UpstreamOutput(hidden[None, :, None, :], torch.ones(len(vectors), dtype=torch.long, device=wavs.device))

    def fingerprint(self) -> str:
        return f"opensmile-{self.opensmile_version}-{self.feature_set}-functionals"


def make_egemaps() -> OpenSmileFunctionals:
    return OpenSmileFunctionals("egemaps")


def make_compare_2016() -> OpenSmileFunctionals:
    return OpenSmileFunctionals("compare_2016")
