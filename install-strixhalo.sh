#!/usr/bin/env bash
# install-strixhalo.sh: turn this machine into a Halo appliance (DESIGN.md section 7).
#
# Checks the machine, publishes the self-contained ReadyToRun `halo` CLI and `halo-server` daemon from this
# source tree (or takes pre-built ones with --from), installs them with the systemd units, the default
# configuration and the Prometheus/Grafana files, then runs `halo provision` for the rest (ROCm packages,
# the halo user, directories, kernel parameter, units enabled, first model, doctor).
# Idempotent: a second run changes nothing that is already in place and never overwrites local config.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: install-strixhalo.sh [options]

  --dry-run          print every step and change nothing (provision runs with --dry-run too)
  --prefix DIR       install programs under DIR/lib/halo, the `halo` link in DIR/bin (default: /usr)
  --root DIR         install into DIR as if it were / (image builds, tests); provision gets --root DIR
  --from DIR         install pre-built self-contained binaries from DIR (halo, halo-server and their
                     files, e.g. a release tarball) instead of publishing from source
  --source DIR       the Halo source tree to publish from (default: the directory of this script)
  --no-provision     install files only; skip `halo provision`
  --yes              answer yes to provision's questions (it still never changes the kernel command
                     line without saying so)
  -h, --help         this text
USAGE
}

log() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'install-strixhalo.sh: error: %s\n' "$*" >&2; exit 1; }

# --- options ---------------------------------------------------------------------------------------------
dry_run=0
prefix=/usr
root=""
from=""
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
provision=1
assume_yes=0

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift ;;
    --root=*) root=${1#*=} ;;
    --from) [ $# -ge 2 ] || die "--from needs a directory"; from=$2; shift ;;
    --from=*) from=${1#*=} ;;
    --source) [ $# -ge 2 ] || die "--source needs a directory"; source_dir=$2; shift ;;
    --source=*) source_dir=${1#*=} ;;
    --no-provision) provision=0 ;;
    --yes|-y) assume_yes=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

