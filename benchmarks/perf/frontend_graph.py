"""Activation memory kept for backward when fine-tuning with a frozen front-end, before and
after serbench.run.finetune.prepare stops transformers from marking the front-end's output as
requiring grad (``feature_extractor._requires_grad``).

Measured as the bytes of the distinct storages autograd saves during one training-mode
forward (``torch.autograd.graph.saved_tensors_hooks``; weights excluded), per second of audio, on a randomly
initialised encoder of the named shape (no download). Device-independent: the same tensors
are saved on a CPU and a GPU.

    python benchmarks/perf/frontend_graph.py [--shape hubert_base] [--seconds 4]
"""

from __future__ import annotations

import argparse

import torch

SHAPES = {"hubert_base": "HubertConfig", "wavlm_large": "WavLMConfig"}


def build(shape: str):
    import transformers

    from serbench_plugins.upstreams.hf import TransformersEncoder

    config_class = getattr(transformers, SHAPES[shape])
    config = config_class() if shape == "hubert_base" else config_class(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        feat_extract_norm="layer", do_stable_layer_norm=True)
    model_class = getattr(transformers, SHAPES[shape].replace("Config", "Model"))
    torch.manual_seed(0)
    return TransformersEncoder(model_class(config), f"random-{shape}", do_normalize=True,
                               pass_mask=config.feat_extract_norm == "layer")


def saved_bytes(encoder, seconds: float) -> int:
    """Bytes of the distinct activation storages autograd keeps (weights excluded)."""
    weights = {p.data_ptr() for p in encoder.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    wavs = torch.randn(1, int(16000 * seconds)) * 0.1
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = encoder(wavs, torch.tensor([wavs.shape[1]]))
    out.hidden_states[-1].sum().backward()
    return sum(storages.values())


def main() -> None:
    from serbench.run import finetune

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="hubert_base")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    encoder = build(args.shape)
    finetune.prepare(encoder, freeze_frontend=True, gradient_checkpointing=False, spec_augment=False)
    after = saved_bytes(encoder, args.seconds)
    encoder.model.feature_extractor._requires_grad = True  # what transformers leaves without freeze_feature_encoder
    before = saved_bytes(encoder, args.seconds)
    mib = lambda n: n / args.seconds / 2**20  # noqa: E731
    print(f"{args.shape}, {args.seconds:g} s of audio, parameters of the front-end frozen, torch {torch.__version__}")
    print(f"saved for backward, front-end output marked as requiring grad (before): {mib(before):.1f} MiB per second")
    print(f"saved for backward, front-end keeping no graph (serbench):               {mib(after):.1f} MiB per second")
    print(f"front-end share of the activations before: {100 * (before - after) / before:.0f}%")


if __name__ == "__main__":
    main()
