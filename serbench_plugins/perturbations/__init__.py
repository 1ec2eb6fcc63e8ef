"""Built-in perturbations: waveform -> waveform of the same length, at 16 kHz (noise, telephone
band, reverberation, clipping, gain). Test-time robustness conditions and training augmentation."""
