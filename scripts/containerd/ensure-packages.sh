#!/usr/bin/env bash
# Installs what the real-runtime tests, `npm run bench -- --runtime containerd`
# and `kubesocks demo --sandboxes containerd` need: containerd (with ctr), runc,
# the CNI plugins (bridge, host-local, loopback in /usr/lib/cni) and a static
# busybox for the pods' image. Debian packages only; nothing is pulled from a
# registry at run time (the image is built locally, see src/sim/runtime/image.ts).
#
# Without root or off Linux the runtime cannot run containers at all: say so
# and exit 0, so the tests skip with that reason — except in CI (CI=true),
# where skipping would hide them, so there it is an error.
set -euo pipefail

unable() {
  if [ "${CI:-}" = "true" ]; then
    echo "CI: the real-runtime tests cannot run here ($1); failing rather than skipping them" >&2
    exit 1
  fi
  echo "real-runtime tests will be skipped: $1" >&2
  exit 0
}

[ "$(uname -s)" = "Linux" ] || unable "containers need Linux, this is $(uname -s)"
[ "$(id -u)" -eq 0 ] || unable "containerd needs root, this is uid $(id -u) (run as root, e.g. sudo -E npm run test:runtime)"

missing=()
command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 || missing+=(containerd)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] || missing+=(containernetworking-plugins)
# The image copies /bin/busybox into a layer with nothing else: it must be the static build.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || missing+=(busybox-static)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
[ ${#missing[@]} -eq 0 ] && exit 0

command -v apt-get >/dev/null 2>&1 || unable "no apt-get to install ${missing[*]}"
echo "installing for the real-runtime tests: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# busybox-static replaces the dynamic busybox package where that is installed.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts the system's containerd; the tests run their own
# with a private state directory and socket, so the system one is not needed.
echo "installed: ${missing[*]}" >&2
