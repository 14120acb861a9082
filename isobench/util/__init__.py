"""Plumbing shared by every stage: commands, ports, paths, locks, host facts."""
