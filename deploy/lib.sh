# Shared steps of deploy/up and deploy/test (sourced, not run). Every step is idempotent.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CONTAINERVPS_VENV:-$REPO/.venv}"
CVPS="$VENV/bin/containervps"
PACKAGES=(
  lxd lxd-client lxcfs btrfs-progs dnsmasq-base squashfs-tools   # LXD and its storage/network
  nftables                                                       # LXD's NAT rules (SSH forwards)
  debootstrap busybox-static tar                                 # offline image builds
  qemu-system-x86 qemu-utils linux-image-amd64 cpio              # full VMs for the benchmark
  docker.io iptables                                             # app containers for the benchmark
  iproute2 openssh-client curl python3 python3-venv              # platform and tests
)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "error: run as root (LXD, lxcfs and apt need it)" >&2
    exit 1
  fi
}

install_packages() {
  local missing=()
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "system packages: all present"
    return
  fi
  say "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_venv() {
  local stamp="$VENV/.containervps-installed"
  local want
  want="$(sha256sum "$REPO/pyproject.toml" | cut -c1-16)"
  if [ -x "$CVPS" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    say "virtualenv $VENV: up to date"
    return
  fi
  say "installing containervps into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e "$REPO[test]"
  echo "$want" > "$stamp"
}

platform_up() {
  # $1: extra flags for `host start` (e.g. --docker)
  say "starting lxcfs and LXD"
  "$CVPS" host start ${1:-}
  say "host init"
  "$CVPS" host init
  say "migrating the database"
  "$CVPS" db upgrade
  say "building images (cached after the first run)"
  "$CVPS" image build busybox debian-12
}

check_package() {
  # What `pip install .` gives, in a clean venv: the CLI, the packaged migrations and the unit
  # tests run without the checkout (an editable install would hide a missing file or import).
  local dir
  dir="$(mktemp -d /tmp/cvps-package.XXXXXX)"
  "$VENV/bin/pip" wheel -q --no-deps "$REPO" -w "$dir/dist"
  python3 -m venv "$dir/venv"
  local wheel
  wheel="$(echo "$dir"/dist/containervps-*.whl)"
  "$dir/venv/bin/pip" install -q "$wheel"
  "$dir/venv/bin/containervps" --help >/dev/null
  CONTAINERVPS_DATA_DIR="$dir/data" "$dir/venv/bin/containervps" db upgrade
  # Only now the test tools: the two commands above ran on the runtime dependencies alone.
  "$dir/venv/bin/pip" install -q "$wheel[test]"
  cp -r "$REPO/tests" "$dir/tests"
  (cd "$dir" && "$dir/venv/bin/python" -m pytest -q -p no:cacheprovider -m "not integration" tests)
  rm -rf "$dir"
}
