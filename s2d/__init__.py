"""s2d: an experiment harness for System 2 distillation."""
__version__ = "0.1.0"
