"""Hypothesis profiles: the default keeps CI fast; HYPOTHESIS_PROFILE=deep searches harder."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", print_blob=True)
settings.register_profile("deep", max_examples=2000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
