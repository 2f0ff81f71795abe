#!/usr/bin/env bash
# Test cluster for Sheepdog's end-to-end tests: an OpenSSH server on 127.0.0.1:2222
# (key-only, user sgeuser), a single-node Grid Engine and a single-node SLURM, installed,
# configured and started WITHOUT systemd on a Debian 12 machine, idempotently.
# The facts behind every step are in ../shared/docs/cluster-setup.md (cited as §x.y).
#
# Usage (as root):
#   scripts/test-cluster.sh [--only ssh,sge,slurm]   install/configure/start, run a job, write cluster.env
#   scripts/test-cluster.sh --status [--only ...]    show what runs (exit 0 only if all selected are up)
#   scripts/test-cluster.sh --stop   [--only ...]    stop the daemons (packages and config stay)
# sge and slurm imply ssh: their check jobs are submitted over the real sshd.
set -Eeuo pipefail
umask 022

readonly STATE=/var/lib/sheepdog-cluster
readonly ENV_FILE=$STATE/cluster.env
readonly SSH_PORT=2222
readonly SSH_USER=sgeuser
readonly SSHD_CONFIG=$STATE/sshd_config
readonly SSHD_PIDFILE=/run/sheepdog-sshd-$SSH_PORT.pid
readonly SSHD_LOG=$STATE/sshd.log
readonly HOST_KEY=$STATE/ssh_host_ed25519_key
readonly CLIENT_KEY=$STATE/client_ed25519
readonly KNOWN_HOSTS=$STATE/known_hosts
readonly SGE_ROOT=/var/lib/gridengine
readonly SGE_CELL=default
readonly SGE_COMMON=$SGE_ROOT/$SGE_CELL/common
readonly SGE_BIN=/usr/lib/gridengine          # real client binaries: the /usr/bin wrappers run cpp per call (§1.5)
readonly QMASTER_PIDFILE=/var/spool/gridengine/qmaster/qmaster.pid
readonly QMASTER_LOG=/var/spool/gridengine/qmaster/messages
readonly SLURM_CONF=/etc/slurm/slurm.conf
readonly SLURMDBD_CONF=/etc/slurm/slurmdbd.conf
readonly MYSQL_SOCKET=/run/mysqld/mysqld.sock
readonly MYSQL_LOG=/var/log/mysql-sheepdog.log
readonly SLURMDBD_PASS=slurm-sheepdog-test
# Clean environment for every daemon: sge_execd hands its own environment to each job (§1.3).
readonly -a CLEAN_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SELF_DIR
readonly HELPERS=$SELF_DIR/test-cluster
HOST=$(hostname)
HOST_S=$(hostname -s)
readonly HOST HOST_S
NODE_BIN=$(command -v node || true)
readonly NODE_BIN

# ---------------------------------------------------------------- logging and helpers

