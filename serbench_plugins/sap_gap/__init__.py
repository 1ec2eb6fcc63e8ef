"""sap_gap: SAP+GAP of Hyeon, Oh & Choi (Interspeech 2024), with its segmental pooling."""
