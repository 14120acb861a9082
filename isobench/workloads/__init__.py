"""Workloads: what runs inside every runtime, and how it is loaded."""
