"""Seconds to get a model ready through reportgen's loader, after the imports (which a cold
and a warm GGUF cache share), so only dequantising or loading the cached copy is timed.

Usage: gguf_load.py MODEL (REPORTGEN_CACHE picks the cache folder)."""

import sys
import time

# Imported before the clock starts, so neither run pays for them in its time.
import torch  # noqa: F401
import transformers  # noqa: F401
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

from reportgen.config import ReportConfig
from reportgen.models import load_model

start = time.perf_counter()
load_model(ReportConfig(model=sys.argv[1]))
print(time.perf_counter() - start)
