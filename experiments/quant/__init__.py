"""Quantization: the ground truth (trained networks deployed at many bit assignments) and the benchmarks that
read it, sharing the truth's settings, pair selection and statistics (``experiments.quant.common``)."""
