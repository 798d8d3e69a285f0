"""Image data adapted to a space's input (``datasets``); what trains on it is :mod:`nas.train`."""
from nas.data.datasets import DATASETS, ImageData, check_name, for_space, load

__all__ = ["DATASETS", "ImageData", "check_name", "for_space", "load"]
