#!/bin/sh
# SPDX-License-Identifier: MIT
# Boots a real systemd (this machine's /lib/systemd/systemd) as PID 1 of new
# PID, mount, network, UTS, IPC and cgroup namespaces, on an overlay of this
# machine's root whose writes land in a tmpfs: the package under test is
# installed, started, reloaded and stopped in there, and nothing of it
# reaches the machine (test_systemd.sh does the rest).
# Usage, by test_systemd.sh only: unshare ... systemd_boot.sh TMPFS_DIR
#
# Safety, because this systemd shares the kernel, /dev and /sys with the
# machine: the root it sees is the overlay (boot-time clean-ups such as
# systemd-tmpfiles --boot --remove only whiteout copies), /sys is read-only
# but for the cgroup hierarchies, the network is a namespace of its own
# (loopback only), and every unit that would touch the kernel, devices,
# swap, binfmt, clocks or disks, plus the timers, is masked. `container=`
# tells systemd it runs in a container, which skips the rest.
set -eu
t=$1
mount -t tmpfs -o mode=0755,size=512m blazebot-test "$t"
mkdir "$t/upper" "$t/work" "$t/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" "$t/root"
r=$t/root
mount --rbind /dev "$r/dev"
mount --rbind /sys "$r/sys"
mount -o remount,bind,ro "$r/sys"
mount -t proc proc "$r/proc"
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"

units=$r/etc/systemd/system
mkdir -p "$units"
cat >"$units/blazebot-test.target" <<'EOF'
[Unit]
Description=blazebot test boot (tests/packaging/systemd_boot.sh)
DefaultDependencies=no
Wants=systemd-journald.socket systemd-journald.service
EOF
for u in timers.target swap.target cryptsetup.target integritysetup.target \
  veritysetup.target getty.target network-online.target \
  kmod-static-nodes.service modprobe@.service systemd-modules-load.service \
  systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
  proc-sys-fs-binfmt_misc.mount systemd-udevd.service systemd-udev-trigger.service \
  systemd-udev-settle.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-timesyncd.service systemd-remount-fs.service systemd-repart.service \
  systemd-pstore.service systemd-random-seed.service systemd-firstboot.service \
  systemd-machine-id-commit.service systemd-pcrphase.service \
  systemd-pcrphase-sysinit.service systemd-tmpfiles-setup-dev.service \
  systemd-hwdb-update.service systemd-networkd.service networking.service \
  ifupdown-pre.service sys-kernel-config.mount sys-kernel-debug.mount \
  sys-kernel-tracing.mount sys-fs-fuse-connections.mount dev-hugepages.mount \
  cron.service ssh.service console-getty.service; do
  ln -sf /dev/null "$units/$u"
done

cd "$r"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
exec env -i container=blazebot-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  /lib/systemd/systemd --unit=blazebot-test.target
