#!/bin/sh
# build-debian-image.sh [--check] [OUTDIR] -- build the "Debian 12" library disk from Debian's packages.
#
# OUTDIR defaults to library/images/debian-12 next to this script's repository, where library/debian-12.json offers
# it as a library drive. Outputs in OUTDIR:
#   disk.qcow2   a bootable disk: MBR partition table, GRUB (from grub-pc-bin, written without mounting anything),
#                one ext4 root partition labelled "root" that cloud-init grows to the drive's size at first boot
#   VERSION      the hash of this recipe and the mirror it was built from
#
# The guest: Debian 12 (bookworm) with systemd, cloud-init (its CloudSigma datasource reads the server context on
# ttyS1), openssh-server, ifupdown + isc-dhcp-client, sudo, python3. The default user is "debian" (SSH keys only, no
# password). SSH host keys and the machine id are removed from the image, so every clone makes its own at first boot.
#
# --check: exit 0 when OUTDIR is up to date, 1 otherwise; builds nothing.
# Mirror: OPENSIGMA_DEBIAN_MIRROR, else the Debian archive this machine's apt uses, else http://deb.debian.org/debian.
# Needs root (mmdebstrap --mode=root runs the packages' scripts in a chroot) and apt-get; installs its tools when missing.
# Idempotent: when OUTDIR/VERSION matches the recipe and the mirror, nothing is rebuilt (~66 s on 2 cores otherwise).
set -eu

CHECK=0
if [ "${1:-}" = --check ]; then CHECK=1; shift; fi
OUT=$(realpath -m "${1:-$(dirname "$0")/../library/images/debian-12}")
SIZE_MIB=${OPENSIGMA_DEBIAN_IMAGE_MIB:-2048}

