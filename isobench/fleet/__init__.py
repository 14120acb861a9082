"""isobench fleet: one benchfile on the hosts of an Ansible inventory, one report across them.

``driver`` runs ``ansible-playbook`` with the packaged ``playbook.yaml``, ``layout`` owns the fleet
directory and each host's outcome, ``report`` compares hosts (reading each run directory the way
``isobench report`` does), ``html`` writes the fleet's report.html, ``cli`` the subcommands.
"""