T0=$(date +%s%N)
log() { printf '[%s +%6.1fs] %s\n' "$(date +%H:%M:%S)" "$(( ($(date +%s%N) - T0) / 1000000 ))e-3" "$*"; }
warn() { log "WARNING: $*" >&2; }
die() { log "FAILED: $*" >&2; exit 1; }
# die_logs MESSAGE FILE...: fail loudly with the tail of the relevant daemon logs.
die_logs() {
  local msg=$1 f; shift
  for f in "$@"; do
    [ -e "$f" ] || continue
    printf '\n----- last 30 lines of %s -----\n' "$f" >&2
    tail -n 30 "$f" >&2 || true
  done
  die "$msg"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# wait_for SECONDS DESCRIPTION CMD...: poll CMD (quietly) every 0.2 s until it succeeds.
wait_for() {
  local timeout=$1 desc=$2; shift 2
  local deadline=$(( $(now_ms) + timeout * 1000 ))
  until "$@" </dev/null >/dev/null 2>&1; do
    if [ "$(now_ms)" -ge "$deadline" ]; then
      warn "timed out after ${timeout}s waiting for: $desc"
      return 1
    fi
    sleep 0.2
  done
}

# The init here (PID 1) reaps orphans late: a killed daemon stays a zombie for seconds and
# kill -0 still succeeds on it, so state Z/X counts as "not running" (§3).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  case ${stat%% *} in Z | X | x) return 1 ;; esac
}
# pid_of COMM PIDFILE [PGREP_ARGS...]: pid of a live process named COMM, from its pid file,
# else the oldest live match of pgrep (default: pgrep -x COMM).
pid_of() {
  local comm=$1 pidfile=$2 p; shift 2
  if [ -r "$pidfile" ]; then
    p=$(tr -dc 0-9 <"$pidfile")
    if [ -n "$p" ] && alive "$p" && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$comm" ]; then
      echo "$p"
      return 0
    fi
  fi
  [ $# -gt 0 ] || set -- -x "$comm"
  for p in $(pgrep "$@" 2>/dev/null | sort -n); do
    if alive "$p" && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$comm" ]; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
# stop_pid PID NAME SECONDS: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local pid=$1 name=$2 timeout=$3
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  if ! wait_for "$timeout" "$name (pid $pid) to exit" eval "! alive $pid"; then
    warn "$name (pid $pid) ignored SIGTERM for ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for 10 "$name (pid $pid) to die" eval "! alive $pid" || die "$name (pid $pid) survived SIGKILL"
  fi
}

# Whether this run changed anything: a file, because components run in subshells.
CHANGED_FLAG=
mark_changed() { [ -z "$CHANGED_FLAG" ] || : >"$CHANGED_FLAG"; }
# put_file DEST MODE OWNER:GROUP < content: replace DEST only when the content, mode or owner
# differ; returns 0 when something changed, 1 when DEST was already right.
put_file() {
  local dest=$1 mode=$2 owner=$3 tmp
  tmp=$(mktemp "$dest.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest" &&
    [ "$(stat -c '%a %U:%G' "$dest")" = "$(stat -c '%a %U:%G' "$tmp")" ]; then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$dest"
  log "wrote $dest"
  mark_changed
  return 0
}

# ---------------------------------------------------------------- packages

pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

# ensure_packages PKG...: install what is missing (one apt-get update first unless the lists are fresh).
ensure_packages() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Lists are "fresh" when apt-get update succeeded less than 6 hours ago.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_InRelease' -mmin -360 2>/dev/null | head -n 1)" ]; then
    log "apt-get update"
    apt-get -q -o DPkg::Lock::Timeout=600 update >"$STATE/apt-update.log" 2>&1 ||
      die_logs "apt-get update failed" "$STATE/apt-update.log"
  else
    log "apt lists are fresh (< 6 h): skipping apt-get update"
  fi
  # A Docker-style image has /usr/sbin/policy-rc.d (exit 101), so postinsts start nothing.
  # Without one, postinsts would start daemons through init scripts: add one for the install.
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local rc=0
  apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    install "${missing[@]}" >"$STATE/apt-install.log" 2>&1 || rc=$?
  [ "$own_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || die_logs "apt-get install ${missing[*]} failed (exit $rc)" "$STATE/apt-install.log"
  log "installed: ${missing[*]}"
}

# ---------------------------------------------------------------- OpenSSH (§1.7)

ssh_cmd() {
  ssh -i "$CLIENT_KEY" -o UserKnownHostsFile="$KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=10 \
    -o LogLevel=ERROR -p "$SSH_PORT" "$SSH_USER@127.0.0.1" "$@"
}
sshd_pid() { pid_of sshd "$SSHD_PIDFILE" -f "^/usr/sbin/sshd -f $SSHD_CONFIG"; }

ssh_up() {
  log "== OpenSSH on 127.0.0.1:$SSH_PORT"
  ensure_packages openssh-server openssh-client

  if ! id -u "$SSH_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$SSH_USER"
    log "created user $SSH_USER"
  fi
  local uid home node_version
  uid=$(id -u "$SSH_USER")
  home=$(getent passwd "$SSH_USER" | cut -d: -f6)
  # Grid Engine refuses uids below min_uid 1000 (§1.6).
  [ "$uid" -ge 1000 ] || die "$SSH_USER has uid $uid; Grid Engine needs uid >= 1000"

  [ -f "$HOST_KEY" ] || { ssh-keygen -q -t ed25519 -N '' -C "sheepdog-test-cluster host key" -f "$HOST_KEY" && log "generated $HOST_KEY"; }
  [ -f "$CLIENT_KEY" ] || { ssh-keygen -q -t ed25519 -N '' -C "sheepdog-test-cluster client key" -f "$CLIENT_KEY" && log "generated $CLIENT_KEY"; }
  chmod 600 "$HOST_KEY" "$CLIENT_KEY"

  put_file "$KNOWN_HOSTS" 644 root:root <<<"[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$HOST_KEY.pub")" || true

  install -d -m 700 -o "$SSH_USER" -g "$SSH_USER" "$home/.ssh"
  local pub
  pub=$(cat "$CLIENT_KEY.pub")
  if ! grep -qxF "$pub" "$home/.ssh/authorized_keys" 2>/dev/null; then
    printf '%s\n' "$pub" >>"$home/.ssh/authorized_keys"
    log "authorized the client key for $SSH_USER"
  fi
  chown "$SSH_USER:$SSH_USER" "$home/.ssh/authorized_keys"
  chmod 600 "$home/.ssh/authorized_keys"

  # UsePAM yes: useradd leaves the password locked ("!"), and only with PAM may a locked
  # account log in with a key.
  local cfg_changed=0
  put_file "$SSHD_CONFIG" 644 root:root <<EOF && cfg_changed=1 || true
# Written by scripts/test-cluster.sh: the Sheepdog test cluster's own sshd.
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $HOST_KEY
PidFile $SSHD_PIDFILE
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $SSH_USER
UsePAM yes
X11Forwarding no
PrintMotd no
SetEnv SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL
Subsystem sftp internal-sftp
EOF
  install -d -m 755 /run/sshd # privilege-separation directory: sshd (and sshd -t) need it
  /usr/sbin/sshd -t -f "$SSHD_CONFIG" || die "sshd -t rejects $SSHD_CONFIG"

  local pid
  if pid=$(sshd_pid); then
    if [ "$cfg_changed" = 1 ]; then
      log "sshd config changed: reloading sshd (pid $pid)"
      kill -HUP "$pid"
      sleep 0.5
    fi
  else
    log "starting sshd"
    mark_changed
    "${CLEAN_ENV[@]}" /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$SSHD_LOG" </dev/null >>"$STATE/sshd.out" 2>&1 9>&- ||
      die_logs "sshd did not start" "$SSHD_LOG" "$STATE/sshd.out"
  fi
  wait_for 20 "ssh login as $SSH_USER" ssh_cmd true || die_logs "cannot log in as $SSH_USER over ssh" "$SSHD_LOG"
  log "sshd is up (pid $(sshd_pid)); key login as $SSH_USER works"

  # Node on the "nodes": the workers run it as $SSH_USER.
  if [ -z "$NODE_BIN" ]; then
    warn "no node in root's PATH: Sheepdog workers cannot run on this cluster"
  elif ! node_version=$(ssh_cmd "$NODE_BIN --version" </dev/null 2>&1); then
    warn "$SSH_USER cannot run $NODE_BIN ($node_version): Sheepdog workers cannot run on this cluster"
  else
    log "$SSH_USER runs $NODE_BIN ($node_version)"
  fi
}

ssh_down() {
  local pid
  if pid=$(sshd_pid); then stop_pid "$pid" sshd 10; else log "sshd is not running"; fi
}

# ---------------------------------------------------------------- Grid Engine (§1)

sge_env() { "${CLEAN_ENV[@]}" SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL "$@"; }
qconf() { sge_env "$SGE_BIN/qconf" "$@"; }
# qconf_set ARGS...: a qconf call that changes the configuration, logged as such.
qconf_set() {
  log "qconf $*"
  mark_changed
  qconf "$@" | sed 's/^/    /'
}
qmaster_pid() { pid_of sge_qmaster "$QMASTER_PIDFILE"; }
execd_pid() {
  local f
  for f in /var/spool/gridengine/execd/*/execd.pid; do
    pid_of sge_execd "$f" && return 0
  done
  pid_of sge_execd /nonexistent
}
# Load of this host as qhost reports it ("-" until execd has reported).
sge_host_load() { sge_env "$SGE_BIN/qhost" -h "$HOST" 2>/dev/null | awk -v h="$HOST" '$1 == h { print $7 }'; }
sge_execd_reports() { local l; l=$(sge_host_load) && [ -n "$l" ] && [ "$l" != - ]; }

start_qmaster() {
  log "starting sge_qmaster"
  mark_changed
  sge_env /usr/sbin/sge_qmaster </dev/null >>"$STATE/sge_qmaster.out" 2>&1 9>&- || die_logs "sge_qmaster did not start" "$QMASTER_LOG"
  wait_for 30 "qmaster to answer qconf -sh" qconf -sh || die_logs "sge_qmaster does not answer" "$QMASTER_LOG" "$STATE/sge_qmaster.out"
  log "sge_qmaster is up (pid $(qmaster_pid || echo '?'))"
}
start_execd() {
  log "starting sge_execd"
  mark_changed
  sge_env /usr/sbin/sge_execd </dev/null >>"$STATE/sge_execd.out" 2>&1 9>&- || die_logs "sge_execd did not start" /var/spool/gridengine/execd/*/messages
  wait_for 40 "sge_execd to report a load to qhost" sge_execd_reports ||
    die_logs "sge_execd does not report to qmaster" /var/spool/gridengine/execd/*/messages "$QMASTER_LOG" "$STATE/sge_execd.out"
  log "sge_execd is up (pid $(execd_pid || echo '?')), load $(sge_host_load)"
}

sge_configure_files() {
  # Returns (via RESTART_QMASTER/RESTART_EXECD) which daemons must be restarted.
  local bootstrap=$SGE_COMMON/bootstrap
  [ -f "$bootstrap" ] || die "$bootstrap is missing: the gridengine postinst did not configure the cell (see $STATE/apt-install.log)"
  # §1.5.1: binary_path /usr/sbin makes execd start every task through Debian's sh wrapper,
  # which runs cpp twice per task. The real binaries are under $SGE_ROOT/bin/<arch>.
  if grep -q '^binary_path[[:space:]]\+/usr/sbin' "$bootstrap"; then
    [ -x "$SGE_ROOT/bin/lx-amd64/sge_shepherd" ] || die "$SGE_ROOT/bin/lx-amd64/sge_shepherd missing: cannot apply the binary_path fix"
    sed -i "s#^binary_path[[:space:]].*#binary_path             $SGE_ROOT/bin#" "$bootstrap"
    log "bootstrap: binary_path $SGE_ROOT/bin"
    RESTART_QMASTER=1 RESTART_EXECD=1
  fi
  # §1.2: when this host's name resolves to 127.x and 127.0.0.1 resolves back to another
  # name, qmaster refuses every client ("client IP resolved to host name localhost").
  local addr back aliases=$SGE_COMMON/host_aliases
  addr=$(getent ahostsv4 "$HOST" | awk 'NR == 1 { print $1 }')
  back=$(getent hosts "$addr" | awk 'NR == 1 { print $2 }')
  if [[ $addr == 127.* ]] && [ -n "$back" ] && [ "$back" != "$HOST" ]; then
    put_file "$aliases" 644 sgeadmin:sgeadmin <<<"$HOST $back" && RESTART_QMASTER=1 || true
  fi
}

sge_configure_cluster() {
  local tmp
  tmp=$(mktemp -d)
  # Admin and submit host (qmaster adds its own host as admin host anyway).
  qconf -sh 2>/dev/null | grep -qxF "$HOST" || qconf_set -ah "$HOST"
  qconf -ss 2>/dev/null | grep -qxF "$HOST" || qconf_set -as "$HOST"
  if ! qconf -sel 2>/dev/null | grep -qxF "$HOST"; then
    cat >"$tmp/exechost" <<EOF
hostname $HOST
load_scaling NONE
complex_values NONE
user_lists NONE
xuser_lists NONE
projects NONE
xprojects NONE
usage_scaling NONE
report_variables NONE
EOF
    qconf_set -Ae "$tmp/exechost"
  fi
  if ! qconf -shgrpl 2>/dev/null | grep -qxF @allhosts; then
    printf 'group_name @allhosts\nhostlist %s\n' "$HOST" >"$tmp/allhosts"
    qconf_set -Ahgrp "$tmp/allhosts"
  elif ! qconf -shgrp @allhosts | grep -q "[[:space:]]$HOST\b"; then
    qconf_set -aattr hostgroup hostlist "$HOST" @allhosts
  fi
  # The queue template's pe_list names make, smp and mpi: they must exist before qconf -Aq.
  local pe
  for pe in make mpi smp; do
    qconf -spl 2>/dev/null | grep -qxF "$pe" || qconf_set -Ap "/usr/share/gridengine/util/resources/pe/$pe"
  done
  # all.q: 50 slots, no load threshold (50 node tasks would put 2 cores in alarm), bash (§1.4).
  local want_q='s/^qname .*/qname all.q/; s/^hostlist .*/hostlist @allhosts/; s/^load_thresholds .*/load_thresholds NONE/; s/^slots .*/slots 50/; s#^shell .*#shell /bin/bash#'
  if ! qconf -sql 2>/dev/null | grep -qxF all.q; then
    qconf -sq | sed "$want_q" >"$tmp/q"
    qconf_set -Aq "$tmp/q"
  else
    qconf -sq all.q >"$tmp/q.old"
    sed "$want_q" "$tmp/q.old" >"$tmp/q"
    # qconf aligns the columns: compare with runs of blanks squeezed.
    [ "$(tr -s ' \t' ' ' <"$tmp/q.old")" = "$(tr -s ' \t' ' ' <"$tmp/q")" ] || qconf_set -Mq "$tmp/q"
  fi
  # Scheduler: 1 s interval and flushes; 15 s default makes every test wait (§1.5.2).
  qconf -ssconf >"$tmp/s.old"
  sed 's/^schedule_interval .*/schedule_interval                 0:0:1/; s/^flush_submit_sec .*/flush_submit_sec                  1/; s/^flush_finish_sec .*/flush_finish_sec                  1/' "$tmp/s.old" >"$tmp/s"
  if [ "$(awk '/^(schedule_interval|flush_submit_sec|flush_finish_sec) /{print $1, $2}' "$tmp/s.old")" != \
    "$(awk '/^(schedule_interval|flush_submit_sec|flush_finish_sec) /{print $1, $2}' "$tmp/s")" ]; then
    qconf_set -Msconf "$tmp/s"
  fi
  # Accounting flushed every second (default 15 s), so qacct sees a job right after it ends.
  # qconf -Mconf takes a file NAMED AFTER the configuration, here "global" (§1.4).
  qconf -sconf global | sed '/^#/d' | sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' >"$tmp/global.old"
  mkdir "$tmp/conf"
  sed 's/flush_time=[0-9:]*/flush_time=00:00:01/' "$tmp/global.old" >"$tmp/conf/global"
  cmp -s "$tmp/global.old" "$tmp/conf/global" || qconf_set -Mconf "$tmp/conf/global"
  rm -rf "$tmp"
}

sge_up() {
  log "== Grid Engine"
  # Preseeded so that the postinst configures the cell non-interactively (§1.1).
  pkg_installed gridengine-master || debconf-set-selections <<EOF
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string $SGE_CELL
gridengine-common shared/gridenginemaster string $HOST
EOF
  ensure_packages gridengine-master gridengine-exec gridengine-client

  RESTART_QMASTER=0 RESTART_EXECD=0
  sge_configure_files
  local pid
  if pid=$(execd_pid) && [ "$RESTART_EXECD" = 1 ]; then stop_pid "$pid" sge_execd 20; fi
  if pid=$(qmaster_pid) && [ "$RESTART_QMASTER" = 1 ]; then stop_pid "$pid" sge_qmaster 30; fi
  if pid=$(qmaster_pid); then
    wait_for 30 "qmaster to answer qconf -sh" qconf -sh || die_logs "sge_qmaster (pid $pid) does not answer" "$QMASTER_LOG"
  else
    start_qmaster
  fi
  sge_configure_cluster
  if execd_pid >/dev/null; then
    wait_for 40 "sge_execd to report a load to qhost" sge_execd_reports || die_logs "sge_execd runs but does not report to qmaster" /var/spool/gridengine/execd/*/messages "$QMASTER_LOG"
  else
    start_execd
  fi
  # A queue left disabled (d) or in error (E) by an earlier run or test would never start the
  # check job: the test cluster is put back into its known state.
  local qstate
  qstate=$(sge_env "$SGE_BIN/qstat" -f -q "all.q@$HOST" 2>/dev/null | awk -v q="all.q@$HOST" '$1 == q { print $6 }')
  if [[ $qstate == *[dE]* ]]; then
    log "queue all.q@$HOST is in state '$qstate': clearing and enabling it"
    sge_env "$SGE_BIN/qmod" -c "all.q@$HOST" >/dev/null || true
    sge_env "$SGE_BIN/qmod" -e "all.q@$HOST" >/dev/null || true
    mark_changed
  fi
  log "Grid Engine is up: qmaster pid $(qmaster_pid), execd pid $(execd_pid), host $HOST, all.q 50 slots"
}

sge_verify() {
  [ -n "$NODE_BIN" ] || die "no node in PATH: the check job (and Sheepdog's workers) need Node on the nodes"
  log "Grid Engine check: a 2-task Node array job submitted by $SSH_USER over ssh (qsub -sync y)"
  local out rc=0
  out=$(ssh_cmd "bash -s -- sge '$NODE_BIN'" <"$HELPERS/check-job.sh" 2>&1) || rc=$?
  if [ "$rc" != 0 ]; then
    printf '%s\n' "$out" >&2
    die_logs "the Grid Engine check job did not run (exit $rc)" "$QMASTER_LOG" /var/spool/gridengine/execd/*/messages
  fi
  log "Grid Engine ran a job: $(printf '%s' "$out" | tail -n 1)"
}

sge_down() {
  local pid
  if pid=$(execd_pid); then stop_pid "$pid" sge_execd 20; else log "sge_execd is not running"; fi
  if pid=$(qmaster_pid); then stop_pid "$pid" sge_qmaster 30; else log "sge_qmaster is not running"; fi
}

# ---------------------------------------------------------------- SLURM (§2)

readonly MUNGED_PIDFILE=/run/munge/munged.pid
readonly MYSQL_PIDFILE=/run/mysqld/mysqld.pid
readonly SLURMDBD_PIDFILE=/run/slurm/slurmdbd.pid
readonly SLURMCTLD_PIDFILE=/run/slurm/slurmctld.pid
readonly SLURMD_PIDFILE=/run/slurm/slurmd.pid
readonly SLURM_LOGS=/var/log/slurm

munged_pid() { pid_of munged "$MUNGED_PIDFILE"; }
mariadbd_pid() { pid_of mariadbd "$MYSQL_PIDFILE"; }
slurmdbd_pid() { pid_of slurmdbd "$SLURMDBD_PIDFILE"; }
slurmctld_pid() { pid_of slurmctld "$SLURMCTLD_PIDFILE"; }
slurmd_pid() { pid_of slurmd "$SLURMD_PIDFILE"; }
slurm_running() { munged_pid && mariadbd_pid && slurmdbd_pid && slurmctld_pid && slurmd_pid; } >/dev/null

# SLURM clients must never run before slurm.conf exists: they would fall back to
# "configless" mode and send a DNS SRV query to the system resolver (§2.3).
slurm_client() {
  [ -f "$SLURM_CONF" ] || die "internal error: SLURM client '$1' called before $SLURM_CONF exists"
  timeout 20 "$@"
}
slurm_node_state() { slurm_client sinfo -h -n "$HOST_S" -o %T 2>/dev/null | head -n 1; }
# Ready = idle, or busy with other engineers' jobs; not down, drained or not responding.
slurm_node_ready() { [[ $(slurm_node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }

# CPUs=50 on a 2-core machine needs config_overrides; no cgroups without systemd, hence
# proctrack/linuxproc and task/none; memory limits are only enforced with CR_CPU_Memory,
# OverMemoryKill and a 1 s sampling (§2.3, §2.6); batch_sched_delay=0 starts arrays at once.
slurm_conf() {
  cat <<EOF
# Written by scripts/test-cluster.sh: single-node SLURM for the Sheepdog tests.
ClusterName=sheepdog
SlurmctldHost=$HOST_S(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$SLURMCTLD_PIDFILE
SlurmdPidFile=$SLURMD_PIDFILE
SlurmctldLogFile=$SLURM_LOGS/slurmctld.log
SlurmdLogFile=$SLURM_LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=2048
MaxArraySize=10001
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
NodeName=$HOST_S NodeAddr=127.0.0.1 CPUs=50 RealMemory=102400 State=UNKNOWN
PartitionName=debug Nodes=$HOST_S Default=YES MaxTime=INFINITE State=UP
EOF
}
slurmdbd_conf() {
  cat <<EOF
# Written by scripts/test-cluster.sh. slurmdbd refuses to start unless this file is
# owned by SlurmUser and mode 0600 (it holds the database password).
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
LogFile=$SLURM_LOGS/slurmdbd.log
PidFile=$SLURMDBD_PIDFILE
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$SLURMDBD_PASS
EOF
}

start_munged() {
  install -d -o munge -g munge -m 755 /run/munge
  log "starting munged"
  mark_changed
  "${CLEAN_ENV[@]}" runuser -u munge -- /usr/sbin/munged </dev/null >>"$STATE/munged.out" 2>&1 9>&- ||
    die_logs "munged did not start" "$STATE/munged.out" /var/log/munge/munged.log
}
munge_works() { munge -n </dev/null | unmunge >/dev/null; }

start_mariadb() {
  install -d -o mysql -g mysql -m 755 /run/mysqld
  log "starting mariadbd (socket $MYSQL_SOCKET only, --skip-networking)"
  mark_changed
  # mariadbd does not daemonize: detach it from this script (setsid, no inherited fds).
  setsid "${CLEAN_ENV[@]}" /usr/sbin/mariadbd --user=mysql --skip-networking \
    --socket="$MYSQL_SOCKET" --pid-file="$MYSQL_PIDFILE" </dev/null >>"$MYSQL_LOG" 2>&1 9>&- &
}
mariadb_answers() { mysqladmin --socket="$MYSQL_SOCKET" ping; }

start_slurm_daemon() { # NAME PIDFUNC LOGFILE
  log "starting $1"
  mark_changed
  "${CLEAN_ENV[@]}" "/usr/sbin/$1" </dev/null >>"$STATE/$1.out" 2>&1 9>&- || die_logs "$1 did not start" "$3" "$STATE/$1.out"
  wait_for 15 "$1 to keep running" "$2" || die_logs "$1 exited right after starting" "$3" "$STATE/$1.out"
}

slurm_up() {
  log "== SLURM"
  local conf_changed=0 dbd_conf_changed=0 pid
  install -d -m 755 /etc/slurm
  # Before the packages: their postinsts and every later command find the file.
  put_file "$SLURM_CONF" 644 root:root < <(slurm_conf) && conf_changed=1 || true
  ensure_packages munge slurm-wlm slurm-client slurmdbd mariadb-server
  put_file "$SLURMDBD_CONF" 600 slurm:slurm < <(slurmdbd_conf) && dbd_conf_changed=1 || true
  install -d -o slurm -g slurm -m 755 /run/slurm "$SLURM_LOGS" /var/spool/slurmctld
  install -d -m 755 /var/spool/slurmd

  munged_pid >/dev/null || start_munged
  wait_for 10 "munge to encode and decode a credential" munge_works ||
    die_logs "munge does not work" /var/log/munge/munged.log "$STATE/munged.out"

  mariadbd_pid >/dev/null || start_mariadb
  wait_for 60 "MariaDB to answer on $MYSQL_SOCKET" mariadb_answers || die_logs "MariaDB does not answer" "$MYSQL_LOG"
  mysql --socket="$MYSQL_SOCKET" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$SLURMDBD_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" || die_logs "cannot create the slurm database user" "$MYSQL_LOG"

  if pid=$(slurmdbd_pid) && [ "$dbd_conf_changed" = 1 ]; then stop_pid "$pid" slurmdbd 30; fi
  slurmdbd_pid >/dev/null || start_slurm_daemon slurmdbd slurmdbd_pid "$SLURM_LOGS/slurmdbd.log"
  wait_for 30 "slurmdbd to answer sacctmgr" slurm_client sacctmgr -n -P list cluster ||
    die_logs "slurmdbd does not answer" "$SLURM_LOGS/slurmdbd.log" "$MYSQL_LOG"

  # Node CPU/memory changes need a slurmctld restart, not scontrol reconfigure (§2.3).
  if [ "$conf_changed" = 1 ]; then
    if pid=$(slurmd_pid); then stop_pid "$pid" slurmd 30; fi
    if pid=$(slurmctld_pid); then stop_pid "$pid" slurmctld 30; fi
  fi
  slurmctld_pid >/dev/null || start_slurm_daemon slurmctld slurmctld_pid "$SLURM_LOGS/slurmctld.log"
  wait_for 30 "slurmctld to answer scontrol ping" eval 'slurm_client scontrol ping | grep -q UP' ||
    die_logs "slurmctld does not answer" "$SLURM_LOGS/slurmctld.log"
  slurmd_pid >/dev/null || start_slurm_daemon slurmd slurmd_pid "$SLURM_LOGS/slurmd.log"
  if ! wait_for 20 "node $HOST_S to be ready" slurm_node_ready; then
    # A node left down/drained by an earlier run (ReturnToService=2 covers most cases).
    log "node $HOST_S is '$(slurm_node_state)': resuming it"
    slurm_client scontrol update nodename="$HOST_S" state=resume || true
    wait_for 20 "node $HOST_S to be ready" slurm_node_ready ||
      die_logs "node $HOST_S is '$(slurm_node_state)', not ready" "$SLURM_LOGS/slurmd.log" "$SLURM_LOGS/slurmctld.log"
  fi
  log "SLURM is up: munged $(munged_pid), mariadbd $(mariadbd_pid), slurmdbd $(slurmdbd_pid), slurmctld $(slurmctld_pid), slurmd $(slurmd_pid); node $HOST_S $(slurm_node_state), 50 CPUs"
}

slurm_verify() {
  [ -n "$NODE_BIN" ] || die "no node in PATH: the check job (and Sheepdog's workers) need Node on the nodes"
  log "SLURM check: a 2-task Node array job submitted by $SSH_USER over ssh (sbatch, squeue, sacct)"
  local out rc=0
  out=$(ssh_cmd "bash -s -- slurm '$NODE_BIN'" <"$HELPERS/check-job.sh" 2>&1) || rc=$?
  if [ "$rc" != 0 ]; then
    printf '%s\n' "$out" >&2
    die_logs "the SLURM check job did not run (exit $rc)" "$SLURM_LOGS/slurmctld.log" "$SLURM_LOGS/slurmd.log" "$SLURM_LOGS/slurmdbd.log"
  fi
  log "SLURM ran a job: $(printf '%s' "$out" | tail -n 1)"
}

slurm_status() {
  local rc=0 pid d
  for d in munged mariadbd slurmdbd slurmctld slurmd; do
    if pid=$("${d}_pid"); then printf '%-12s running, pid %s\n' "$d" "$pid"; else printf '%-12s NOT running\n' "$d"; rc=1; fi
  done
  if [ "$rc" = 0 ]; then
    printf '%-12s %s\n' "slurm node" "$HOST_S: $(slurm_node_state || true)"
    slurm_node_ready || rc=1
  fi
  return "$rc"
}

slurm_down() {
  local pid
  if pid=$(slurmd_pid); then stop_pid "$pid" slurmd 30; else log "slurmd is not running"; fi
  if pid=$(slurmctld_pid); then stop_pid "$pid" slurmctld 30; else log "slurmctld is not running"; fi
  if pid=$(slurmdbd_pid); then stop_pid "$pid" slurmdbd 30; else log "slurmdbd is not running"; fi
  if pid=$(mariadbd_pid); then stop_pid "$pid" mariadbd 60; else log "mariadbd is not running"; fi
  if pid=$(munged_pid); then stop_pid "$pid" munged 10; else log "munged is not running"; fi
}

# ---------------------------------------------------------------- status, env file

# Components verified earlier and still running keep their flag when another subset is run.
marker() { echo "$STATE/verified.$1"; }

write_env() {
  local sge=0 slurm=0
  [ -f "$(marker sge)" ] && qmaster_pid >/dev/null && execd_pid >/dev/null && sge=1
  [ -f "$(marker slurm)" ] && slurm_running && slurm=1
  put_file "$ENV_FILE" 644 root:root < <(
    echo "SHEEPDOG_TEST_SSH_HOST=127.0.0.1"
    echo "SHEEPDOG_TEST_SSH_PORT=$SSH_PORT"
    echo "SHEEPDOG_TEST_SSH_USER=$SSH_USER"
    echo "SHEEPDOG_TEST_SSH_KEY=$CLIENT_KEY"
    echo "SHEEPDOG_TEST_KNOWN_HOSTS=$KNOWN_HOSTS"
    [ "$sge" = 0 ] || echo "SHEEPDOG_TEST_GRIDENGINE=1"
    [ "$slurm" = 0 ] || echo "SHEEPDOG_TEST_SLURM=1"
    echo "SHEEPDOG_TEST_NODE=$NODE_BIN"
  ) || true
}

status() {
  local rc=0 pid what
  for what in "${COMPONENTS[@]}"; do
    case $what in
      ssh)
        if pid=$(sshd_pid); then echo "sshd         running, pid $pid, 127.0.0.1:$SSH_PORT"; else echo "sshd         NOT running"; rc=3; fi
        ;;
      sge)
        if pid=$(qmaster_pid); then echo "sge_qmaster  running, pid $pid"; else echo "sge_qmaster  NOT running"; rc=3; fi
        if pid=$(execd_pid); then echo "sge_execd    running, pid $pid, load $(sge_host_load || true)"; else echo "sge_execd    NOT running"; rc=3; fi
        ;;
      slurm) slurm_status || rc=3 ;;
    esac
  done
  if [ -f "$ENV_FILE" ]; then echo "env file     $ENV_FILE:"; sed 's/^/               /' "$ENV_FILE"; else echo "env file     $ENV_FILE: none"; fi
  return "$rc"
}


# ---------------------------------------------------------------- main

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

ACTION=up
COMPONENTS=()
while [ $# -gt 0 ]; do
  case $1 in
    --stop) ACTION=stop ;;
    --status) ACTION=status ;;
    --only) [ $# -ge 2 ] || die "--only needs a list (ssh,sge,slurm)"; IFS=', ' read -r -a more <<<"$2"; COMPONENTS+=("${more[@]}"); shift ;;
    --only=*) IFS=', ' read -r -a more <<<"${1#--only=}"; COMPONENTS+=("${more[@]}") ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[ ${#COMPONENTS[@]} -gt 0 ] || COMPONENTS=(ssh sge slurm)
for c in "${COMPONENTS[@]}"; do
  case $c in ssh | sge | slurm) ;; gridengine) ;; *) die "unknown component '$c' (ssh, sge, slurm)" ;; esac
