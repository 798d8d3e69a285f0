"""Export benchmarks: `nas export` on Pareto members, int8 fusion, training and QAT accuracy."""
