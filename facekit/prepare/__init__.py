"""The preparation pipeline: scan -> select frames -> detect -> align -> augment -> store."""
from .config import AUGMENT_MODES, PrepareConfig, parse_shard
from .plan import Part, WorkItem, plan_items, plan_parts
from .run import NothingUsableError, PrepareSummary, prepare

__all__ = ["PrepareConfig", "parse_shard", "AUGMENT_MODES", "prepare", "PrepareSummary", "NothingUsableError",
           "Part", "WorkItem", "plan_items", "plan_parts"]
