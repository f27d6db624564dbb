"""Stage 3, routing: review units with a tier each, and what they will cost."""
