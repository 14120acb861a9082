#!/bin/sh
# PID 1 of an isobench VM guest (busybox ash inside the initramfs; PID 1 never leaves it).
#
# Mounts the read-only root disk at /newroot, puts tmpfs on the workload's writable paths and /run,
# mounts each volume's own ext4 virtio disk (found by its serial) at its path,
# brings up eth0 with the address of its launch spec (ISB_IP; a default route only with ISB_GW), starts the telemetry agent (busybox httpd on :9100 serving
# /cgi-bin/stats) and runs the workload chrooted into /newroot with exactly the environment, working
# directory and user of its launch spec. Its output goes to the console prefixed "[workload] ".
# When it exits: "isobench: workload exited rc=N", then power off.
#
# The launch spec is a shell fragment written by isobench.runtimes.qemu (ISB_CMD, ISB_USER,
# ISB_WRITABLE, ISB_VOLUMES, ISB_IP, ISB_GW), read from fw_cfg opt/isobench/launch or, failing that, from the
# base64 kernel argument isb_launch=. Kernel argument isb_mode=probe only prints the probe marker.
export PATH=/bin
NEWROOT=/newroot
FWCFG=/sys/firmware/qemu_fw_cfg/by_name/opt/isobench/launch/raw

log() { echo "isobench-init: $*"; }
finish() {
    echo "isobench: workload exited rc=$1"
    sync
    poweroff -f
    sleep 3600
}
die() { log "FATAL: $*"; finish 255; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

mode=run
launch_b64=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        isb_mode=*) mode=${arg#isb_mode=} ;;
        isb_launch=*) launch_b64=${arg#isb_launch=} ;;
    esac
done

if [ "$mode" = probe ]; then
    echo "ISOBENCH-PROBE-OK"
    poweroff -f
    sleep 3600
fi

while read -r mod; do
    [ -n "$mod" ] && { insmod "/lib/modules/$mod" || log "insmod $mod failed"; }
done < /lib/modules/modules.order

if [ -r "$FWCFG" ]; then
    cat "$FWCFG" > /launch.sh
elif [ -n "$launch_b64" ]; then
    echo "$launch_b64" | base64 -d > /launch.sh
else
    die "no launch spec (neither fw_cfg opt/isobench/launch nor isb_launch=)"
fi
ISB_CMD= ; ISB_USER= ; ISB_WRITABLE= ; ISB_VOLUMES= ; ISB_IP= ; ISB_GW=
. /launch.sh
[ -n "$ISB_CMD" ] || die "launch spec has no ISB_CMD"

# Disks: one virtio disk per volume (ISB_VOLUMES: "serial:path ..."), found by its serial; the
# root disk is the one without an isbvol serial, whatever letter the kernel gave each.
serial_of() { cat "/sys/block/$1/serial" 2>/dev/null; }
disk_with() {
    for b in /sys/block/vd*; do
        [ -e "$b" ] && [ "$(serial_of "${b##*/}")" = "$1" ] && { echo "/dev/${b##*/}"; return; }
    done
}
want=1
for v in $ISB_VOLUMES; do want=$((want + 1)); done
i=0
while :; do
    ROOTDEV= ; n=0
    for b in /sys/block/vd*; do
        [ -b "/dev/${b##*/}" ] || continue
        n=$((n + 1))
        case "$(serial_of "${b##*/}")" in
            isbvol*) ;;
            *) [ -z "$ROOTDEV" ] && ROOTDEV=/dev/${b##*/} ;;
        esac
    done
    [ -n "$ROOTDEV" ] && [ $n -ge $want ] && break
    i=$((i + 1))
    [ $i -gt 400 ] && die "$n of $want virtio disks after 20 s (root: ${ROOTDEV:-none})"
    usleep 50000
done
# The root disk is read-only (so killing QEMU is always safe); the workload sees it through an
# overlay with a tmpfs upper layer: writable, copy-on-write, thrown away at exit - the same
# semantics as Docker's container layer and the native runtime's overlay.
mkdir -p $NEWROOT /lower /cow
mount -t ext4 -o ro "$ROOTDEV" /lower || die "cannot mount $ROOTDEV read-only"
mount -t tmpfs -o mode=0755 tmpfs /cow && mkdir -p /cow/upper /cow/work
if ! mount -t overlay overlay -o lowerdir=/lower,upperdir=/cow/upper,workdir=/cow/work $NEWROOT; then
    log "overlay unavailable: the root stays read-only (only the writable paths are writable)"
    mount --bind /lower $NEWROOT || die "cannot bind the root disk"
fi

# tmpfs on /run and the writable paths, keeping the mode and owner of the directory underneath.
for p in /run $ISB_WRITABLE; do
    d=$NEWROOT$p
    if [ ! -d "$d" ]; then
        log "writable path $p does not exist in the root disk; skipped"
        continue
    fi
    perm=$(stat -c '%a %u:%g' "$d")
    mount -t tmpfs -o "mode=${perm% *}" tmpfs "$d" || die "cannot mount tmpfs on $p"
    chown "${perm#* }" "$d"
done
# Each volume: its own ext4 disk mounted read-write at its path (made by the host, empty).
for v in $ISB_VOLUMES; do
    serial=${v%%:*}
    p=${v#*:}
    dev=$(disk_with "$serial")
    [ -n "$dev" ] || die "no virtio disk with serial $serial for volume $p"
    mkdir -p "$NEWROOT$p" || die "cannot make the volume's mount point $p"
    mount -t ext4 "$dev" "$NEWROOT$p" || die "cannot mount $dev on $p"
    rmdir "$NEWROOT$p/lost+found" 2>/dev/null
    log "volume $p: $dev (ext4)"
done
for p in proc dev sys; do
    mount --bind /$p $NEWROOT/$p || die "cannot bind /$p"
done

# Busybox inside the chroot (on the /run tmpfs) for cd/env/su around the workload's own argv.
mkdir -p $NEWROOT/run/isobench/bin
cp /bin/busybox $NEWROOT/run/isobench/bin/busybox
for a in sh env su; do ln -s busybox $NEWROOT/run/isobench/bin/$a; done

hostname isobench
ip link set lo up
ip link set eth0 up || log "no eth0"
[ -n "$ISB_IP" ] || die "launch spec has no ISB_IP"
ip addr add "$ISB_IP" dev eth0 || log "cannot set $ISB_IP"
if [ -n "$ISB_GW" ]; then
    ip route add default via "$ISB_GW" || log "cannot route via $ISB_GW"
fi

httpd -p 9100 -h /www || log "telemetry agent did not start"

if [ -n "$ISB_USER" ]; then
    set -- /run/isobench/bin/su -p -s /run/isobench/bin/sh "$ISB_USER" -c "$ISB_CMD"
else
    set -- /run/isobench/bin/sh -c "$ISB_CMD"
fi
echo "isobench: workload starting"
{ chroot $NEWROOT "$@" < /dev/null 2>&1; echo $? > /workload.rc; } | awk '{ print "[workload] " $0; fflush() }'
finish "$(cat /workload.rc 2>/dev/null || echo 255)"
