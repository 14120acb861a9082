"""Building the artifacts: one rootfs, then a native directory, a Docker image and a VM disk."""
