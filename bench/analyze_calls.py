"""N single analyses, for counting instructions per ``analyze()`` with valgrind (a figure load cannot move).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/analyze_calls.py 0
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/analyze_calls.py 2000

Instructions per call = (Collected at 2000 - Collected at 0) / 2000: the imports, the catalogue reads and
the first plan cancel out. Recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import sys

from llm_roofline import Workload, load_hardware, load_model
from llm_roofline.core.roofline import analyze


def main(calls: int) -> None:
    model, device = load_model("llama-2-7b"), load_hardware("nvidia-a100-80gb-sxm")
    workload = Workload(phase="decode", batch=1, seq_len=2048)
    analyze(model, device, workload)  # builds the plan: part of the fixed cost
    for _ in range(calls):
        analyze(model, device, workload)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
