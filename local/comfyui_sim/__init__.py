"""A ComfyUI simulator: the HTTP and WebSocket protocol of ComfyUI 0.3.64, with model-free nodes.

Start one with ``python -m local.comfyui_sim`` or, in-process, with :class:`SimulatorServer`.
"""

from __future__ import annotations

from .simulator import SimulatorServer

__all__ = ["SimulatorServer"]
