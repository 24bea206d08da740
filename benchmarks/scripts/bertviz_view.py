"""bertviz's head_view on a saved attention array, in its own process.

Usage: bertviz_view.py ATTENTION.npy (layers x heads x n x n). Prints the HTML's size in
bytes, the seconds head_view took and the process's peak RSS in bytes."""

import resource
import sys
import time

import numpy as np
import torch
from bertviz import head_view

attention = np.load(sys.argv[1])
tokens = [f"t{i}" for i in range(attention.shape[-1])]
start = time.perf_counter()
html = head_view(tuple(torch.from_numpy(a[None]) for a in attention), tokens, html_action="return")
size = len(html.data.encode("utf-8"))
seconds = time.perf_counter() - start
print(size, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
