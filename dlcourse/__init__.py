"""dlcourse: a deep-learning course in PyTorch with an autograder an instructor can trust."""

__version__ = "0.1.0"
