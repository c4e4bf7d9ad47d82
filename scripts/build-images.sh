#!/bin/sh
# build-images.sh [OUTDIR] -- build the tiny opensigma guest from Debian packages only.
#
# OUTDIR defaults to library/images next to this script's repository, where library/opensigma-tiny-guest.json
# offers both images as library drives (a restart of opensigma picks them up).
# Outputs in OUTDIR:
#   vmlinuz, initrd.gz      kernel (linux-image-cloud-amd64) + busybox-static initramfs
#   boot.iso                bootable cdrom (isolinux)
#   boot-disk.qcow2         bootable disk (syslinux on an unpartitioned FAT file system)
#   VERSION                 kernel/busybox versions and recipe hash the outputs were built from
#
# The guest: busybox init; loads virtio/ide/scsi modules; busybox acpid powers off on the ACPI power
# button; udhcpc on every ethN; root shell on ttyS0 (no login) and tty1 (VGA) with the prompt "/ # ";
# `context [key]` reads the server context from ttyS1 (CloudSigma guest protocol).
#
# Idempotent: when OUTDIR/VERSION matches the packages and this recipe, nothing is rebuilt.
# Needs apt-get (Debian 12); installs its build tools when missing (run as root or with them present).
set -eu

OUT=$(realpath -m "${1:-$(dirname "$0")/../library/images}")
mkdir -p "$OUT"
SELF_HASH=$(sha256sum "$0" | cut -c1-16)

need_tools() {
  missing=""
  command -v genisoimage >/dev/null || missing="$missing genisoimage"
  [ -e /usr/lib/ISOLINUX/isolinux.bin ] || missing="$missing isolinux"
  command -v syslinux >/dev/null || missing="$missing syslinux"
  [ -e /usr/lib/syslinux/modules/bios/ldlinux.c32 ] || missing="$missing syslinux-common"
  command -v mcopy >/dev/null || missing="$missing mtools"
  command -v mkfs.vfat >/dev/null || missing="$missing dosfstools"
  command -v qemu-img >/dev/null || missing="$missing qemu-utils"
  command -v cpio >/dev/null || true
  if [ -n "$missing" ]; then
    echo "build-images: installing$missing" >&2
    if [ "$(id -u)" != 0 ]; then echo "build-images: need root to install:$missing" >&2; exit 1; fi
    [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ] || apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
  fi
}