done
COMPONENTS=("${COMPONENTS[@]/gridengine/sge}")
want() { local c; for c in "${COMPONENTS[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }

[ "$(id -u)" = 0 ] || die "run as root"
install -d -m 755 "$STATE"

if [ "$ACTION" = status ]; then
  status
  exit $?
fi

# One run at a time (CI and a developer may start it together). Every daemon is started
# with fd 9 closed (9>&-): one that inherited it would hold this lock for its lifetime.
readonly LOCK=$STATE/run.lock
exec 9>"$LOCK"
if ! flock -n 9; then
  log "waiting for another test-cluster.sh run to finish (lock $LOCK)"
  flock -w 900 9 || die "$LOCK still held after 900 s (by: $(lslocks -n -o PID,COMMAND,PATH 2>/dev/null | grep -F "$LOCK" | tr -s ' ' | tr '\n' ';'))"
fi

if [ "$ACTION" = stop ]; then
  if want slurm; then slurm_down; rm -f "$(marker slurm)"; fi
  if want sge; then sge_down; rm -f "$(marker sge)"; fi
  if want ssh; then ssh_down; rm -f "$ENV_FILE"; log "removed $ENV_FILE"; else [ ! -f "$ENV_FILE" ] || write_env; fi
  log "stopped: ${COMPONENTS[*]}"
  exit 0
fi

CHANGED_FLAG=$STATE/.changed.$$
rm -f "$CHANGED_FLAG"
trap 'rm -f "$CHANGED_FLAG"' EXIT
log "test cluster on $HOST: ${COMPONENTS[*]}"
# sge and slurm are checked over ssh: ssh always comes first.
ssh_up

# Each scheduler is brought up in its own subshell, so that one failing still lets the other
# come up (and be listed in cluster.env); the script exits non-zero if any failed. A
# subshell started with & keeps set -e, one on the left of || would not.
FAILED=()
UP=()
for c in sge slurm; do
  want "$c" || continue
  rm -f "$(marker "$c")"
  ("${c}_up") &
  if wait $!; then UP+=("$c"); else FAILED+=("$c"); fi
done
# The check jobs run in parallel (each ~2-5 s); their logs are shown one after the other.
declare -A CHECK_PID=()
for c in "${UP[@]}"; do
  ("${c}_verify") >"$STATE/check-$c.log" 2>&1 &
  CHECK_PID[$c]=$!
done
for c in "${UP[@]}"; do
  if wait "${CHECK_PID[$c]}"; then touch "$(marker "$c")"; else FAILED+=("$c"); fi
  cat "$STATE/check-$c.log"
done

write_env
if [ ${#FAILED[@]} -gt 0 ]; then
  die "not up: ${FAILED[*]} (see the messages above); $ENV_FILE lists only what works"
fi
log "cluster ready ($([ -f "$CHANGED_FLAG" ] && echo 'files written or daemons started' || echo 'nothing changed, all was up'))"
cat <<EOF

Reach the cluster:
  ssh -i $CLIENT_KEY -o UserKnownHostsFile=$KNOWN_HOSTS -p $SSH_PORT $SSH_USER@127.0.0.1
Test settings: $ENV_FILE   (set -a; . $ENV_FILE; set +a)
Stop: $0 --stop      Status: $0 --status
EOF
