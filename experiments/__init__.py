"""The project's benchmarks, one folder per family (see experiments/README.md).

Run every script from the repository root as a module: ``python -m experiments.<family>.<script> [--help]``.
"""