# One apt-cache call for the up-to-date check (each costs about a CPU second).
versions() {
  apt-cache policy linux-image-cloud-amd64 busybox-static 2>/dev/null |
    awk '/^[^ ]/{p=$1} /Candidate:/{printf "%s=%s ", p, $2}'
}
VERSIONS=$(versions)
case "$VERSIONS" in *"(none)"*|"") apt-get update -q >&2; VERSIONS=$(versions) ;; esac
STAMP="${VERSIONS}recipe=$SELF_HASH"
if [ -f "$OUT/VERSION" ] && [ "$(cat "$OUT/VERSION")" = "$STAMP" ] &&
   [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.gz" ] && [ -f "$OUT/boot.iso" ] && [ -f "$OUT/boot-disk.qcow2" ]; then
  echo "build-images: $OUT is up to date ($STAMP)"
  exit 0
fi
KPKG=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
need_tools

W=$(mktemp -d)
chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
cd "$W"
apt-get download -q "$KPKG" busybox-static >/dev/null 2>&1 || apt-get download "$KPKG" busybox-static
dpkg-deb -x "$KPKG"_*.deb k
dpkg-deb -x busybox-static_*.deb bb
BB=$W/bb/bin/busybox
KVER=$(ls k/lib/modules)
SRC=k/lib/modules/$KVER
$BB depmod -b k "$KVER"    # the .deb ships no modules.dep

R=$W/root
mkdir -p $R/bin $R/dev $R/proc $R/sys $R/tmp $R/mnt $R/root $R/var/log $R/etc/init.d $R/etc/acpi/PWRF \
  $R/lib/modules/$KVER $R/usr/share/udhcpc
cp $BB $R/bin/busybox
for a in $($BB --list); do [ "$a" = busybox ] || ln -s busybox $R/bin/$a; done
ln -s bin $R/sbin
ln -s ../bin $R/usr/bin
ln -s ../bin $R/usr/sbin
ln -s bin/busybox $R/init
MODS="virtio_pci virtio_blk virtio_net virtio_scsi virtio_console virtio-rng button evdev ata_piix sr_mod sd_mod isofs 8139cp 8139too ne2k-pci pcnet32"
for m in $MODS; do
  for f in $(grep -E "/$m\.ko:" $SRC/modules.dep | tr -d ':'); do
    mkdir -p $R/lib/modules/$KVER/${f%/*}
    cp $SRC/$f $R/lib/modules/$KVER/$f
  done
done
$BB depmod -b $R "$KVER"
echo "$MODS" > $R/etc/modules

cat > $R/etc/inittab <<'EOT'
::sysinit:/etc/init.d/rcS
ttyS0::respawn:-/bin/sh
tty1::respawn:-/bin/sh
::shutdown:/bin/umount -a -r
EOT
cat > $R/etc/init.d/rcS <<'EOT'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
for m in $(cat /etc/modules); do modprobe $m 2>/dev/null; done
hostname guest
acpid -c /etc/acpi -l /var/log/acpid.log
ip link set lo up
for n in /sys/class/net/eth*; do
  [ -e "$n" ] || continue
  i=${n##*/}
  ip link set "$i" up
  udhcpc -i "$i" -b -S -t 4 -T 1 -A 5 -s /usr/share/udhcpc/default.script >/var/log/udhcpc-$i.log 2>&1
done
echo "GUEST-READY"
EOT
cat > $R/usr/share/udhcpc/default.script <<'EOT'
#!/bin/sh
# udhcpc hook: apply the lease to $interface.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
esac
exit 0
EOT
cat > $R/bin/context <<'EOT'
#!/bin/sh
# context [key]  -- read the server context (or one key, e.g. name, meta/foo, nics/0/mac) from ttyS1.
key="${1#/}"
dev=/dev/ttyS1
[ -c $dev ] || { echo "context: no $dev" >&2; exit 1; }
stty -F $dev raw -echo 2>/dev/null
exec 3<>$dev
printf '<\n%s\n>' "$key" >&3
out=$(timeout 5 head -n1 <&3 | tr -d '\004\r')
exec 3<&-
[ -n "$out" ] || { echo "context: no answer on $dev" >&2; exit 1; }
printf '%s\n' "$out"
EOT
chmod +x $R/etc/init.d/rcS $R/usr/share/udhcpc/default.script $R/bin/context
printf '#!/bin/sh\npoweroff\n' > $R/etc/acpi/PWRF/00000080
chmod +x $R/etc/acpi/PWRF/00000080
printf 'export PS1="\\w # "\nexport PATH=/bin\nexport HOME=/root\n' > $R/etc/profile
echo 'root::0:0:root:/root:/bin/sh' > $R/etc/passwd
echo 'root:x:0:' > $R/etc/group
(cd $R && find . | $BB cpio -o -H newc 2>/dev/null | gzip -9) > initrd.gz
cp k/boot/vmlinuz-$KVER vmlinuz

CFG='SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0 quiet'
mkdir -p iso/isolinux
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 iso/isolinux/
cp vmlinuz initrd.gz iso/
echo "$CFG" > iso/isolinux/isolinux.cfg
genisoimage -quiet -o boot.iso -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 \
  -boot-info-table -J -R -V OPENSIGMA iso
truncate -s 48M fat.img
mkfs.vfat -n OPENSIGMA fat.img >/dev/null
echo "$CFG" > syslinux.cfg
mcopy -i fat.img vmlinuz initrd.gz syslinux.cfg ::/
syslinux --install fat.img
qemu-img convert -f raw -O qcow2 fat.img boot-disk.qcow2

# Move into place atomically, VERSION last: a half-built OUTDIR is never taken as up to date.
rm -f "$OUT/VERSION"
for f in vmlinuz initrd.gz boot.iso boot-disk.qcow2; do mv -f "$f" "$OUT/$f.tmp" && mv -f "$OUT/$f.tmp" "$OUT/$f"; done
echo "$STAMP" > "$OUT/VERSION"
echo "build-images: built $OUT ($STAMP)"
