"""The validator-node workload: the node (``node/``), its host-side chain driver and scenario."""
