"""Numpy samplers that reproduce diffusers' schedulers, for torch-free runtimes.

Each scheduler is a small class registered under a short name (``euler``, ``ddim``, ``lcm``) and the
diffusers class name it reproduces. All share one interface (see ``base.Scheduler``), take the
diffusers ``scheduler_config.json`` dict plus a step count, and precompute their timesteps/sigmas so a
bundle's manifest can record them.
"""

from __future__ import annotations

from edgediff.schedulers.base import SCHEDULERS, Scheduler, make_scheduler, scheduler_name_for, scheduler_names

__all__ = ["SCHEDULERS", "Scheduler", "make_scheduler", "scheduler_name_for", "scheduler_names"]
