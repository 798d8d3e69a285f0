"""Proxy benchmarks: training-free scores against NAS-Bench-Macro accuracy, their cost, train:E."""
