"""Search spaces: YAML -> SearchSpace -> Architecture (text, JSON, native encodings).

    from nas.space import load_space
    space = load_space("mobilenet-c10")
    arch = space.sample_many(1, seed=0)[0]
    space.format(arch)                       # canonical text; space.parse(text) reads it back
    baseline("mobilenetv2-0.5").arch         # named hand-designed baselines (list_baselines() lists them)
"""
from nas.space.arch import Architecture, Block, Stage
from nas.space.baselines import Baseline, baseline, list_baselines
from nas.space.registry import SPACES_DIR, list_spaces, load_space
from nas.space.schema import load_space_file
from nas.space.search_space import Alternative, BlockSpace, FixedLayer, SearchSpace, StageSpace

__all__ = ["Alternative", "Architecture", "Baseline", "Block", "BlockSpace", "FixedLayer", "SPACES_DIR", "SearchSpace",
           "Stage", "StageSpace", "baseline", "list_baselines", "list_spaces", "load_space", "load_space_file"]
