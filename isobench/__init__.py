"""isobench: what it costs a workload to run natively, in a container or in a VM, on this host."""

__version__ = "0.1.0"
