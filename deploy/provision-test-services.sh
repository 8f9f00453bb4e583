#!/usr/bin/env bash
# Install and start the real services the service tests stand on, on THIS machine:
#   - a one-node SLURM: Debian packages slurm-wlm and munge; /etc/munge/munge.key is created
#     if missing and munged is started (tests/services.py starts slurmctld/slurmd per test,
#     with a configuration in the test's temporary directory);
#   - an xrootd server: xrootd-server (started per test on 127.0.0.1, as nobody);
#   - headless Chromium for the HTML tests: chromium.
#   - a Dask Gateway: nothing here. dask-gateway-server (with its Go proxy binary) is a Python
#     package of the `test` extra; tests/services.py starts it per test on 127.0.0.1 with the
#     local backend (schedulers and workers as processes of the test's user) and stops it.
#
# This changes the machine (packages, a munge key, a daemon), so pytest never does it: `make test`
# only detects the services and skips the tests that need an absent one, with the reason.
# `.ci/run` calls this script before `make test`; on a workstation run it on purpose, as root:
#
#   sudo deploy/provision-test-services.sh
#
# Idempotent: installed packages and a running munged are left as they are. Exit status 0 when
# everything is ready or there is nothing it may do here (not root, no apt-get,
# WMASS_NO_SERVICES=1: the service tests are then skipped), non-zero when a step failed.
set -euo pipefail

say() { echo "[provision-test-services] $*" >&2; }

if [ "${WMASS_NO_SERVICES:-0}" = 1 ]; then
    say "WMASS_NO_SERVICES=1: nothing provisioned, the service tests will be skipped"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "needs root and apt-get (Debian/Ubuntu): nothing provisioned, the service tests will be skipped"
    exit 0
fi

# binary -> Debian package
declare -A PACKAGE=(
    [slurmctld]=slurm-wlm [slurmd]=slurm-wlm [srun]=slurm-wlm [munged]=munge
    [xrootd]=xrootd-server [chromium]=chromium
)
missing=()
for exe in "${!PACKAGE[@]}"; do
    if ! command -v "$exe" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$exe" ]; then
        pkg=${PACKAGE[$exe]}
        [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
    key=/etc/munge/munge.key
    if [ ! -f "$key" ]; then
        say "creating $key"
        if command -v mungekey >/dev/null 2>&1; then mungekey -c; else create-munge-key -f; fi
    fi
    chown munge:munge "$key"
    chmod 0400 "$key"
    mkdir -p /run/munge
    chown munge:munge /run/munge
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 75); do munge_ok && break; sleep 0.2; done
    munge_ok || { say "munged did not come up within 15 s"; exit 1; }
fi
say "ready: slurm-wlm, munge (munged running), xrootd-server, chromium"
