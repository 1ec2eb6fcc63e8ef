"""wavlm_cond: WavLM with speaker, gender and text conditioning (Diatlova et al., Odyssey 2024)."""
