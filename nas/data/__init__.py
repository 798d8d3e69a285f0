"""Image data adapted to a space's input (``datasets``) and the CPU training loop (``train``, imports torch)."""
from nas.data.datasets import DATASETS, ImageData, check_name, for_space, load

__all__ = ["DATASETS", "ImageData", "check_name", "for_space", "load"]
