"""Benchmarks, never shipped: each module is run from the repository root as ``python -m bench.<name>`` (its
docstring says what it measures and how to run it; ``--help`` its options). Results in bench/results/, figures in
docs/benchmarks.md. What the benchmarks share with the tests (ports, builders, logins, the production shape on free
ports) is in devstack/."""
