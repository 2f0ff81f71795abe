#!/bin/bash
# Run by scripts/test-cluster.sh AS THE CLUSTER USER over the real sshd
# (`ssh ... 'bash -s -- KIND NODE' < check-job.sh`): submits a 2-task Node array job to
# Grid Engine (KIND=sge) or SLURM (KIND=slurm), waits for it, and checks both tasks wrote
# their output (and, for SLURM, that sacct records them). Exit 0 and a one-line summary on
# success; non-zero with scheduler diagnostics otherwise.
set -euo pipefail
kind=$1
node=$2
dir=$HOME/.sheepdog-cluster-check/$kind
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
# `//$` directive prefix (qsub -C) because `#$` lines are not valid JavaScript (§1.8);
# sbatch needs the `#!` line (§2.5).
cat >check.js <<EOF
#!$node
const id = process.env.SGE_TASK_ID || process.env.SLURM_ARRAY_TASK_ID;
console.log('sheepdog-check task ' + id + ' ok, node ' + process.version);
EOF
chmod 700 check.js

check_outputs() { # FILE...
  local f i=0
  for f in "$@"; do
    i=$((i + 1))
    if ! grep -q "^sheepdog-check task $i ok" "$f" 2>/dev/null; then
      echo "task $i wrote no expected output to $f; files in $dir:" >&2
      ls -l "$dir" >&2
      tail -n 20 "$dir"/*.[eo]* "$dir"/*.out 2>/dev/null >&2 || true
      return 1
    fi
  done
}

case $kind in
  sge)
    rc=0
    out=$(timeout 60 qsub -terse -sync y -C '//$' -t 1-2 -N sdcheck -S "$node" \
      -wd "$dir" -o "$dir" -e "$dir" "$dir/check.js" 2>&1) || rc=$?
    # -terse prints "ID.1-2:1" first, but after an interrupt other lines may come first.
    id=$(printf '%s\n' "$out" | grep -m 1 -oE '^[0-9]+' || true)
    if [ "$rc" != 0 ]; then
      echo "qsub -sync y exited $rc:" >&2
      printf '%s\n' "$out" >&2
      if [[ $id =~ ^[0-9]+$ ]]; then
        qstat -j "$id" >&2 || true
        qdel "$id" >&2 || true
      fi
      qstat -f >&2 || true
      exit 1
    fi
    check_outputs "$dir/sdcheck.o$id.1" "$dir/sdcheck.o$id.2" || exit 1
    echo "job $id, tasks 1-2: $(head -n 1 "$dir/sdcheck.o$id.2")"
    ;;
  slurm)
    out=$(sbatch --parsable --array=1-2 -J sdcheck -o "$dir/%x.%A_%a.out" "$dir/check.js")
    id=${out%%;*}
    SECONDS=0
    # `sbatch --wait` polls slowly (~10 s for a 1 s job, §2.4): poll squeue instead.
    while [ -n "$(squeue -h -j "$id" 2>/dev/null)" ]; do
      if [ "$SECONDS" -ge 60 ]; then
        echo "job $id still queued or running after 60 s:" >&2
        squeue -j "$id" >&2 || true
        scontrol show job "$id" >&2 || true
        sinfo >&2 || true
        scancel "$id" || true
        exit 1
      fi
      sleep 0.2
    done
    check_outputs "$dir/sdcheck.${id}_1.out" "$dir/sdcheck.${id}_2.out" || {
      squeue -h -j "$id" -t all -o '%i %T %r' >&2 || true
      exit 1
    }
    # sacct lags squeue by 1-2 s (§2.6).
    SECONDS=0
    until [ "$(sacct -j "$id" -X -n -P --format=JobID,State 2>/dev/null | grep -c '|COMPLETED$')" = 2 ]; do
      if [ "$SECONDS" -ge 30 ]; then
        echo "sacct does not show job $id as 2 COMPLETED tasks after 30 s:" >&2
        sacct -j "$id" -X -n -P --format=JobID,State,ExitCode >&2 || true
        exit 1
      fi
      sleep 0.3
    done
    echo "job $id, tasks 1-2 (sacct: COMPLETED): $(head -n 1 "$dir/sdcheck.${id}_2.out")"
    ;;
  *)
    echo "unknown kind $kind" >&2
    exit 2
    ;;
esac
