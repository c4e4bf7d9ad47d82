#!/bin/sh
# Run by `npm install`: when QEMU is installed, build the library's bootable guest images (scripts/build-images.sh:
# the tiny busybox guest, ~10 s; scripts/build-debian-image.sh: the "Debian 12" drive, ~1-3 min, cached until its
# recipe changes) so a new user can boot something real. OPENSIGMA_SKIP_IMAGES=1 skips both. Never fails the install: without QEMU or the rights to fetch Debian
# packages, it says how to build them later and the library simply has no images yet.
cd "$(dirname "$0")/.." || exit 0
[ -n "${OPENSIGMA_SKIP_IMAGES:-}" ] && exit 0
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  echo "opensigma: QEMU is not installed; library images not built (see docs/qemu.md to build them later)"
  exit 0
fi
if sh scripts/build-images.sh >/dev/null 2>scripts/.build-images.log; then
  echo "opensigma: library guest images are ready in library/images"
  rm -f scripts/.build-images.log
else
  echo "opensigma: could not build the library guest images (see scripts/.build-images.log); run 'sh scripts/build-images.sh' as root later"
fi
if sh scripts/build-debian-image.sh >/dev/null 2>scripts/.build-debian-image.log; then
  echo "opensigma: the Debian 12 library drive is ready in library/images/debian-12"
  rm -f scripts/.build-debian-image.log
else
  echo "opensigma: could not build the Debian 12 library drive (see scripts/.build-debian-image.log); run 'sh scripts/build-debian-image.sh' as root later"
fi
exit 0
