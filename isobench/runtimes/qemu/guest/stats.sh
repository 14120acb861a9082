#!/bin/sh
# isobench guest telemetry agent: /proc snapshots in the format isobench.telemetry.guest parses.
echo "Content-Type: text/plain"
echo ""
for f in /proc/stat /proc/meminfo /proc/loadavg /proc/net/dev; do
    echo "==> $f <=="
    cat "$f"
done
echo "==> tasks <=="
n=0
for d in /proc/[0-9]*; do
    n=$((n + 1))
done
echo "$n"
