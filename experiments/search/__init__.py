"""Search benchmarks: speed, quality against the exhaustive front, scale, memory, chaos."""
