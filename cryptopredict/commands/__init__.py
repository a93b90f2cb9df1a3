"""Sub-commands of the `cryptopredict` command line, one module per area."""
