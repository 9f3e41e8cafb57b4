#!/usr/bin/env bash
# Smoke test of the device-side flow of the core install (no PyTorch, no OpenVINO, no ModelOpt) on an arm64
# Debian root run under qemu-user emulation on an x86 host. It stands in for "a Jetson-like aarch64 box that only
# has `pip install refinenet-deploy`": the core wheel plus binary wheels of its dependencies (nothing compiled).
#
# What it does (each step is logged with its exit code and wall time to $LOG):
#   1. apt-get install qemu-user-static debootstrap; register qemu-aarch64 in binfmt_misc (F flag) if needed.
#   2. debootstrap an arm64 bookworm minbase root with python3/venv/pip at $ROOT (skipped if it already exists).
#   3. build the pure-Python core wheel on the host, copy it and a copy of a finished demo bundle into the root,
#      create a venv there and `pip install --only-binary=:all:` the wheel from PyPI; list what got installed.
#   4. in the copied bundle: doctor, bench, parity, report, pipeline --resume after deleting one target, and
#      `export onnx` (which needs the [export] extra: exit 4 expected).
#   5. unmount what it mounted inside the root (the root itself stays).
#
# Usage (as root, on a Debian/Ubuntu x86 host; needs the Debian mirror and PyPI):
#     bash benchmarks/qemu_arm64_smoke.sh
# Re-runnable: an existing root and venv are reused; the bundle copy and the wheel are refreshed each run.
# Environment knobs: ROOT (default /srv/arm64), BUNDLE_SRC (a finished bundle, default /tmp/democlone/rfdeploy-bundle,
# made by `rfdeploy pipeline` on the host), LOG (default /tmp/qemu_arm64_smoke.log), CMD_TIMEOUT (s per command),
# MOUNT_SYS=1 (also mount /sys in the root: reproduces the onnxruntime import crash described at step 3).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${ROOT:-/srv/arm64}
BUNDLE_SRC=${BUNDLE_SRC:-/tmp/democlone/rfdeploy-bundle}
WHEELS=${WHEELS:-/tmp/qemu-wheels}
LOG=${LOG:-/tmp/qemu_arm64_smoke.log}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CMD_TIMEOUT=${CMD_TIMEOUT:-1800}   # emulation measured ~600x slower than native for ORT here: be generous
HOST_PY=${HOST_PY:-$REPO/.venv/bin/python}

: >"$LOG"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }

# step NAME CMD...: run CMD, tee its output to the log, record exit code and wall time. Returns CMD's exit code.
step() {
    local name=$1; shift
    log ">>> $name: $*"
    local t0 t1 rc
    t0=$(date +%s.%N)
    "$@" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    t1=$(date +%s.%N)
    log "<<< $name: rc=$rc wall=$(printf '%.1f' "$(echo "$t1 - $t0" | bc)")s"
    return "$rc"
}

# in_root CMD: run a bash command line inside the arm64 root with a clean environment (no host PIP_* settings),
# the venv first on PATH, and a timeout enforced from the host side (the last command should `exec` the tool so
# that the timeout's signal reaches it).
in_root() {
    timeout --kill-after=30 "$CMD_TIMEOUT" chroot "$ROOT" /usr/bin/env -i \
        HOME=/root PATH=/root/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 TERM=dumb COLUMNS=140 PIP_CERT=/root/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_DEFAULT_TIMEOUT=180 /bin/bash -c "$1"
}

MOUNTED=()
cleanup() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[i]}" && log "unmounted ${MOUNTED[i]}" || log "could not unmount ${MOUNTED[i]}"
    done
}
trap cleanup EXIT
mount_in_root() {  # mount_in_root TARGET MOUNT-ARGS...
    local target=$ROOT/$1; shift
    mountpoint -q "$target" && return 0
    mkdir -p "$target"
    mount "$@" "$target" && MOUNTED+=("$target")
}

log "host: $(uname -srm); $(. /etc/os-release; echo "$PRETTY_NAME"); $(nproc) cores"

