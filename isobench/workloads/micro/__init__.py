"""The micro suite: classic container-vs-VM micro-benchmarks run by their own real clients.

Server benchmarks (``redis``, ``iperf3``, ``sockperf``) run the server inside the runtime and the
real Debian client on the host's load-generator CPUs; local benchmarks (``sysbench-cpu``,
``sysbench-memory``, ``fio``, ``xz``) run inside the runtime through a tiny whitelisting agent
(``agent_app/agent.py``). Every benchmark shares one rootfs (:func:`common.micro_rootfs_spec`).
"""
