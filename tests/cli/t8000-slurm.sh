#!/usr/bin/env bash
# t8000: `ledger submit --slurm` on a real single-node Slurm started here
# (Debian's slurm-wlm and munge, see tests/install-deps.sh). A munge key in a
# temp dir, munged with its own socket, a minimal slurm.conf (localhost only,
# 127.0.0.1, ports picked free), slurmctld and slurmd; a study is submitted
# as a job array of 4 shards plus a gather job that depends on it
# (afterok), and the recorded run's artifact digests must equal a one-process
# `ledger run` of the same study in another repository. A submission whose
# shards fail gets its gather job cancelled (kill-on-invalid-dep) and records
# nothing. The daemons are stopped by pid on exit. Exits 77 (skipped) with
# the reason and the daemons' log tails when Slurm cannot start here.
. "$(dirname "$0")/lib-cli.sh"

D=$TMP/slurm
PIDS=""
stop_daemons() {
    local f p i
    for f in "$D/slurmd.pid" "$D/slurmctld.pid" "$D/munged.pid"; do
        [ -s "$f" ] || continue
        p=$(cat "$f"); kill "$p" 2>/dev/null
        for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
}
trap 'stop_daemons; rm -rf "$TMP"' EXIT
skip() {
    echo "skipped: $*"
    for f in "$D"/munged.log "$D"/slurmctld.log "$D"/slurmd.log; do
        [ -f "$f" ] && { echo "--- tail of $f"; tail -n 15 "$f"; }
    done
    exit 77
}

for b in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
        skip "$b not found (install slurm-wlm and munge: tests/install-deps.sh)"
done
PATH=$PATH:/usr/sbin
mkdir -p "$D/state" "$D/spool" || exit 3
user=$(id -un)

# munge: its own key, socket, pid, log and seed files
dd if=/dev/urandom of="$D/munge.key" bs=1024 count=1 2>/dev/null && chmod 400 "$D/munge.key"
munged --force --socket="$D/munge.sock" --key-file="$D/munge.key" --pid-file="$D/munged.pid" \
    --log-file="$D/munged.log" --seed-file="$D/munge.seed" >/dev/null 2>&1 || skip "munged did not start"
for i in $(seq 1 50); do [ -S "$D/munge.sock" ] && break; sleep 0.1; done
[ -S "$D/munge.sock" ] || skip "munged made no socket"

# two free TCP ports on 127.0.0.1
read -r P1 P2 < <("$PYTHON3" -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
cat > "$D/slurm.conf" <<CONF
ClusterName=ledgertest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$P1
SlurmdPort=$P2
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge.sock
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
SlurmUser=$user
SlurmdUser=$user
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$D/slurm.conf
slurmctld -f "$D/slurm.conf" >/dev/null 2>&1 || skip "slurmctld did not start"
slurmd -f "$D/slurm.conf" -N localhost >/dev/null 2>&1 || skip "slurmd did not start"
for i in $(seq 1 300); do
    [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && break
    sleep 0.1
done
[ "$(sinfo -h -o %t 2>/dev/null)" = idle ] || skip "the Slurm node did not become idle in 30 s ($(sinfo -h -o %t 2>&1))"
ok "single-node Slurm up (slurmctld :$P1, slurmd :$P2 on 127.0.0.1)"
job_state() { scontrol show job "$1" 2>/dev/null | grep -oE 'JobState=[A-Z_]+' | head -1 | cut -d= -f2; }
# wait_state JOB STATE SECONDS
wait_state() { local i; for i in $(seq 1 $(($3 * 5))); do [ "$(job_state "$1")" = "$2" ] && return 0; sleep 0.2; done; return 1; }
# can this Slurm run a job at all? (slurmd may lack the rights to start one here)
pre=$(sbatch --parsable -o /dev/null --wrap true 2>&1) || skip "sbatch failed: $pre"
wait_state "${pre%%;*}" COMPLETED 30 || skip "a trivial job did not complete in 30 s ($(job_state "${pre%%;*}"))"
ok "a trivial job ran"

cat > "$TMP/s.json" <<'JSON'
{"format": 1, "name": "on-slurm",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 48, "n_samples": 3000, "active_mean": 3, "seed": 9}},
 "sae": {"arch": "topk", "d_sae": 48},
 "train": {"steps": 600, "batch": 64, "lr": 0.004},
 "grid": {"k": [2, 3, 4, 5, 6, 8, 12, 16]}, "seeds": [1, 2],
 "controls": {"random_init": true}}