case "$prefix" in
  /*) prefix=${prefix%/} ;;
  *) die "--prefix must be an absolute path (it is written into the systemd units): $prefix" ;;
esac
[ -n "$prefix" ] || prefix=/usr
if [ -n "$root" ]; then
  root=$(realpath -m "$root")
  [ "$root" != / ] || root=""
fi
if [ -n "$from" ]; then
  [ -d "$from" ] || die "--from $from is not a directory"
  from=$(realpath "$from")
fi
source_dir=$(realpath "$source_dir")

libdir="$prefix/lib/halo"          # where the programs live on the target system (written into the units)
dest_lib="$root$libdir"            # where they are written now
dest_bin="$root$prefix/bin"
dest_share="$root$prefix/share/halo"
dest_doc="$root$prefix/share/doc/halo"
dest_units="$root/etc/systemd/system"
dest_etc="$root/etc/halo"

# run CMD...: execute, or only print it under --dry-run.
run() {
  if [ "$dry_run" = 1 ]; then
    printf '    [dry-run] %s\n' "$*"
  else
    "$@"
  fi
}

# --- 1. the machine ----------------------------------------------------------------------------------------
check_machine() {
  log "Checking the machine"
  if [ "$(id -u)" -ne 0 ] && [ -z "$root" ] && [ "$dry_run" = 0 ]; then
    die "run as root (sudo), or use --root DIR to install into a directory, or --dry-run to look"
  fi
  local kernel arch
  kernel=$(uname -s)
  [ "$kernel" = Linux ] || die "Halo runs on Linux, this is $kernel"
  arch=$(uname -m)
  case "$arch" in
    x86_64|amd64) note "architecture: $arch (linux-x64 build)" ;;
    *) die "unsupported architecture $arch: Halo ships linux-x64 builds for the Strix Halo (x86-64) box" ;;
  esac
  local os_release="$root/etc/os-release"
  [ -f "$os_release" ] || os_release=/etc/os-release
  if [ -f "$os_release" ]; then
    # Read, never sourced: under --root the file belongs to another system.
    note "system: $(sed -n 's/^PRETTY_NAME=//p' "$os_release" | tr -d '"')"
  fi
  if [ -z "$root" ] && [ -e /sys/class/kfd/kfd/topology/nodes ]; then
    note "GPU compute interface /dev/kfd present"
  elif [ -z "$root" ]; then
    note "no /sys/class/kfd: no AMD GPU compute yet (halo provision installs ROCm; the CPU backend works meanwhile)"
  fi
}

# --- 2. the binaries ---------------------------------------------------------------------------------------
# Leaves the self-contained payload (halo, halo-server, runtime, R2R assemblies) in $payload.
payload=""
work=""
cleanup() { if [ -n "$work" ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

build_payload() {
  if [ -n "$from" ]; then
    log "Using pre-built binaries from $from"
    local exe
    for exe in halo halo-server; do
      [ -x "$from/$exe" ] || die "$from/$exe is missing or not executable (expected a self-contained linux-x64 publish)"
    done
    payload=$from
    return
  fi
  log "Publishing self-contained ReadyToRun builds (linux-x64) from $source_dir"
  [ -f "$source_dir/Halo.Appliance.sln" ] || die "$source_dir is not a Halo source tree (no Halo.Appliance.sln); use --source or --from"
  command -v dotnet >/dev/null 2>&1 || die "the .NET 10 SDK (dotnet) is needed to publish from source; or install a release with --from DIR"
  if [ "$dry_run" = 1 ]; then
    payload="$source_dir/artifacts/publish"
    note "[dry-run] dotnet publish installer/Halo.Installer and src/Halo.Server -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true -o $payload"
    return
  fi
  work=$(mktemp -d)
  payload="$work/publish"
  local project
  # Both apps go to one directory: they share the runtime and every assembly, so it is installed once.
  for project in installer/Halo.Installer/Halo.Installer.csproj src/Halo.Server/Halo.Server.csproj; do
    note "dotnet publish $project"
    dotnet publish "$source_dir/$project" -c Release -r linux-x64 --self-contained true \
      -p:PublishReadyToRun=true -p:DebugType=none -p:GenerateDocumentationFile=false \
      -o "$payload" -nologo -v quiet >"$work/publish.log" 2>&1 \
      || { tail -n 40 "$work/publish.log" >&2; die "dotnet publish $project failed"; }
  done
}

# --- 3. install --------------------------------------------------------------------------------------------
# install_file SRC DEST MODE: copy when missing or different; says what it did.
install_file() {
  local src=$1 dest=$2 mode=$3
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    note "unchanged $dest"
    return
  fi
  note "install $dest"
  run mkdir -p "$(dirname "$dest")"
  run install -m "$mode" "$src" "$dest"
}

# install_config SRC DEST: local configuration is never overwritten; a newer default lands beside it.
install_config() {
  local src=$1 dest=$2
  if [ ! -f "$dest" ]; then
    note "install $dest"
    run mkdir -p "$(dirname "$dest")"
    run install -m 0644 "$src" "$dest"
  elif cmp -s "$src" "$dest"; then
    note "unchanged $dest"
  elif [ -f "$dest.dist" ] && cmp -s "$src" "$dest.dist"; then
    note "kept local $dest (the shipped default is $dest.dist)"
  else
    note "kept local $dest; the shipped default is written to $dest.dist"
    run install -m 0644 "$src" "$dest.dist"
  fi
}

install_programs() {
  log "Installing programs to $dest_lib"
  if [ "$dry_run" = 1 ]; then
    note "[dry-run] copy $payload -> $dest_lib (replaced as a whole), link $dest_bin/halo -> $libdir/halo"
    return
  fi
  if [ -d "$dest_lib" ] && diff -rq "$payload" "$dest_lib" >/dev/null 2>&1; then
    note "unchanged $dest_lib"
  else
    # Copy next to the target and swap, so a failed copy never leaves a half-installed mix of versions.
    mkdir -p "$(dirname "$dest_lib")"
    rm -rf "$dest_lib.new" "$dest_lib.old"
    mkdir -p "$dest_lib.new"
    cp -a "$payload/." "$dest_lib.new/"
    chmod -R u=rwX,go=rX "$dest_lib.new"
    chmod 0755 "$dest_lib.new/halo" "$dest_lib.new/halo-server"
    if [ -d "$dest_lib" ]; then mv "$dest_lib" "$dest_lib.old"; fi
    mv "$dest_lib.new" "$dest_lib"
    rm -rf "$dest_lib.old"
    note "installed $(du -sh "$dest_lib" | cut -f1) in $dest_lib"
  fi
  mkdir -p "$dest_bin"
  if [ "$(readlink "$dest_bin/halo" 2>/dev/null || true)" = "$libdir/halo" ]; then
    note "unchanged $dest_bin/halo"
  else
    ln -sfn "$libdir/halo" "$dest_bin/halo"
    note "link $dest_bin/halo -> $libdir/halo"
  fi
}

install_units() {
  log "Installing systemd units to $dest_units"
  local unit rendered
  rendered=$(mktemp)
  for unit in halo-server.service halo-server.socket halo-doctor.service halo-doctor.timer; do
    [ -f "$source_dir/systemd/$unit" ] || die "missing $source_dir/systemd/$unit"
    # The units name /usr/lib/halo and /usr/share/doc/halo; a different --prefix is written in here.
    sed -e "s#/usr/lib/halo/#$libdir/#g" -e "s#/usr/share/doc/halo/#$prefix/share/doc/halo/#g" \
      "$source_dir/systemd/$unit" >"$rendered"
    install_file "$rendered" "$dest_units/$unit" 0644
  done
  rm -f "$rendered"
}

install_support_files() {
  log "Installing configuration and monitoring files"
  local file
  for file in halo.yaml models.yaml; do
    if [ -f "$source_dir/config/$file" ]; then
      install_config "$source_dir/config/$file" "$dest_etc/$file"
    fi
  done
  install_file "$source_dir/config/prometheus/prometheus.yml" "$dest_share/prometheus/prometheus.yml" 0644
  install_file "$source_dir/config/prometheus/halo-alerts.yml" "$dest_share/prometheus/halo-alerts.yml" 0644
  install_file "$source_dir/config/grafana/halo-dashboard.json" "$dest_share/grafana/halo-dashboard.json" 0644
  # Scale-out example: the HAProxy config and the systemd drop-ins that open a box to its LAN.
  for file in haproxy.cfg halo-server.service.d/lan.conf halo-server.socket.d/lan.conf; do
    install_file "$source_dir/config/haproxy/$file" "$dest_share/haproxy/$file" 0644
  done
  install_file "$source_dir/config/nginx/halo.conf" "$dest_share/nginx/halo.conf" 0644
  install_file "$source_dir/README.md" "$dest_doc/README.md" 0644
}

reload_systemd() {
  if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    log "Reloading systemd"
    run systemctl daemon-reload
  fi
}

run_provision() {
  if [ "$provision" = 0 ]; then
    log "Skipping halo provision (--no-provision)"
    return
  fi
  local halo="$dest_lib/halo"
  [ "$dry_run" = 0 ] || [ -z "$from" ] || halo="$from/halo"
  local args=(provision)
  [ -z "$root" ] || args+=(--root "$root")
  [ "$dry_run" = 0 ] || args+=(--dry-run)
  [ "$assume_yes" = 0 ] || args+=(--yes)
  log "Running halo ${args[*]}"
  if [ ! -x "$halo" ] || { [ -n "$root" ] && [ ! -d "$root" ]; }; then
    # Under --dry-run nothing is built or created yet for provision to look at.
    note "[dry-run] $libdir/halo ${args[*]}"
    return
  fi
  "$halo" "${args[@]}" || die "halo provision failed (exit $?); fix what it reports and run this script again"
  if [ "$prefix" != /usr ] && [ "$dry_run" = 0 ]; then
    # provision installs the units built into `halo`, which name /usr/lib/halo: put back the --prefix ones.
    install_units
  fi
}

main() {
  local started=$SECONDS
  check_machine
  build_payload
  install_programs
  install_units
  install_support_files
  reload_systemd
  run_provision
  if [ "$dry_run" = 1 ]; then
    log "Dry run finished: nothing was changed"
  else
    log "Halo installed in $((SECONDS - started)) s: $dest_lib ($(du -sh "$dest_lib" | cut -f1)); next: halo doctor"
  fi
}

main
