"""Keypoint and matching metrics shared by tests, `siftrain eval` and benchmarks."""
