"""wap_la: WAP-LA of Song et al., its adapter stage and its statistical attentive pooling."""
