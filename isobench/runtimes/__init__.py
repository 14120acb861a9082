"""Runtimes: the ways the same rootfs is run (process, container, VM)."""
