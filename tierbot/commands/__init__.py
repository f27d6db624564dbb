"""One module per subcommand, each with a `main(...) -> int`."""
