"""What one sample is made of: the question, the calls with their observations, the final
answer, the trainer formats, and reading written records back."""

from __future__ import annotations
