"""Subcommands of the `siftrain` command line, one module each."""
