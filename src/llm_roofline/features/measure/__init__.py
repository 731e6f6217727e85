"""Measure the roofline of the machine this runs on: bandwidth per cache level and DRAM, peak matrix
throughput per precision, and the chapter's GEMM shape experiment; save it as a device profile.

``measure(MeasureOptions(...))`` returns a ``Measurement``; ``profile.save_profile`` writes it in the
hardware catalogue's format, so that every command accepts it as ``--hardware FILE``. numpy and
torch are imported only while measuring.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_roofline.features.measure.experiment import Measurement, MeasureOptions, measure

__all__ = ["MeasureOptions", "Measurement", "measure"]


def __getattr__(name: str) -> object:
    """The exports, imported on first use: registering the ``measure`` command imports none of this."""
    if name in __all__:
        return getattr(importlib.import_module(".experiment", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