JSON
outputs() { "$LEDGER" show --json "$1" | "$PYTHON3" -c '
import json, sys
for o in json.load(sys.stdin)["outputs"]: print(o["name"], o["sha256"])'; }

mkdir ref && cd ref && git init -q . && "$LEDGER" init >/dev/null && mkdir studies && cp "$TMP/s.json" studies/ ||
    { bad "init ref"; finish; }
expect_ok "one-process run" "$LEDGER" run -q --backend cpu studies/s.json
outputs @1 > "$TMP/ref.txt"
cd "$TMP"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null && mkdir studies && cp "$TMP/s.json" studies/ ||
    { bad "init repo"; finish; }

# shards that fail: their gather job is cancelled, nothing is recorded
expect_ok "submit with a failing ledger binary" "$LEDGER" submit --slurm --shards 2 --backend cpu --ledger /bin/false \
    --json studies/s.json
bad_gather=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["gather_job_id"])' "$TMP/.out")
if wait_state "$bad_gather" CANCELLED 60; then ok "failed shards: gather job $bad_gather cancelled (kill-on-invalid-dep)"
else bad "gather job $bad_gather is $(job_state "$bad_gather")"; fi
[ -z "$("$LEDGER" log)" ] && ok "nothing recorded" || bad "a run was recorded"

expect_ok "ledger submit --slurm --shards 4" "$LEDGER" submit --slurm --shards 4 --backend cpu --time 00:10:00 \
    --cpus-per-task 1 --sbatch=--comment=ledger-t8000 --json studies/s.json
read -r array gather < <("$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["array_job_id"], d["gather_job_id"])' "$TMP/.out")
[ -n "$array" ] && [ -n "$gather" ] && [ "$array" != "$gather" ] && ok "job ids: array $array, gather $gather" ||
    { bad "no job ids"; cat "$TMP/.out"; finish; }
scontrol show job "$gather" | grep -qE "Dependency=afterok:${array}(_\*)?" && ok "gather depends on the array (afterok)" ||
    { bad "gather has no afterok dependency"; scontrol show job "$gather"; }
[ "$(scontrol show job "$array" 2>/dev/null | grep -c 'ArrayTaskId=')" -ge 1 ] && ok "array job known to slurmctld" ||
    bad "array job unknown"
# preemption: task 0 (shard 1/4) is requeued while it trains; it starts again
# as the same job, takes its running marker over and retrains what was lost
for i in $(seq 1 600); do ls .ledger/shards/*/running/shard-1-of-4.json >/dev/null 2>&1 && break; sleep 0.05; done
if scontrol requeue "${array}_0" 2>"$TMP/.rq"; then ok "requeued array task ${array}_0 while it trained"
else bad "requeue: $(cat "$TMP/.rq")"; fi
# slurmctld holds a requeued job back (BeginTime about two minutes on): let it start now
wait_state "${array}_0" PENDING 30 && scontrol update JobId="${array}_0" StartTime=now 2>/dev/null
echo "# $(scontrol show job "${array}_0" | grep -oE '(JobState|Reason|BeginTime)=[^ ]+' | tr '\n' ' ')"

for i in $(seq 1 900); do [ -n "$("$LEDGER" log 2>/dev/null)" ] && break; sleep 0.2; done
if [ -z "$("$LEDGER" log)" ]; then
    bad "no run recorded within 180 s (gather: $(job_state "$gather"))"
    squeue; cat .ledger/slurm/*/*.log 2>/dev/null | tail -30
    finish
fi
ok "the gather job recorded a run"
wait_state "$gather" COMPLETED 30 && ok "gather job $gather COMPLETED" || bad "gather job: $(job_state "$gather")"
n=$(scontrol show job "$array" | grep -c 'JobState=COMPLETED')
[ "$n" -eq 4 ] && ok "all 4 array tasks COMPLETED" || { bad "$n array tasks COMPLETED"; scontrol show job "$array" | grep JobState; }
scontrol show job "${array}_0" | grep -qE "Restarts=[1-9]" && ok "task ${array}_0 ran again after the requeue" ||
    bad "task 0 was not restarted: $(scontrol show job "${array}_0" | grep -oE 'Restarts=[0-9]+')"
ls .ledger/slurm/*/shard-3.log >/dev/null 2>&1 && ok "task logs kept beside the scripts" || bad "no task logs"
outputs @1 > "$TMP/slurm.txt"
if diff "$TMP/ref.txt" "$TMP/slurm.txt" >/dev/null; then
    ok "all $(wc -l < "$TMP/ref.txt") artifact digests equal the one-process run's"
else bad "digests differ"; diff "$TMP/ref.txt" "$TMP/slurm.txt" | head; fi
[ "$("$LEDGER" log | wc -l)" -eq 1 ] && ok "one run" || bad "runs: $("$LEDGER" log | wc -l)"
expect_ok "verify" "$LEDGER" verify --no-claims
finish
