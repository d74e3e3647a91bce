#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests and demos.
#
#   scripts/slurm-local.sh install   install munge and Slurm (Debian packages) if missing
#   scripts/slurm-local.sh start     start munged, slurmctld and slurmd; prints SLURM_CONF=...
#   scripts/slurm-local.sh stop      stop what start started, by pid file
#   scripts/slurm-local.sh env       print SLURM_CONF=... of a running cluster
#
# Everything (config, state, logs, pid files) lives in $SLURM_LOCAL_DIR
# (default /tmp/diffroute-slurm). No systemd is needed. Daemons are stopped by
# their pid files only, never by name.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/diffroute-slurm}
PKGS="slurmctld slurmd slurm-client munge"

die() { echo "slurm-local: $*" >&2; exit 1; }

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install() {
  local missing=""
  for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  command -v apt-get >/dev/null || die "cannot install$missing: no apt-get here"
  echo "slurm-local: installing$missing" >&2
  sudo_ apt-get update -qq >&2 && sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2 \
    || die "apt-get install$missing failed"
}

# free_port [EXCEPT]: a TCP port nothing listens on, from 20000-39999.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    [ "$p" = "${1:-}" ] && continue
    ss -Htln "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
  die "no free port found"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_for CMD... : retry for up to 20 s.
wait_for() {
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

start() {
  [ "$(id -u)" = 0 ] || die "start needs root (slurmd runs jobs as their users)"
  for b in munged slurmctld slurmd sbatch; do command -v $b >/dev/null || [ -x /usr/sbin/$b ] || die "$b not installed: run '$0 install'"; done
  mkdir -p "$DIR"/{state,spool,log}
  if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
    echo "SLURM_CONF=$DIR/slurm.conf"; return 0
  fi
  # A munged of its own (socket, pid, log and seed under $DIR/munge), so that
  # clusters started side by side (parallel test runs) never share or stop
  # each other's daemons.
  mkdir -p "$DIR/munge"
  chmod 755 "$DIR"
  chown munge:munge "$DIR/munge" && chmod 700 "$DIR/munge"
  [ -f /etc/munge/munge.key ] || { /usr/sbin/mungekey --create >/dev/null 2>&1 || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }; }
  local sock="$DIR/munge/munge.socket"
  runuser -u munge -- /usr/sbin/munged --force --socket="$sock" --pid-file="$DIR/munge/munged.pid" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" 2>"$DIR/log/munged.err" \
    || die "munged failed: $(cat "$DIR/log/munged.err")"
  wait_for test -s "$DIR/munge/munged.pid" || die "munged wrote no pid file"
  cp "$DIR/munge/munged.pid" "$DIR/munged.pid"
  wait_for sh -c "munge -S '$sock' -n | unmunge -S '$sock'" || die "munge does not answer on $sock"
  # Free ports for slurmctld and slurmd (unless given).
  local ctld=${SLURM_LOCAL_CTLD_PORT:-} slurmd_port=${SLURM_LOCAL_SLURMD_PORT:-}
  [ -n "$ctld" ] || ctld=$(free_port)
  [ -n "$slurmd_port" ] || slurmd_port=$(free_port "$ctld")
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2/1024*0.8}' /proc/meminfo)
  # The node's topology as slurmd sees it, with 8 CPUs advertised (config_overrides)
  # so that more small tasks than cores run at once.
  cat > "$DIR/slurm.conf" <<CONF
ClusterName=diffroute
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$ctld
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
DependencyParameters=kill_invalid_depend
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
MinJobAge=3600
NodeName=$host NodeAddr=127.0.0.1 CPUs=8 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  /usr/sbin/slurmctld -f "$DIR/slurm.conf" -i 2>"$DIR/log/slurmctld.err" || die "slurmctld failed: $(tail -3 "$DIR/log/slurmctld.log" 2>/dev/null)"
  wait_for test -s "$DIR/slurmctld.pid" || die "slurmctld wrote no pid file"
  /usr/sbin/slurmd -f "$DIR/slurm.conf" 2>"$DIR/log/slurmd.err" || die "slurmd failed: $(tail -3 "$DIR/log/slurmd.log" 2>/dev/null)"
  wait_for test -s "$DIR/slurmd.pid" || die "slurmd wrote no pid file"
  # Ready when the node takes jobs.
  wait_for sh -c "SLURM_CONF=$DIR/slurm.conf sinfo -h -o %t | grep -Eq '^(idle|mix|alloc)'" \
    || die "the node did not become idle: $(SLURM_CONF=$DIR/slurm.conf sinfo -h 2>&1 | head -2)"
  echo "SLURM_CONF=$DIR/slurm.conf"
}

stop() {
  local f pid
  for f in slurmd slurmctld munged; do
    [ -f "$DIR/$f.pid" ] || continue
    pid=$(cat "$DIR/$f.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/$f.pid"
  done
}

case "${1:-}" in
  install) install ;;
  start) install; start ;;
  stop) stop ;;
  env) alive "$DIR/slurmctld.pid" && echo "SLURM_CONF=$DIR/slurm.conf" || die "not running in $DIR" ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
