"""Hardware-aware neural architecture search for MobileNet-style spaces.

Data flow: search_spaces/*.yaml -> SearchSpace -> Architecture -> layer plan (LayerSpec) ->
torch model / params+MACs / latency-table signatures.
"""
from nas.errors import NasError
from nas.arch import Architecture, Block, Stage
from nas.space import SearchSpace, load_space, list_spaces

__all__ = ["NasError", "Architecture", "Block", "Stage", "SearchSpace", "load_space", "list_spaces"]
__version__ = "0.1.0"
