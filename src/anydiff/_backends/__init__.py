"""One module per AD library, each imported the first time one of its backends is used."""
