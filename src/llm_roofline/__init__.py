"""llm-roofline: how fast a large language model runs on a device, and why.

The public API. ``analyze`` takes a model, a device and a workload (by name, path or record) and
returns frozen records: every operator's FLOPs, bytes, arithmetic intensity, bound and time.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llm_roofline import _aliases
from llm_roofline.core.errors import InputError
from llm_roofline.core.formats import NumberFormat, get_format
from llm_roofline.core.hardware import HardwareSpec, custom_hardware
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.roofline import Analysis, MemoryFit, OpResult, Totals
from llm_roofline.core.roofline import analyze as _analyze
from llm_roofline.core.transformer import Workload
from llm_roofline.inputs.device_files import hardware_names, load_hardware
from llm_roofline.inputs.model_files import load_model, model_names

__all__ = [
    "Analysis", "HardwareSpec", "InputError", "MemoryFit", "ModelSpec", "NumberFormat", "OpResult",
    "Totals", "Workload", "analyze", "custom_hardware", "get_format", "hardware_names", "load_hardware",
    "load_model", "model_names",
]
__version__ = "0.1.0"

_aliases.register(__name__)  # the flat layout's import paths (llm_roofline.models, ...) for one release


def analyze(model: str | ModelSpec, hardware: str | HardwareSpec, workload: Workload | None = None,
            **workload_fields: Any) -> Analysis:
    """Analyze one forward step.

    >>> a = analyze("llama-2-7b", "jetson-orin-nx", phase="decode", batch=1, seq_len=1024)
    >>> a.totals.bound
    'memory'
    """
    if workload is None:
        workload = Workload(**workload_fields)  # validated once (a replace would validate a second time)
    elif workload_fields:
        workload = replace(workload, **workload_fields)
    return _analyze(load_model(model), load_hardware(hardware), workload)
