"""trainguard: keep distributed PyTorch training jobs running through faults.

The package mirrors SageMaker HyperPod's training stack (job controller, per-node elastic agent,
tiered checkpointing, node health) without tying users to one cloud. See DESIGN.md for the map of
subpackages; `trainguard.spec` is the entry point for reading job manifests.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
