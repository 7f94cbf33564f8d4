"""Imported by every Python process that has this folder on its path (``python -m
bench.cpuprofile`` sets ``PYTHONPATH``): a service that ``OEE_CPU_PROFILE`` names samples
its CPU (``bench.sampler``)."""

import os
import sys

if os.environ.get("OEE_CPU_PROFILE"):
    from bench.sampler import start_if_named

    start_if_named(os.environ, sys.orig_argv)
