"""The benchmark harness: ``python -m bench [--quick] [--out bench/results]`` (``make bench``).

Every measurement runs against the local stack on 127.0.0.1, side by side with the floor it could reach
in the same run, so the figures hold on a noisy machine. Nothing here asserts a timing.
"""
