#!/usr/bin/env bash
# Stops what tools/ci/slurm_up.sh started (slurmd, slurmctld, munged), by their pid files.
set -uo pipefail
for pid_file in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
    if [ -f "${pid_file}" ]; then
        kill "$(cat "${pid_file}")" 2>/dev/null || true
    fi
done
exit 0
