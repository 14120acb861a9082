"""The validator node that runs inside every runtime (see ``server.py`` for the protocol).

This package is copied into the rootfs as ``validator_node`` and must import nothing from
isobench: only the standard library and PyNaCl. Its modules use relative imports so the same
code is importable on the host as ``isobench.workloads.validator.node`` (the driver shares
``protocol``).
"""