# The first "deb" URI of apt's own sources that serves bookworm's main archive (not the security one).
apt_mirror() {
  {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed 's/\[[^]]*\]//' | awk '$1 == "deb" && $3 == "bookworm" {print $2}'
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |\n|$)/ { if (match($0, /URIs: *[^ \n]+/)) print substr($0, RSTART + 6, RLENGTH - 6) }' "$f" | tr -d ' '
    done
  } | grep -v -e security -e '^$' | head -n1
}
MIRROR=${OPENSIGMA_DEBIAN_MIRROR:-$(apt_mirror || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

SELF_HASH=$(sha256sum "$0" | cut -c1-16)
STAMP="recipe=$SELF_HASH size=${SIZE_MIB}M mirror=$MIRROR"
if [ -f "$OUT/VERSION" ] && [ "$(cat "$OUT/VERSION")" = "$STAMP" ] && [ -f "$OUT/disk.qcow2" ]; then
  [ $CHECK = 1 ] || echo "build-debian-image: $OUT is up to date ($STAMP)"
  exit 0
fi
[ $CHECK = 0 ] || exit 1

missing=""
command -v mmdebstrap >/dev/null || missing="$missing mmdebstrap"
command -v grub-mkimage >/dev/null || missing="$missing grub-common"
[ -f /usr/lib/grub/i386-pc/boot.img ] || missing="$missing grub-pc-bin"
command -v sfdisk >/dev/null || missing="$missing fdisk"
command -v qemu-img >/dev/null || missing="$missing qemu-utils"
if [ -n "$missing" ]; then
  echo "build-debian-image: installing$missing" >&2
  if [ "$(id -u)" != 0 ]; then echo "build-debian-image: need root to install:$missing" >&2; exit 1; fi
  [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ] || apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
fi
if [ "$(id -u)" != 0 ]; then echo "build-debian-image: mmdebstrap --mode=root needs root" >&2; exit 1; fi

mkdir -p "$OUT"
W=$(mktemp -d)
chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
cd "$W"

PACKAGES=linux-image-cloud-amd64,systemd-sysv,udev,cloud-init,cloud-guest-utils,fdisk,openssh-server,ifupdown,isc-dhcp-client
# dbus: systemd-logind (which turns the ACPI power button into a clean shutdown) needs it.
PACKAGES=$PACKAGES,netbase,iproute2,sudo,ca-certificates,python3,python3-serial,e2fsprogs,dbus

# Everything about the guest's own configuration, run inside the new root filesystem ($1).
cat > customize.sh <<'EOT'
#!/bin/sh
set -eu
R=$1
echo "LABEL=root / ext4 defaults,errors=remount-ro 0 1" > "$R/etc/fstab"
# Each clone is a machine of its own: systemd makes a machine id and cloud-init SSH host keys at first boot.
rm -f "$R"/etc/ssh/ssh_host_*
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
echo localhost > "$R/etc/hostname"
# Not the build host's resolver: the guest's DHCP lease says which nameserver it has, if any.
rm -f "$R/etc/resolv.conf"
: > "$R/etc/resolv.conf"
echo 'LANG=C.UTF-8' > "$R/etc/default/locale"
cat > "$R/etc/cloud/cloud.cfg.d/90-opensigma.cfg" <<'EOF'
# opensigma: the server context on ttyS1 is the only datasource (None keeps a boot without it going).
datasource_list: [ CloudSigma, None ]
# C.UTF-8 is built into glibc: nothing to generate (en_US.UTF-8, the default, is not in the image).
locale: C.UTF-8
growpart:
  mode: auto
  devices: ['/']
resize_rootfs: true
# The hostname (the server's name) resolves locally, so sudo does not wait for a resolver.
manage_etc_hosts: true
EOF
mkdir -p "$R/boot/grub"
cat > "$R/boot/grub/grub.cfg" <<'EOF'
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry "Debian 12" {
  # /vmlinuz and /initrd.img are the links Debian's kernel packages keep on the newest kernel.
  linux /vmlinuz root=LABEL=root ro console=tty0 console=ttyS0,115200 net.ifnames=0
  initrd /initrd.img
}
EOF
[ -e "$R/vmlinuz" ] && [ -e "$R/initrd.img" ] || { echo "customize: no /vmlinuz or /initrd.img links" >&2; exit 1; }
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/log/*.log
EOT
chmod +x customize.sh

# No manual pages, documentation (but the copyright files) or translations: a smaller, faster image and build.
mmdebstrap --quiet --mode=root --variant=apt --components=main --include="$PACKAGES" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --aptopt='Acquire::Languages "none"' \
  --customize-hook="$W/customize.sh \"\$1\"" \
  bookworm rootfs "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" >&2

# The disk: 1 MiB for the MBR and GRUB's core image, then the root partition, filled by mkfs.ext4 -d (no mount).
truncate -s "${SIZE_MIB}M" disk.img
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q disk.img
mkfs.ext4 -q -F -L root -E offset=1048576 -d rootfs disk.img $(( (SIZE_MIB - 1) * 1024 ))k
# GRUB for BIOS, as grub-install would place it: boot.img in the MBR's code area (the partition table stays), the
# core image (with what it needs to read the root partition) from sector 1; boot.img loads sector 1 by default.
grub-mkimage -O i386-pc -o core.img -p '(hd0,msdos1)/boot/grub' \
  biosdisk part_msdos ext2 normal linux echo serial terminal configfile test gzio
[ "$(stat -c %s core.img)" -lt $((2047 * 512)) ] || { echo "build-debian-image: core.img too big" >&2; exit 1; }
dd if=/usr/lib/grub/i386-pc/boot.img of=disk.img bs=446 count=1 conv=notrunc status=none
dd if=core.img of=disk.img bs=512 seek=1 conv=notrunc status=none
qemu-img convert -c -f raw -O qcow2 disk.img disk.qcow2

rm -f "$OUT/VERSION"
mv -f disk.qcow2 "$OUT/disk.qcow2.tmp" && mv -f "$OUT/disk.qcow2.tmp" "$OUT/disk.qcow2"
echo "$STAMP" > "$OUT/VERSION"
echo "build-debian-image: built $OUT ($STAMP)"
