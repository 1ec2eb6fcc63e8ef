"""Hook signatures. Each returns a list of :class:`serbench.api.specs.Spec`; the host chains them.
A Spec's ``meta`` is its kind's dataclass in :mod:`serbench.api.meta` (or a dict of its keys).

A plugin is any importable module (or object) with ``@hookimpl`` functions for some of these
hooks, listed under the ``serbench`` entry-point group.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("serbench")
hookimpl = pluggy.HookimplMarker("serbench")


@hookspec
def register_upstreams() -> list:
    """Speech encoders. Factory: ``(**params) -> serbench.api.upstream.Upstream`` (``forward`` and
    ``fingerprint`` required; ``hidden_states`` ``[num_layers, B, T, dim]``).
    ``meta=UpstreamMeta(trainable=False)`` marks an upstream with no weights to fine-tune (a recipe's
    ``upstream.finetune`` is then not applied, and the log says so)."""


@hookspec
def register_downstreams() -> list:
    """Models on top of upstream features. Factory:
    ``(context: serbench.api.downstream.DownstreamContext, **params) -> torch.nn.Module`` whose
    ``forward(batch)`` returns a dict with at least ``logits``. ``meta=DownstreamMeta(...)``:
    ``default_pooling`` and ``default_loss`` name what is used when the user names none;
    ``own_pooling`` (a description) marks a method that pools by itself and refuses
    ``--pooling``; ``recipe`` is its paper's :class:`serbench.api.recipes.Recipe`;
    ``spec_augment`` sets ``upstream.spec_augment`` unless the user does."""


@hookspec
def register_poolings() -> list:
    """Frames to one vector. Factory: ``(dim: int, **params) -> torch.nn.Module`` with an
    ``out_dim`` attribute and ``forward(frames [B,T,D], mask [B,T], batch) -> [B, out_dim]``."""


@hookspec
def register_losses() -> list:
    """Training objectives. Factory: ``(classes: list[str], train_counts: list[int], **params)``
    returning a callable ``(outputs: dict, batch: dict) -> scalar tensor``."""


@hookspec
def register_protocols() -> list:
    """Corpora with their folds. Factory: ``(data: pathlib.Path | None, **params) ->
    serbench.api.protocol.Protocol``. ``meta=ProtocolMeta(...)``: ``data_key`` names the corpus location a user saves
    with ``serbench config set data.<key> PATH`` (omit it for protocols that need no data);
    ``default_loss`` names the loss used when neither user nor downstream names one;
    ``demo=True`` marks a demo corpus, on which recipes use their demo-sized variant;
    ``test_split`` says what each fold is scored on (``test session``, or a template
    over the protocol's parameters such as ``{test_set}``), so that a measured result is put
    beside a paper's reported number only when both were scored on the same split."""


@hookspec
def register_perturbations() -> list:
    """Waveform perturbations (noise, telephone band, reverberation, ...): test-time robustness
    conditions (``serbench run --perturb NAME:k=v``) and training augmentation
    (``-o train.augment=NAME:k=v``). Factory: ``(**params) -> callable(wav, rng) -> wav`` taking a
    float32 ``[samples]`` 16 kHz waveform and a ``numpy.random.Generator`` (its only source of
    randomness: serbench seeds it from the condition and the utterance, so a rerun and the feature
    cache agree) and returning a waveform of the same length; an optional ``fingerprint() -> str``
    names what the parameters do not (the content of supplied noise or impulse-response files)."""


@hookspec
def register_executors() -> list:
    """Where a run's units run: feature-extraction shards, then (fold, seed) jobs. Factory:
    ``(**params) -> executor`` with ``slots(n_units) -> int`` (how many run at once: the
    number of extraction shards), an optional ``in_process`` attribute (True: serbench runs
    the units in the calling process and ``map`` is not called) and ``map(run_dir, units, device, reporter) ->
    {unit: error}``, which runs every unit where it likes by calling
    ``serbench.run.execute.work_unit(run_dir, unit, device)`` there (or ``serbench job RUN_DIR
    --fold K --seed S`` / ``--shard I/N``) and returns the units that raised. Chosen with
    ``--executor``; its parameters (``-o executor.KEY=VALUE``) never change a run's id."""
