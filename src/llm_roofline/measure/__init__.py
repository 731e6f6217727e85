"""Measure the roofline of the machine this runs on: bandwidth per cache level and DRAM, peak matrix
throughput per precision, and the chapter's GEMM shape experiment; save it as a device profile.

``measure(MeasureOptions(...))`` returns a ``Measurement``; ``profile.save_profile`` writes it in the
hardware catalogue's format, so that every command accepts it as ``--hardware FILE``. numpy and
torch are imported only while measuring.
"""

from .experiment import Measurement, MeasureOptions, measure

__all__ = ["MeasureOptions", "Measurement", "measure"]