# ---- 1. qemu-user-static + binfmt -------------------------------------------------------------------------------
step apt-install apt-get install -y -q qemu-user-static debootstrap >/dev/null
log "qemu: $(qemu-aarch64-static --version | head -1); debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    # The package's postinst registers through systemd-binfmt/binfmt-support, absent in a container. Register the
    # package's own line (/usr/lib/binfmt.d/qemu-aarch64.conf: flags OPF; F opens the static interpreter now, so it
    # also works inside the chroot, which has no qemu binary of its own).
    log "qemu-aarch64 not registered by the postinst; registering /usr/lib/binfmt.d/qemu-aarch64.conf by hand"
    if [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
        cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
    else
        printf '%s' ':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
            >/proc/sys/fs/binfmt_misc/register
    fi
fi
cat /proc/sys/fs/binfmt_misc/qemu-aarch64 | tee -a "$LOG"

# ---- 2. arm64 root ----------------------------------------------------------------------------------------------
if [ ! -x "$ROOT/usr/bin/python3" ]; then
    step debootstrap debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$ROOT" "$MIRROR" || {
        log "one-stage debootstrap failed; trying --foreign + --second-stage"
        rm -rf "$ROOT"
        step debootstrap-foreign debootstrap --foreign --arch=arm64 --variant=minbase \
            --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$ROOT" "$MIRROR" &&
            step debootstrap-second chroot "$ROOT" /debootstrap/debootstrap --second-stage
    }
else
    log "reusing the existing root $ROOT"
fi
step uname-m chroot "$ROOT" uname -m
step python-version chroot "$ROOT" python3 --version
log "root glibc: $(chroot "$ROOT" ldd --version | head -1)"

# /proc and /dev are mounted; /sys is NOT by default. Under qemu-user 7.2 the guest reads the host's (x86) /proc/cpuinfo;
# with /sys present too, the cpuinfo library inside onnxruntime 1.32's aarch64 wheel crashes while
# `import onnxruntime` loads its extension (SIGSEGV, exit 139: what the first run of this script hit in every
# command that imports onnxruntime). Without /sys, cpuinfo_initialize fails cleanly (some "Error in cpuinfo" /
# "cpuinfo_initialize failed" warning lines on stderr) and ORT runs. MOUNT_SYS=1 reproduces the crash. (Checked by
# hand, not used for the runs: `import onnxruntime` also works with /sys plus an aarch64-format text file
# bind-mounted over the root's /proc/cpuinfo, so the crash is cpuinfo meeting x86 /proc/cpuinfo + aarch64 /sys.)
# A real aarch64 device has a real aarch64 /proc/cpuinfo: this is an emulation artefact, not a device problem.
MOUNT_SYS=${MOUNT_SYS:-0}
mount_in_root proc -t proc proc
[ "$MOUNT_SYS" = 1 ] && mount_in_root sys -t sysfs sysfs
mount_in_root dev --bind /dev
log "mounted in the root: proc, dev$([ "$MOUNT_SYS" = 1 ] && echo ', sys') (MOUNT_SYS=$MOUNT_SYS)"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# This sandbox reaches PyPI through a TLS-intercepting egress proxy whose CA only the host's bundle has: give pip
# in the root the host's bundle (in_root sets PIP_CERT=/root/host-ca.crt). Not needed on an ordinary network.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/root/host-ca.crt"

