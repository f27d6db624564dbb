"""Stage 1, the repository: git access, the diff of a range, and file history."""
