"""superb: the SUPERB emotion-recognition head (weighted layer sum, pooling, linear)."""
