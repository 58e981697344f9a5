#!/usr/bin/env bash
# Builds the runtime image rocketmq-rs:<workspace version> (every binary in one image).
#
#   images/build.sh                       # cargo build --release, then the image, FROM scratch
#   images/build.sh --base debian:bookworm-slim
#   images/build.sh --profile dev --no-cargo --tag rocketmq-rs:test   # reuse built binaries
#
# The default base is `scratch`: the binaries go in with exactly the shared libraries they
# link (found with ldd), so the build needs no registry and works offline. Any other base
# must bring a glibc at least as new as this machine's; then no libraries are copied.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

profile=release
base=scratch
run_cargo=1
target_dir=${CARGO_TARGET_DIR:-$root/target}
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")
tag="rocketmq-rs:$version"
bins=(mqnamesrv mqcontroller mqbroker mqproxy mqadmin rocketmq-operator)

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  echo "options: --profile release|dev  --base IMAGE  --tag NAME:TAG  --no-cargo  --target-dir DIR"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --no-cargo) run_cargo=0; shift ;;
    --target-dir) target_dir=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$profile" in
  release) bin_dir=$target_dir/release ;;
  dev) bin_dir=$target_dir/debug ;;
  *) bin_dir=$target_dir/$profile ;;
esac

for tool in docker ldd; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is required" >&2; exit 1; }
done

if [ "$run_cargo" = 1 ]; then
  bin_args=()
  for b in "${bins[@]}"; do bin_args+=(--bin "$b"); done
  (cd "$root" && cargo build --locked --profile "$profile" --target-dir "$target_dir" "${bin_args[@]}")
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/rootfs/usr/local/bin" "$stage/rootfs/etc" "$stage/rootfs/tmp" \
  "$stage/writable/store" "$stage/writable/home/rocketmq"
chmod 1777 "$stage/rootfs/tmp"

for b in "${bins[@]}"; do
  [ -x "$bin_dir/$b" ] || { echo "build.sh: $bin_dir/$b is missing (build it, or drop --no-cargo)" >&2; exit 1; }
  # Symbols and debug info stay on the build machine; the image carries code only.
  if command -v objcopy >/dev/null; then
    objcopy --strip-all "$bin_dir/$b" "$stage/rootfs/usr/local/bin/$b"
  else
    cp "$bin_dir/$b" "$stage/rootfs/usr/local/bin/$b"
  fi
done

if [ "$base" = scratch ]; then
  # The dynamic loader and every library the binaries link, at the paths they are looked
  # up by (symlinks resolved to their files).
  libs=$(for b in "${bins[@]}"; do ldd "$stage/rootfs/usr/local/bin/$b"; done |
    awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]*ld-linux/ { print $1 }' | sort -u)
  for lib in $libs; do
    mkdir -p "$stage/rootfs$(dirname "$lib")"
    cp -L "$lib" "$stage/rootfs$lib"
  done
  # Names for the numeric users (ps, ls), and name resolution through /etc/hosts, then DNS.
  printf 'root:x:0:0:root:/root:/sbin/nologin\nrocketmq:x:10001:10001:rocketmq:/home/rocketmq:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    >"$stage/rootfs/etc/passwd"
  printf 'root:x:0:\nrocketmq:x:10001:\nnonroot:x:65532:\n' >"$stage/rootfs/etc/group"
  printf 'hosts: files dns\n' >"$stage/rootfs/etc/nsswitch.conf"
fi

cp "$root/images/Dockerfile" "$stage/Dockerfile"
# The Debian engine ships without the BuildKit plugin; the classic builder reads the same
# Dockerfile.
if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi
docker build --quiet --build-arg "BASE=$base" --build-arg "VERSION=$version" -t "$tag" "$stage" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "built $tag from $base ($profile binaries): $((size / 1024 / 1024)) MiB"
