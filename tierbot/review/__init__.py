"""Stage 4, the review: local rules and the tiered model calls (prompts, budget, ledger)."""
