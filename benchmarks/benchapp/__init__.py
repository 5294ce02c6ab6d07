"""The tasks the benchmarks run."""
