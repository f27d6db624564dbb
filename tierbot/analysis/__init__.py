"""Stage 2, analysis: per-file statistics, complexity, sensitive code and the risk score."""
