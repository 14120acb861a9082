"""The records API app (copied into the rootfs as ``records_app``; needs no isobench)."""
