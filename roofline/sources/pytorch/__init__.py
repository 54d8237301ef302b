"""The PyTorch front end: the dispatch-level tracer and the ATen op table."""