# ---- 3. core wheel + bundle into the root, venv, binary-only install -------------------------------------------
rm -rf "$WHEELS"
step wheel "$HOST_PY" -m pip wheel -q --no-deps --no-build-isolation "$REPO" -w "$WHEELS" || exit 1
WHEEL=$(ls "$WHEELS"/*.whl | head -1)
rm -f "$ROOT"/root/refinenet_deploy-*.whl
cp "$WHEEL" "$ROOT/root/"
rm -rf "$ROOT/root/rfdeploy-bundle"
cp -a "$BUNDLE_SRC" "$ROOT/root/rfdeploy-bundle"
log "copied $(basename "$WHEEL") and $BUNDLE_SRC -> $ROOT/root/rfdeploy-bundle"

[ -x "$ROOT/root/venv/bin/python" ] || step venv in_root "python3 -m venv /root/venv" || exit 1
step pip-install in_root "pip install --only-binary=:all: /root/$(basename "$WHEEL")" || {
    log "binary-only install failed: stopping"; exit 1; }
step pip-list in_root "pip list --format=freeze"
step pip-check in_root "pip check"
step absent in_root "for m in torch openvino modelopt safetensors onnxsim; do python -c \"import \$m\" 2>/dev/null && echo \"\$m: PRESENT\" || echo \"\$m: absent\"; done"
step import-ort in_root "python -X faulthandler -c 'import onnxruntime as o; print(o.__version__, o.get_available_providers())'"
step python-arch in_root "python -c 'import platform, sys; print(platform.machine(), sys.version.split()[0], platform.libc_ver())'"

# ---- 4. the device-side flow in the copied bundle ---------------------------------------------------------------
B=/root/rfdeploy-bundle
step doctor in_root "cd $B && exec rfdeploy doctor"
step bench in_root "cd $B && exec rfdeploy bench models/model.onnx --warmup 1 --iterations 3 --no-peak --json dev-bench.json"
step bench-json in_root "cd $B && python -c 'import json; d=json.load(open(\"dev-bench.json\")); print(\"compute_only:\", d[\"compute_only\"]); print(\"runtime:\", d[\"runtime\"], d[\"runtime_config\"], \"input\", d[\"input_size\"]); print(\"fingerprint:\", json.dumps(d.get(\"fingerprint\"))[:1200])'"
step parity in_root "cd $B && exec rfdeploy parity reference.npz models/model.onnx --data data/val --json dev-parity.json"
step parity-json in_root "cd $B && python -c 'import json; d=json.load(open(\"dev-parity.json\")); [print(k, \"=\", d.get(k)) for k in (\"passed\", \"failed_gates\", \"gates\", \"num_images\", \"reference_miou\", \"backend_miou\", \"miou_drop_points\", \"pixel_agreement\", \"boundary_agreement\", \"logit_max_abs_error\", \"runtime\", \"device\", \"versions\")]'"
step report in_root "cd $B && exec rfdeploy report dev-bench.json dev-parity.json -o dev-report.md"
step report-md in_root "cd $B && head -40 dev-report.md"
step pipeline-resume in_root "cd $B && rm -rf targets/cpu-onnxruntime-fp32 && exec rfdeploy pipeline --resume ."
step manifest in_root "cd $B && python -c 'import json; m=json.load(open(\"manifest.json\")); [print(k, v[\"status\"], v.get(\"p50_ms\"), v.get(\"miou_drop_points\"), v.get(\"pixel_agreement\"), v.get(\"reason\")) for k, v in m[\"targets\"].items()]'"
step target-files in_root "cd $B && ls -l targets/cpu-onnxruntime-fp32"
step export in_root "cd $B && exec rfdeploy export onnx checkpoint/*.safetensors -o /tmp/x.onnx"

# ---- optional: stale-lock takeover ------------------------------------------------------------------------------
# A run with MOUNT_SYS=1 segfaults inside `pipeline --resume` and leaves .pipeline/lock behind. Before the next run
# replaces the bundle copy, move it aside (mv $ROOT/root/rfdeploy-bundle $ROOT/root/rfdeploy-bundle.crashed-run1);
# STALE_LOCK_CHECK=1 then resumes that copy for 120 s to see the lock taken over (it is cut off mid-parity on purpose).
if [ "${STALE_LOCK_CHECK:-0}" = 1 ] && [ -d "$ROOT/root/rfdeploy-bundle.crashed-run1" ]; then
    step stale-lock-before cat "$ROOT/root/rfdeploy-bundle.crashed-run1/.pipeline/lock"
    CMD_TIMEOUT=120 step stale-lock in_root "cd /root/rfdeploy-bundle.crashed-run1 && exec rfdeploy pipeline --resume ."
    step stale-lock-after cat "$ROOT/root/rfdeploy-bundle.crashed-run1/.pipeline/lock"
fi

# ---- 5. cleanup (trap): unmount what was mounted above -----------------------------------------------------------
log "done; log at $LOG"
