#!/usr/bin/env bash
# bench/overlay.sh: container-to-container overlay benchmark, side by side in one run.
#
# Brings up a 2-host Weft lab (`weft lab up`, hosts at 198.18.0.1 and 198.18.0.2), gives each host
# a "container" (a network namespace behind a bridge, subnet 100.96.K.0/24, container at
# 100.96.K.2, gateway 100.96.K.1) and measures container1 -> container2 over, in turn:
#
#   routed  routing without encapsulation: each host routes the other's container subnet via the
#           other's underlay address (the baseline).
#   vxlan   hand-configured kernel VXLAN in the flannel L3 style: VNI 1, UDP 4789, no learning,
#           100.96.K.0/32 on the VXLAN device, per remote host one onlink route, one permanent
#           neighbour entry and one FDB entry.
#   weft    Weft's own kernel datapath, set up by Weft's control plane (hook `weft_datapath`): the
#           lab is re-created with its controller and one agent per host, network `blue`
#           (100.96.0.0/16, VNI 1, MTU 1450) is applied, and the containers are Weft workloads
#           (`weft lab workload add`, namespaces weft-<lab>-wl.c1/.c2) on the agents' bridge wbr1
#           and VXLAN device wvx1. Measured by default; WEFT_BENCH_SKIP_WEFT=1 skips it.
#   weft-us Weft's userspace datapath (`weft lab up --datapath userspace`): the same control plane
#           and workloads, the VTEP in the agents (TUN wtun1 with TSO/USO, UDP GSO/GRO) instead of
#           a kernel VXLAN device. Skipped with weft.
#   nebula  Debian's Nebula (a userspace overlay with encryption, the userspace reference): one
#           nebula process per host in the lab without control plane, static host map, the other
#           container subnet as an unsafe route via the peer's Nebula address; its tunnel MTU is
#           1440 (Nebula's header and AEAD tag take 60 bytes of the underlay's 1500), so its
#           bridge and containers get 1440 too. Skipped when nebula is not installed.
#
# routed and vxlan run in the lab brought up with --no-control-plane, so no agent and no Weft
# nftables table (`inet weft`, which drops forwarding between different networks' devices) are in
# their way; the weft variant then runs in the same lab name, same 2-host topology, re-created
# with the control plane, so its agents' isolation rules are part of what it measures.
# Every variant uses the same overlay MTU (1450, i.e. underlay 1500 - 50) on the bridge, the
# container veths and the VXLAN device.
# Per variant: a full-size DF ping (the MTU), iperf3 TCP throughput (1 stream and 4 streams,
# DURATION s each, container1 -> container2) with a check that the payload left host 1 on eth0
# (and, for vxlan/weft, through the VXLAN device vx/wvx1), TCP round-trip latency (sockperf
# ping-pong when installed or installable from the Debian archive, otherwise
# `ping -c 200 -i 0.01` percentiles, and the table says which), and CPU seconds per GiB moved.
# The three variants are measured in turn, ROUNDS times (-r, default 3; the lab is re-created for
# each round), so that slow drift of this shared machine hits all of them alike; the table gives
# each variant's median over the rounds, and a second table each round's throughput.
# CPU s/GiB counts the iperf3 processes, the ksoftirqd threads and, for the userspace datapaths,
# the process doing the encapsulation (the agents for weft-us, nebula for nebula).
# Prints the tables with ratios (vxlan/routed, weft/vxlan, weft-us/vxlan, weft-us/nebula) and appends a dated section to
# bench/RESULTS.md.
#
# Safety: only namespaces this run creates (lab `wbench-<pid>`, so `weft-wbench-<pid>-*` including
# the workloads `weft-wbench-<pid>-wl.*`, and containers `wbench-<pid>-c1`/`-c2`) and only the
# processes it starts (iperf3/sockperf servers by pid; the lab's controller and agents through
# `weft lab down`, which stops them by pid; nebula by pid); nothing is changed in the root namespace; all traffic
# stays inside the lab. Everything is removed on exit (trap), and leftovers of earlier runs of
# this script (whose process is gone) are removed on start.
set -Eeuo pipefail

usage() {
  cat <<'EOF'
usage: bench/overlay.sh [-t SECONDS] [-r ROUNDS] [--no-record] [-h]

Container-to-container throughput, latency and CPU cost of routed (no encapsulation), hand-made
kernel VXLAN (flannel L3 style), Nebula, and Weft's kernel and userspace datapaths (controller +
agents, Weft workloads), in one 2-host lab. Needs root. Takes about 1 minute per measured variant and round.

  -t SECONDS    iperf3 duration per test (default 10)
  -r ROUNDS     rounds of all variants in turn; figures are per-variant medians (default 3)
  --no-record   print the table only; do not append to bench/RESULTS.md
  -h, --help    this help

environment:
  WEFT=PATH                weft binary (default .build/release/weft, else .build/debug/weft)
  WEFT_BENCH_SKIP_WEFT=1   skip the weft and weft-us variants
  WEFT_BENCH_VARIANTS="…"  measure only these of: routed vxlan nebula weft weft-us
  WEFT_BENCH_AGENT=0       the same (older spelling; the weft variant is measured by default)
  WEFT_BENCH_LATENCY=ping  force the ping fallback for latency instead of sockperf
EOF
}

DURATION=10
ROUNDS=3
RECORD=1
while [ $# -gt 0 ]; do
  case "$1" in
    -t) DURATION=${2:?-t needs a number of seconds}; shift 2 ;;
    -r) ROUNDS=${2:?-r needs a number of rounds}; shift 2 ;;
    --no-record) RECORD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "overlay.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || { echo "overlay.sh: -t wants a positive integer" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "overlay.sh: -r wants a positive integer" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "overlay.sh: needs root (network namespaces)" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ -z "${WEFT:-}" ]; then
  if [ -x .build/release/weft ]; then WEFT=.build/release/weft; else WEFT=.build/debug/weft; fi
fi
[ -x "$WEFT" ] || { echo "overlay.sh: no weft binary at $WEFT (build it first, or set WEFT=)" >&2; exit 1; }
case "$WEFT" in
  */debug/*) echo "overlay.sh: warning: $WEFT is a debug build; its userspace datapath runs several times slower than a release build's (swift build -c release --product weft)" >&2 ;;
esac
for tool in ip bridge iperf3 jq ping awk; do
  command -v "$tool" >/dev/null || { echo "overlay.sh: needs $tool" >&2; exit 1; }
done

# ---- names (unique per run) -------------------------------------------------------------------
PREFIX=wbench
ID=$$
LAB=$PREFIX-$ID                 # lab namespaces: weft-$LAB-sw, weft-$LAB-host1, weft-$LAB-host2
declare -A HOST=([1]=weft-$LAB-host1 [2]=weft-$LAB-host2)
declare -A CTR=([1]=$PREFIX-$ID-c1 [2]=$PREFIX-$ID-c2)   # the weft variant repoints these to
                                                            # its workloads weft-$LAB-wl.c1/.c2
MTU=1450                        # overlay MTU: underlay 1500 - 50 (VXLAN over IPv4)
VNI=1
VXPORT=4789
SERVER_ADDR=100.96.2.2          # container 2; container 1 (100.96.1.2) is the client
IPERF_PORT=5201
SOCKPERF_PORT=11111
LAT_SECONDS=5
WEFT_NETWORK=blue               # the weft variant's network (VNI 1, 100.96.0.0/16, MTU 1450)
declare -A VXDEV=([vxlan]=vx [weft]=wvx$VNI [weft-us]=wtun$VNI [nebula]=neb1)  # device the payload must pass
ALL_VARIANTS="routed vxlan nebula weft weft-us"
VARIANTS=${WEFT_BENCH_VARIANTS:-$ALL_VARIANTS}
for v in $VARIANTS; do [[ " $ALL_VARIANTS " == *" $v "* ]] || { echo "overlay.sh: unknown variant '$v'" >&2; exit 2; }; done
wanted() { [[ " $VARIANTS " == *" $1 "* ]]; }
declare -A VMTU=([nebula]=1440)  # overlay MTU per variant where it differs from $MTU
NEBULA_MTU=1440
DP_PIDS=""                      # processes doing a userspace datapath's work (their CPU counts)
TMP=$(mktemp -d /tmp/$PREFIX-$ID.XXXXXX)
SERVER_PIDS=()
LAB_UP=0

log() { printf '[overlay] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- cleanup ----------------------------------------------------------------------------------
kill_in_netns() {  # kills the processes left in one of this script's own namespaces, by pid
  local ns=$1 pids
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] && kill $pids 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  local ns
  for ns in "$PREFIX-$ID-c1" "$PREFIX-$ID-c2" "${CTR[1]}" "${CTR[2]}"; do  # + weft's workloads
    if ip netns list | awk '{print $1}' | grep -qxF "$ns"; then
      kill_in_netns "$ns"
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  if [ "$LAB_UP" = 1 ] || [ -d "/run/weft/labs/$LAB" ]; then
    local cpids; cpids=$(control_plane_pids)
    for k in 1 2; do kill_in_netns "${HOST[$k]}"; done   # includes the agents, if any
    "$WEFT" lab down "$LAB" >/dev/null 2>&1 || log "warning: 'weft lab down $LAB' failed"
    for pid in $cpids; do   # the controller, should `weft lab down` not have stopped it
      is_lab_process "$pid" && { kill "$pid" 2>/dev/null || true; }
    done
  fi
  rm -rf "$TMP"
  exit "$rc"
}
# The lab's controller and agents (pids from its state file; none without a control plane).
control_plane_pids() {
  jq -r '.control // empty | .controllerPID, (.agents // {} | .[])' "/run/weft/labs/$LAB/lab.json" 2>/dev/null || true
}
is_lab_process() {  # is_lab_process PID: still a weft process of this run's lab (not a reused pid)
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q "weft.*/run/weft/labs/$LAB/"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of earlier runs: anything named wbench-<pid>-... whose <pid> is no longer a running
# overlay.sh. A run still in progress keeps its namespaces.
stale_id() {
  local id=$1
  [ "$id" = "$ID" ] && return 1
  [ -r "/proc/$id/cmdline" ] && tr '\0' ' ' <"/proc/$id/cmdline" | grep -q 'overlay\.sh' && return 1
  return 0
}
remove_leftovers() {
  local ns id name
  for ns in $(ip netns list | awk '{print $1}'); do
    if [[ "$ns" =~ ^$PREFIX-([0-9]+)-c[0-9]+$ ]]; then
      id=${BASH_REMATCH[1]}
      stale_id "$id" || continue
      log "removing leftover namespace $ns"
      kill_in_netns "$ns"
      ip netns del "$ns" || true
    fi
  done
  {
    ls /run/weft/labs 2>/dev/null || true
    ip netns list | awk '{print $1}' | sed -n "s/^weft-\($PREFIX-[0-9]*\)-\(sw\|host[0-9]*\|wl\..*\)$/\1/p"
  } | sort -u | while read -r name; do
    [[ "$name" =~ ^$PREFIX-([0-9]+)$ ]] || continue
    stale_id "${BASH_REMATCH[1]}" || continue
    log "removing leftover lab $name"
    for ns in $(ip netns list | awk '{print $1}' | grep "^weft-$name-" || true); do kill_in_netns "$ns"; done
    "$WEFT" lab down "$name" >/dev/null || log "warning: could not remove leftover lab $name"
  done
}

# ---- helpers ----------------------------------------------------------------------------------
h() { local k=$1; shift; ip -n "${HOST[$k]}" "$@"; }         # ip in lab host k
c() { local k=$1; shift; ip -n "${CTR[$k]}" "$@"; }          # ip in container k
hx() { local k=$1; shift; ip netns exec "${HOST[$k]}" "$@"; } # run in lab host k
cx() { local k=$1; shift; ip netns exec "${CTR[$k]}" "$@"; }  # run in container k
other() { [ "$1" = 1 ] && echo 2 || echo 1; }

wait_listen() {  # wait_listen K PORT: until something in container K listens on TCP PORT
  local k=$1 port=$2 i
  for i in $(seq 1 50); do
    cx "$k" ss -Hltn "sport = :$port" | grep -q . && return 0
    sleep 0.1
  done
  die "nothing listens on port $port in ${CTR[$k]}"
}

# ---- common topology: containers, bridges -----------------------------------------------------
make_containers() {  # the container namespaces themselves (empty, loopback up)
  for k in 1 2; do
    ip netns add "${CTR[$k]}"
    c "$k" link set lo up
  done
}

plug_containers() {  # per host: bridge br0 with gateway 100.96.K.1/24, container veth, forwarding
  local mtu=${1:-$MTU}
  for k in 1 2; do
    h "$k" link add br0 type bridge
    h "$k" link set br0 mtu "$mtu"
    h "$k" addr add "100.96.$k.1/24" dev br0
    h "$k" link set br0 up
    h "$k" link add veth-c type veth peer name eth0 netns "${CTR[$k]}"
    h "$k" link set veth-c mtu "$mtu" master br0 up
    c "$k" link set eth0 mtu "$mtu" up
    c "$k" addr add "100.96.$k.2/24" dev eth0
    c "$k" route add default via "100.96.$k.1"
    hx "$k" sysctl -qw net.ipv4.ip_forward=1
  done
}

unplug_containers() {  # deleting the host end of the veth removes the container end too
  for k in 1 2; do
    h "$k" link del veth-c 2>/dev/null || true
    h "$k" link del br0 2>/dev/null || true
  done
}

# ---- variant (a): routed, no encapsulation ----------------------------------------------------
routed_up() {
  plug_containers
  for k in 1 2; do
    local r; r=$(other "$k")
    h "$k" route add "100.96.$r.0/24" via "198.18.0.$r" dev eth0
  done
}
routed_down() {
  for k in 1 2; do h "$k" route del "100.96.$(other "$k").0/24" 2>/dev/null || true; done
  unplug_containers
}

# ---- variant (b): hand-configured kernel VXLAN, flannel L3 style ------------------------------
vxlan_up() {
  plug_containers
  declare -A mac
  for k in 1 2; do
    h "$k" link add vx type vxlan id "$VNI" dstport "$VXPORT" nolearning local "198.18.0.$k" dev eth0
    h "$k" link set vx mtu "$MTU"
    h "$k" addr add "100.96.$k.0/32" dev vx
    h "$k" link set vx up
    mac[$k]=$(h "$k" -j link show vx | jq -r '.[0].address')
  done
  for k in 1 2; do
    local r; r=$(other "$k")
    h "$k" route add "100.96.$r.0/24" via "100.96.$r.0" dev vx onlink
    h "$k" neigh add "100.96.$r.0" lladdr "${mac[$r]}" dev vx nud permanent
    bridge -n "${HOST[$k]}" fdb append "${mac[$r]}" dev vx dst "198.18.0.$r"
  done
}
vxlan_down() {
  for k in 1 2; do
    h "$k" route del "100.96.$(other "$k").0/24" 2>/dev/null || true
    h "$k" link del vx 2>/dev/null || true
  done
  unplug_containers
}

# ---- variant (d): Nebula, the userspace overlay reference --------------------------------------
# One CA, one certificate per host (Nebula address 100.99.0.K/24, the host's container subnet as
# its unsafe-route subnet), one nebula process per host listening on the underlay address, the
# peer in the static host map (no lighthouse), the other container subnet routed into Nebula's TUN.
nebula_up() {
  command -v nebula >/dev/null && command -v nebula-cert >/dev/null || { skip_variant nebula "nebula is not installed (apt-get install nebula)"; return 0; }
  plug_containers "$NEBULA_MTU"
  local d=$TMP/nebula k r
  rm -rf "$d"; mkdir -p "$d"   # a fresh CA and certificates each round
  nebula-cert ca -name "wbench" -duration 2h -out-crt "$d/ca.crt" -out-key "$d/ca.key"
  for k in 1 2; do
    r=$(other "$k")
    nebula-cert sign -ca-crt "$d/ca.crt" -ca-key "$d/ca.key" -name "host$k" -ip "100.99.0.$k/24" \
      -subnets "100.96.$k.0/24" -out-crt "$d/host$k.crt" -out-key "$d/host$k.key"
    cat >"$d/host$k.yaml" <<EOF
pki: {ca: $d/ca.crt, cert: $d/host$k.crt, key: $d/host$k.key}
static_host_map: {"100.99.0.$r": ["198.18.0.$r:4242"]}
lighthouse: {am_lighthouse: false, hosts: []}
listen: {host: 198.18.0.$k, port: 4242, read_buffer: 8388608, write_buffer: 8388608}
punchy: {punch: false}
tun:
  dev: neb1
  mtu: $NEBULA_MTU
  tx_queue: 5000
  unsafe_routes: [{route: 100.96.$r.0/24, via: 100.99.0.$r, mtu: $NEBULA_MTU}]
firewall:
  outbound: [{port: any, proto: any, host: any}]
  inbound: [{port: any, proto: any, host: any}]
logging: {level: warning}
EOF
    ip netns exec "${HOST[$k]}" nebula -config "$d/host$k.yaml" >"$d/host$k.log" 2>&1 &
    NEBULA_PIDS[$k]=$!
    SERVER_PIDS+=("$!")
  done
  local i
  for i in $(seq 1 50); do
    h 1 link show neb1 >/dev/null 2>&1 && h 2 link show neb1 >/dev/null 2>&1 && break
    sleep 0.1
  done
  for i in $(seq 1 30); do
    cx 1 ping -n -c 1 -W 1 -q "$SERVER_ADDR" >/dev/null 2>&1 && break
    [ "$i" = 30 ] && { fail_variant nebula "container 1 cannot reach $SERVER_ADDR over Nebula: $(tail -3 "$d/host1.log")"; return 0; }
  done
  DP_PIDS="${NEBULA_PIDS[1]} ${NEBULA_PIDS[2]}"
  log "nebula: $(nebula -version 2>&1 | head -1), pids $DP_PIDS, tunnel MTU $NEBULA_MTU"
}
nebula_down() {
  local k
  for k in 1 2; do
    [ -n "${NEBULA_PIDS[$k]:-}" ] || continue
    kill "${NEBULA_PIDS[$k]}" 2>/dev/null || true
    wait "${NEBULA_PIDS[$k]}" 2>/dev/null || true
  done
  NEBULA_PIDS=()
  DP_PIDS=""
  unplug_containers
}
declare -A NEBULA_PIDS=()

# ---- variant (c): Weft's datapath --------------------------------------------------------------
# weft_datapath: Weft's control plane builds the topology. Its contract:
#   - on entry: the lab $LAB (no control plane, hosts ${HOST[1]}, ${HOST[2]} with eth0 198.18.0.K/24)
#     and the container namespaces ${CTR[1]}, ${CTR[2]} exist, with the routed and vxlan
#     variants' configuration already undone;
#   - it removes those containers and the lab, brings the lab up again under the same name with
#     its controller and one agent per host (`weft lab up`, kernel datapath; `weft lab down`
#     stops them by pid, here or in cleanup), applies network $WEFT_NETWORK (100.96.0.0/16, VNI 1,
#     MTU 1450; the agents make wbr1/wvx1 with UDP 4789 and the flannel-style route, neighbour and
#     FDB entry per peer, plus the `inet weft` isolation table) and adds the workloads c1 on host1
#     and c2 on host2 (`weft lab workload add`); CTR[k] then names workload k's namespace
#     (weft-$LAB-wl.cK), so measure() runs in it exactly as in the containers of the other
#     variants;
#   - it checks that what Weft made is the reference topology (addresses 100.96.K.2/24 via
#     100.96.K.1, MTU 1450 everywhere, VNI 1, port 4789, no learning, the peer's route,
#     permanent neighbour and FDB entry) and that 100.96.2.2 answers from container 1; if the lab
#     or a check fails it returns 0 after fail_variant (skip_variant when WEFT_BENCH_SKIP_WEFT=1)
#     so routed and vxlan are still reported; on success STATUS[weft] is unset;
#   - weft_datapath_down removes the workloads again (`weft lab workload rm`: veths, addresses,
#     namespaces); the lab itself, its controller and agents go in cleanup (`weft lab down`).
WV=weft  # the Weft variant being set up: weft (kernel datapath) or weft-us (userspace)
weft_fail() { fail_variant "$WV" "$1"; log "$WV: lab logs follow"; tail -n 20 /run/weft/labs/"$LAB"/*.log >&2 2>/dev/null || true; }

weft_check_topology() {  # prints the first difference from the reference topology, if any
  local k r vx
  for k in 1 2; do
    r=$(other "$k")
    vx=$(h "$k" -d -j link show "wvx$VNI" 2>/dev/null) || { echo "host$k has no wvx$VNI"; return; }
    jq -e --argjson mtu "$MTU" --argjson vni "$VNI" --argjson port "$VXPORT" '.[0]
        | .mtu == $mtu and .linkinfo.info_kind == "vxlan" and .linkinfo.info_data.id == $vni
          and .linkinfo.info_data.port == $port and (.linkinfo.info_data.learning | not)' <<<"$vx" >/dev/null \
      || { echo "host$k: wvx$VNI is not VNI $VNI, port $VXPORT, no learning, MTU $MTU: $(h "$k" -d -o link show "wvx$VNI")"; return; }
    [ "$(h "$k" -j link show "wbr$VNI" | jq '.[0].mtu')" = "$MTU" ] || { echo "host$k: wbr$VNI MTU is not $MTU"; return; }
    h "$k" -o addr show dev "wbr$VNI" | grep -q " 100\.96\.$k\.1/24 " || { echo "host$k: wbr$VNI has no 100.96.$k.1/24"; return; }
    h "$k" -o addr show dev "wvx$VNI" | grep -q " 100\.96\.$k\.0/32 " || { echo "host$k: wvx$VNI has no 100.96.$k.0/32"; return; }
    h "$k" route show "100.96.$r.0/24" | grep -q "via 100\.96\.$r\.0 dev wvx$VNI .*onlink" \
      || { echo "host$k: no route 100.96.$r.0/24 via 100.96.$r.0 dev wvx$VNI onlink (yet)"; return; }
    h "$k" neigh show "100.96.$r.0" dev "wvx$VNI" | grep -q PERMANENT || { echo "host$k: no permanent neighbour 100.96.$r.0 (yet)"; return; }
    bridge -n "${HOST[$k]}" fdb show dev "wvx$VNI" | grep -q "dst 198\.18\.0\.$r " || { echo "host$k: no FDB entry to 198.18.0.$r (yet)"; return; }
    [ "$(c "$k" -j link show eth0 | jq '.[0].mtu')" = "$MTU" ] || { echo "workload c$k: eth0 MTU is not $MTU"; return; }
    c "$k" -o addr show dev eth0 | grep -q " 100\.96\.$k\.2/24 " || { echo "workload c$k: eth0 is not 100.96.$k.2/24: $(c "$k" -o -4 addr show dev eth0)"; return; }
    c "$k" route show default | grep -q "via 100\.96\.$k\.1 dev eth0" || { echo "workload c$k: no default route via 100.96.$k.1"; return; }
  done
}

weft_check_topology_userspace() {  # the same for the userspace datapath: TUN instead of VXLAN device
  local k r
  for k in 1 2; do
    r=$(other "$k")
    [ "$(h "$k" -j link show "wtun$VNI" 2>/dev/null | jq '.[0].mtu')" = "$MTU" ] || { echo "host$k has no wtun$VNI with MTU $MTU (yet)"; return; }
    h "$k" -o addr show dev "wbr$VNI" | grep -q " 100\.96\.$k\.1/24 " || { echo "host$k: wbr$VNI has no 100.96.$k.1/24"; return; }
    h "$k" route show "100.96.$r.0/24" | grep -q "dev wtun$VNI" || { echo "host$k: no route 100.96.$r.0/24 dev wtun$VNI (yet)"; return; }
    [ "$(c "$k" -j link show eth0 | jq '.[0].mtu')" = "$MTU" ] || { echo "workload c$k: eth0 MTU is not $MTU"; return; }
    c "$k" -o addr show dev eth0 | grep -q " 100\.96\.$k\.2/24 " || { echo "workload c$k: eth0 is not 100.96.$k.2/24"; return; }
  done
}

weft_datapath() {  # weft_datapath kernel|userspace
  local datapath=$1
  [ "$datapath" = kernel ] && WV=weft || WV=weft-us
  if [ "${WEFT_BENCH_SKIP_WEFT:-0}" = 1 ] || [ "${WEFT_BENCH_AGENT:-1}" = 0 ]; then
    skip_variant "$WV" "on request (WEFT_BENCH_SKIP_WEFT=1)"
    return 0
  fi
  # The containers (hand-made or an earlier variant's workloads) and the lab go; the lab comes
  # back with a control plane and the chosen datapath.
  local k ns
  for k in 1 2; do
    if ip netns list | awk '{print $1}' | grep -qxF "${CTR[$k]}"; then kill_in_netns "${CTR[$k]}"; ip netns del "${CTR[$k]}"; fi
  done
  "$WEFT" lab down "$LAB" >"$TMP/lab-down.log" 2>&1 || { weft_fail "weft lab down $LAB failed: $(cat "$TMP/lab-down.log")"; return 0; }
  if ! "$WEFT" lab up "$LAB" --hosts 2 --datapath "$datapath" >"$TMP/weft-lab-up.log" 2>&1; then
    weft_fail "weft lab up $LAB (with control plane) failed: $(tail -3 "$TMP/weft-lab-up.log")"; return 0
  fi
  log "$WV: lab $LAB re-created with controller and agents ($datapath datapath): $(grep -E 'start (controller|[0-9]+ agent)' "$TMP/weft-lab-up.log" | sed 's/^ *//' | tr '\n' ';' | sed 's/;$//')"
  cat >"$TMP/network.yaml" <<EOF
apiVersion: weft/v1
kind: Network
metadata: {name: $WEFT_NETWORK}
spec: {cidr: 100.96.0.0/16, vni: $VNI, mtu: $MTU}
EOF
  "$WEFT" lab apply "$LAB" -f "$TMP/network.yaml" >"$TMP/weft-apply.log" 2>&1 \
    || { weft_fail "weft lab apply failed: $(cat "$TMP/weft-apply.log")"; return 0; }
  for k in 1 2; do
    "$WEFT" lab workload add "$LAB" "c$k" --host "host$k" --network "$WEFT_NETWORK" >"$TMP/weft-wl$k.log" 2>&1 \
      || { weft_fail "weft lab workload add c$k failed: $(cat "$TMP/weft-wl$k.log")"; return 0; }
    ns=$(jq -r --arg w "c$k" '.workloads[] | select(.name == $w) | .namespace' "/run/weft/labs/$LAB/lab.json")
    [ "$ns" = "weft-$LAB-wl.c$k" ] || { weft_fail "workload c$k: unexpected namespace '$ns'"; return 0; }
    CTR[$k]=$ns
    log "$WV: $(cat "$TMP/weft-wl$k.log")"
  done
  # The agents reconcile asynchronously: wait (up to 20 s) for the peer entries on both hosts.
  local diff i
  for i in $(seq 1 100); do
    if [ "$datapath" = kernel ]; then diff=$(weft_check_topology); else diff=$(weft_check_topology_userspace); fi
    [ -z "$diff" ] && break
    sleep 0.2
  done
  [ -z "$diff" ] || { weft_fail "Weft's topology differs from the reference: $diff"; return 0; }
  for i in $(seq 1 20); do
    cx 1 ping -n -c 1 -W 1 -q "$SERVER_ADDR" >/dev/null 2>&1 && break
    [ "$i" = 20 ] && { weft_fail "container c1 cannot reach $SERVER_ADDR over Weft"; return 0; }
  done
  ( eval "$("$WEFT" lab env "$LAB")"
    for kind in hosts networks workloads; do "$WEFT" get "$kind"; echo; done ) >"$TMP/weft-get.txt" 2>&1 || true
  sed "s/^/[overlay] $WV:   /" "$TMP/weft-get.txt" | grep -v ':   $' >&2 || true
  WEFT_RULES=$(ip netns exec "${HOST[1]}" nft list table inet weft 2>/dev/null | grep -c ' drop ' || true)
  [ "$datapath" = userspace ] && DP_PIDS=$(jq -r '.control.agents // {} | .[]' "/run/weft/labs/$LAB/lab.json" | tr '\n' ' ')
  log "$WV: topology matches the reference; nftables table inet weft on host1 has ${WEFT_RULES:-0} drop rule(s) in its forward chain"
}

weft_datapath_down() {
  local k
  for k in 1 2; do
    kill_in_netns "${CTR[$k]}"   # nothing should be left; a namespace with processes outlives rm
    "$WEFT" lab workload rm "$LAB" "c$k" >/dev/null 2>&1 || log "warning: weft lab workload rm $LAB c$k failed"
  done
  DP_PIDS=""
}

datapath_ticks() {  # utime+stime (clock ticks) of the processes in DP_PIDS, all their threads
  local pid f sum=0
  for pid in $DP_PIDS; do
    f=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null) || continue
    sum=$((sum + ${f% *} + ${f#* }))
  done
  echo "$sum"
}

# CPU time (seconds) used so far by the lab's controller and agents.
control_plane_cpu() {
  local pid f ticks=0
  for pid in $(control_plane_pids); do
    f=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null) || continue
    ticks=$((ticks + ${f% *} + ${f#* }))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }'
}

# ---- measurements -----------------------------------------------------------------------------
declare -A R          # R[variant.metric] = value
declare -A STATUS     # STATUS[variant] = ok | skipped: why | failed: why
skip_variant() { STATUS[$1]="skipped: $2"; log "$1: skipped, $2"; }
fail_variant() { STATUS[$1]="failed: $2"; log "$1: FAILED, $2"; }

tx_bytes() {  # tx_bytes K DEV: transmitted bytes of DEV in lab host K (0 when DEV is absent)
  h "$1" -j -s link show "$2" 2>/dev/null | jq -r '.[0].stats64.tx.bytes // 0' 2>/dev/null || echo 0
}

ksoftirqd_ticks() {  # total utime+stime (clock ticks) of the kernel's ksoftirqd threads
  local pid sum=0 f
  for pid in $(pgrep '^ksoftirqd/' || true); do
    f=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null) || continue
    sum=$((sum + ${f% *} + ${f#* }))
  done
  echo "$sum"
}

busy_ticks() {  # busy clock ticks of the whole machine so far (all of /proc/stat but idle, iowait)
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# iperf_run VARIANT KEY STREAMS: one iperf3 test container1 -> container2.
# CPU s/GiB = (CPU of the iperf3 client and server processes, user+sys as iperf3 reports it, which
# includes the softirq work the kernel charged to them) + (CPU of the ksoftirqd threads), divided
# by the GiB received. Softirq work charged to unrelated processes is not counted.
# Background: the machine's busy CPU time during the test minus that benchmark CPU, i.e. what
# anything else (a build, another lab) took; reported so a disturbed variant can be told apart.
iperf_run() {
  local v=$1 key=$2 streams=$3 json=$TMP/$1-$2.json t0 t1 hz
  hz=$(getconf CLK_TCK)
  local u0 u1 x0 x1 vxdev=${VXDEV[$1]:-}
  u0=$(tx_bytes 1 eth0); x0=$(tx_bytes 1 "${vxdev:-none}")
  t0=$(( $(ksoftirqd_ticks) + $(datapath_ticks) )); local b0; b0=$(busy_ticks)
  if ! timeout $((DURATION + 30)) ip netns exec "${CTR[1]}" \
      iperf3 -c "$SERVER_ADDR" -p "$IPERF_PORT" -t "$DURATION" -P "$streams" -J >"$json" 2>"$TMP/$v-$key.err"; then
    die "$v: iperf3 -P $streams failed: $(jq -r '.error // empty' "$json" 2>/dev/null) $(cat "$TMP/$v-$key.err")"
  fi
  t1=$(( $(ksoftirqd_ticks) + $(datapath_ticks) )); local b1; b1=$(busy_ticks)
  u1=$(tx_bytes 1 eth0); x1=$(tx_bytes 1 "${vxdev:-none}")
  local err; err=$(jq -r '.error // empty' "$json")
  [ -z "$err" ] || die "$v: iperf3 -P $streams: $err"
  eval "$(jq -r --argjson hz "$hz" --argjson kt "$((t1 - t0))" '
    .end as $e
    | ($e.sum_received.bytes) as $bytes
    | ($e.sum_received.seconds) as $secs
    | (($e.cpu_utilization_percent.host_total + $e.cpu_utilization_percent.remote_total) / 100 * $secs
       + $kt / $hz) as $cpu
    | "gbps=\($e.sum_received.bits_per_second / 1e9) retr=\($e.sum_sent.retransmits // 0) bytes=\($bytes) cpu=\($cpu) cpugib=\(if $bytes > 0 then $cpu / ($bytes / 1073741824) else 0 end)"
  ' "$json")"
  # Path check: the payload must have left host 1 over the underlay (and through the variant's
  # device: vx, wvx1, wtun1, neb1), so no variant can take a shortcut.
  [ $((u1 - u0)) -ge "$bytes" ] || die "$v: only $((u1 - u0)) bytes left host 1 on eth0 for $bytes received"
  if [ -n "$vxdev" ]; then
    [ $((x1 - x0)) -ge "$bytes" ] || die "$v: only $((x1 - x0)) bytes went through $vxdev for $bytes received"
  fi
  R[$v.$key.gbps]=$(printf '%.2f' "$gbps")
  R[$v.$key.retr]=$retr
  R[$v.$key.cpugib]=$(printf '%.2f' "$cpugib")
  R[$v.$key.bg]=$(awk -v b="$((b1 - b0))" -v hz="$hz" -v c="$cpu" 'BEGIN { x = b / hz - c; printf "%.1f", x < 0 ? 0 : x }')
  R[$v.bg]=$(awk -v a="${R[$v.bg]:-0}" -v b="${R[$v.$key.bg]}" 'BEGIN { printf "%.1f", a + b }')
  log "$v: iperf3 -P $streams: ${R[$v.$key.gbps]} Gbit/s, $retr retransmits, $(printf '%.1f' "$cpu") CPU s for $((bytes / 1048576)) MiB (${R[$v.$key.cpugib]} CPU s/GiB); background CPU ${R[$v.$key.bg]} s"
}

LAT_TOOL=
choose_latency_tool() {
  if [ "${WEFT_BENCH_LATENCY:-}" = ping ]; then
    LAT_TOOL=ping; log "latency: ping fallback forced by WEFT_BENCH_LATENCY=ping"; return
  fi
  if ! command -v sockperf >/dev/null; then
    if apt-cache policy sockperf 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      log "latency: installing sockperf from the Debian archive"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sockperf >/dev/null 2>&1 \
        || log "latency: apt-get install sockperf failed"
    fi
  fi
  if command -v sockperf >/dev/null; then
    LAT_TOOL=sockperf
  else
    LAT_TOOL=ping
    log "latency: sockperf not available, falling back to ping -c 200 -i 0.01 (ICMP RTT percentiles)"
  fi
}

latency_run() {
  local v=$1 out=$TMP/$v-lat.txt
  if [ "$LAT_TOOL" = sockperf ]; then
    # TCP ping-pong, 14-byte messages, one outstanding at a time; --full-rtt reports round trips.
    # Started with `ip netns exec` itself (not through cx, a function, which would run in a
    # background subshell), so $! is the server (ip netns exec execs it) and `kill $spid` stops it.
    ip netns exec "${CTR[2]}" sockperf server -i "$SERVER_ADDR" -p "$SOCKPERF_PORT" --tcp \
      >"$TMP/$v-sockperf-server.log" 2>&1 &
    local spid=$!
    SERVER_PIDS+=("$spid")
    wait_listen 2 "$SOCKPERF_PORT"
    kill -0 "$spid" 2>/dev/null || die "$v: sockperf server exited: $(tail -3 "$TMP/$v-sockperf-server.log")"
    timeout $((LAT_SECONDS + 30)) ip netns exec "${CTR[1]}" \
      sockperf ping-pong -i "$SERVER_ADDR" -p "$SOCKPERF_PORT" --tcp -t "$LAT_SECONDS" --full-rtt \
      2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$out" || die "$v: sockperf ping-pong failed: $(tail -3 "$out")"
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    local dropped
    dropped=$(sed -n 's/.*# dropped messages = \([0-9]*\).*/\1/p' "$out" | head -1)
    [ -n "$dropped" ] || die "$v: could not parse sockperf output: $(tail -5 "$out")"
    [ "$dropped" = 0 ] || log "$v: warning: sockperf dropped $dropped messages"
    R[$v.lat.avg]=$(sed -n 's/.*avg-rtt=\([0-9.]*\).*/\1/p' "$out" | head -1)
    R[$v.lat.p50]=$(sed -n 's/.*percentile 50\.000 = *\([0-9.]*\).*/\1/p' "$out" | head -1)
    R[$v.lat.p99]=$(sed -n 's/.*percentile 99\.000 = *\([0-9.]*\).*/\1/p' "$out" | head -1)
    R[$v.lat.n]=$(sed -n 's/.*Total \([0-9]*\) observations.*/\1/p' "$out" | head -1)
  else
    # ICMP echo, 200 packets 10 ms apart; percentiles (nearest rank) from per-packet times.
    cx 1 ping -n -c 200 -i 0.01 -W 1 "$SERVER_ADDR" >"$out" 2>&1 || true
    local lost; lost=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$out")
    [ "${lost:-100}" = 0 ] || log "$v: warning: ping lost ${lost:-?}% of packets"
    local stats
    stats=$(sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' "$out" | sort -n | awk '
      { t[NR] = $1 * 1000; s += t[NR] }
      END {
        if (NR == 0) { print "avg= p50= p99= n=0"; exit }
        i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
        printf "avg=%.3f p50=%.3f p99=%.3f n=%d\n", s / NR, t[i50], t[i99], NR
      }')
    eval "$stats"
    [ "$n" -gt 0 ] || die "$v: ping got no replies"
    R[$v.lat.avg]=$avg; R[$v.lat.p50]=$p50; R[$v.lat.p99]=$p99; R[$v.lat.n]=$n
  fi
  log "$v: latency ($LAT_TOOL): RTT avg ${R[$v.lat.avg]} us, p50 ${R[$v.lat.p50]} us, p99 ${R[$v.lat.p99]} us over ${R[$v.lat.n]} samples"
}

measure() {
  local v=$1
  # Sanity first: reachability and the overlay MTU (a full-size unfragmentable packet must pass).
  cx 1 ping -n -c 3 -i 0.2 -W 2 -q "$SERVER_ADDR" >/dev/null || die "$v: container 1 cannot reach $SERVER_ADDR"
  local mtu=${VMTU[$v]:-$MTU}
  cx 1 ping -n -c 1 -W 2 -q -M do -s $((mtu - 28)) "$SERVER_ADDR" >/dev/null \
    || die "$v: a $mtu-byte packet does not pass container 1 -> $SERVER_ADDR"
  ip netns exec "${CTR[2]}" iperf3 -s -p "$IPERF_PORT" >"$TMP/$v-iperf3-server.log" 2>&1 &  # $! = iperf3
  local ipid=$!
  SERVER_PIDS+=("$ipid")
  wait_listen 2 "$IPERF_PORT"
  kill -0 "$ipid" 2>/dev/null || die "$v: iperf3 server exited: $(tail -3 "$TMP/$v-iperf3-server.log")"
  iperf_run "$v" p1 1
  iperf_run "$v" p4 4
  kill "$ipid" 2>/dev/null || true
  wait "$ipid" 2>/dev/null || true
  latency_run "$v"
  STATUS[$v]=ok
}

# ---- report -----------------------------------------------------------------------------------
ratio() {  # ratio NUM DEN -> "0.62x" or "-"
  awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2fx\n", a / b }'
}
val() { local v=${R[$1]:-}; [ -n "$v" ] && printf '%s' "$v" || printf -- '-'; }
fmt1() { local v=${R[$1]:-}; [ -n "$v" ] && printf '%.1f' "$v" || printf -- '-'; }

METRICS="p1.gbps p1.retr p4.gbps p4.retr lat.p50 lat.p99 p1.cpugib p4.cpugib"
table() {  # markdown table of all variants plus ratio rows
  local lat_label
  [ "$LAT_TOOL" = sockperf ] && lat_label="TCP RTT" || lat_label="ICMP RTT"
  printf '| variant | 1 stream Gbit/s | retr | 4 streams Gbit/s | retr | %s p50 us | %s p99 us | CPU s/GiB 1 stream | CPU s/GiB 4 streams |\n' "$lat_label" "$lat_label"
  printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  local v
  for v in $VARIANTS; do
    if [ "${STATUS[$v]:-}" = ok ]; then
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$v" \
        "$(val $v.p1.gbps)" "$(val $v.p1.retr)" "$(val $v.p4.gbps)" "$(val $v.p4.retr)" \
        "$(fmt1 $v.lat.p50)" "$(fmt1 $v.lat.p99)" "$(val $v.p1.cpugib)" "$(val $v.p4.cpugib)"
    else
      printf '| %s | %s | | | | | | | |\n' "$v" "${STATUS[$v]:-not run}"
    fi
  done
  local pair a b
  for pair in vxlan/routed weft/vxlan weft-us/vxlan weft-us/nebula; do
    a=${pair%/*}; b=${pair#*/}
    wanted "$a" && wanted "$b" || continue
    if [ "${STATUS[$a]:-}" = ok ] && [ "${STATUS[$b]:-}" = ok ]; then
      printf '| **%s** | %s | | %s | | %s | %s | %s | %s |\n' "$pair" \
        "$(ratio "${R[$a.p1.gbps]}" "${R[$b.p1.gbps]}")" "$(ratio "${R[$a.p4.gbps]}" "${R[$b.p4.gbps]}")" \
        "$(ratio "${R[$a.lat.p50]}" "${R[$b.lat.p50]}")" "$(ratio "${R[$a.lat.p99]}" "${R[$b.lat.p99]}")" \
        "$(ratio "${R[$a.p1.cpugib]}" "${R[$b.p1.cpugib]}")" "$(ratio "${R[$a.p4.cpugib]}" "${R[$b.p4.cpugib]}")"
    else
      printf '| **%s** | n/a (%s not measured) | | | | | | | |\n' "$pair" \
        "$([ "${STATUS[$a]:-}" = ok ] && echo "$b" || echo "$a")"
    fi
  done
}

background_note() {  # one line: the background CPU per measured variant, and which are disturbed
  local v parts="" bad="" avail
  avail=$(( $(nproc) * 2 * DURATION ))   # CPUs x the two iperf3 tests of a variant
  for v in $VARIANTS; do
    [ "${STATUS[$v]:-}" = ok ] || continue
    parts+="${parts:+, }$v ${R[$v.bg]:-?} s"
    awk -v b="${R[$v.bg]:-0}" -v a="$avail" 'BEGIN { exit !(b > 0.05 * a) }' && bad+="${bad:+, }$v"
  done
  printf 'background CPU (anything but the benchmark) during the iperf3 tests, of %s CPU s per variant: %s' \
    "$avail" "${parts:-none measured}"
  [ -z "$bad" ] || printf ' (WARNING: over 5%% for %s: those figures are disturbed by other load)' "$bad"
}

RESULTS_HEADER='# Overlay benchmark results

Appended by `bench/overlay.sh`, one section per run. Every run uses one 2-host Weft lab
(`weft lab up`, hosts 198.18.0.1 and 198.18.0.2 on a namespace bridge, underlay MTU 1500) and
measures container to container (container K is a network namespace at 100.96.K.2/24 behind a
bridge on host K with gateway 100.96.K.1), overlay MTU 1450 on the bridge and container veths in
every variant. routed and vxlan run in the lab without control plane (`--no-control-plane`); for
weft the same lab is re-created with its controller and agents:

- **routed**: no encapsulation; each host routes the other container subnet via the other
  underlay address. The baseline: what the overlay costs is measured against this.
- **vxlan**: hand-configured kernel VXLAN in the flannel L3 style (VNI 1, UDP 4789, no learning,
  100.96.K.0/32 on the VXLAN device, per remote host one onlink route, one permanent neighbour
  entry, one FDB entry). The reference Weft has to match.
- **weft**: Weft'"'"'s kernel datapath configuring the same topology through its control plane
  (hook `weft_datapath`): network `blue` (100.96.0.0/16, VNI 1, MTU 1450) applied to the lab'"'"'s
  controller, the agents make bridge wbr1 and VXLAN device wvx1 (plus their `inet weft` nftables
  isolation table), the containers are Weft workloads (`weft lab workload add`). Measured by
  default since the control plane exists (sections before that show it as skipped);
  `WEFT_BENCH_SKIP_WEFT=1` skips it.
- **weft-us**: Weft'"'"'s userspace datapath, the same control plane and workloads with
  `--datapath userspace`: TUN wtun1 (TSO/USO announced, so the kernel hands over 64 KiB super
  packets that the VTEP cuts itself), UDP GSO to send and UDP GRO to receive, received TCP
  segments coalesced back into super packets for the TUN. Its agents'"'"' CPU counts in CPU s/GiB.
- **nebula**: Debian'"'"'s Nebula, the userspace overlay reference: one process per host, static host
  map, the other container subnet as an unsafe route. Its header and AEAD tag take 60 bytes, so
  its tunnel, bridge and containers have MTU 1440. Its processes'"'"' CPU counts in CPU s/GiB.
  Nebula encrypts (AES-GCM) and Weft does not yet, which the comparison must be read with.

Since the rounds option exists (`-r`, default 3), a section gives per-variant medians over its
rounds (each round re-creates the lab and measures routed, vxlan and weft in turn) and a second
table with every round'"'"'s throughput; earlier sections are single rounds.

Before measuring, each variant must pass a full-size (1450-byte) DF ping, and every iperf3 test
checks that the payload left host 1 on its underlay eth0 (and, for vxlan and weft, through the
VXLAN device vx or wvx1).

Columns: iperf3 TCP goodput (received) with 1 and 4 streams and the sender'"'"'s retransmits;
round-trip latency percentiles in microseconds (sockperf TCP ping-pong when available, else ICMP
ping; each section says which); CPU seconds per GiB received (iperf3 client and server process
CPU plus the ksoftirqd threads). Ratios below 1.00x mean less throughput (or lower latency / less
CPU) than the reference. All hosts share one machine, so figures are only comparable within a
section; background load skews them (sections since the weft variant exists give the CPU other
processes used during each variant'"'"'s iperf3 tests, and warn above 5%).
'

record() {
  local file=bench/RESULTS.md
  [ -f "$file" ] || printf '%s' "$RESULTS_HEADER" >"$file"
  {
    printf '\n## %s\n\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    printf 'Command: `%s`\n\n' "$COMMAND"
    printf -- '- commit %s%s, weft binary `%s` (built %s, sha256 %s)\n' "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
      "$(git diff --quiet HEAD -- Sources Package.swift 2>/dev/null || echo ' (sources modified)')" "$WEFT" \
      "$(date -u -r "$WEFT" '+%Y-%m-%d %H:%M UTC')" "$(sha256sum "$WEFT" | cut -c1-12)"
    printf -- '- kernel %s, %s CPUs, load average at start %s\n' "$(uname -r)" "$(nproc)" "$LOAD_START"
    printf -- '- iperf3 %s, %s s per test; latency: %s\n' "$(iperf3 --version | awk 'NR==1{print $2}')" "$DURATION" "$LAT_DESC"
    printf -- '- %s\n' "$(background_note)"
    if [ "${STATUS[weft-us]:-}" = ok ]; then
      printf -- '- weft-us: the same with `--datapath userspace` (TUN wtun%s, VTEP threads in the agents, whose CPU is in CPU s/GiB); control plane and agents CPU during the measurement %s s\n' "$VNI" "${R[weft-us.cp.cpu]:-?}"
    fi
    if [ "${STATUS[nebula]:-}" = ok ]; then
      printf -- '- nebula: %s, one process per host (CPU in CPU s/GiB), static host map, unsafe routes, tunnel/bridge/container MTU %s\n' "$(nebula -version 2>&1 | head -1)" "$NEBULA_MTU"
    fi
    if [ "${STATUS[weft]:-}" = ok ]; then
      printf -- '- weft: lab re-created with controller + 2 agents (kernel datapath), network %s (VNI %s, MTU %s), workloads c1/c2; nftables `inet weft` forward chain with %s drop rules per host; control plane CPU during the weft measurement %s s (not in CPU s/GiB)\n' \
        "$WEFT_NETWORK" "$VNI" "$MTU" "${WEFT_RULES:-?}" "${R[weft.cp.cpu]:-?}"
    fi
    printf -- '- medians of %s round(s); each round re-creates the lab and measures %s in turn\n' "$ROUNDS" "$VARIANTS"
    printf '\n'
    table
    printf '\n'
    round_table
  } >>"$file"
  log "appended results to $file"
}

# ---- main -------------------------------------------------------------------------------------
COMMAND=bench/overlay.sh
if [ "$DURATION" != 10 ]; then COMMAND+=" -t $DURATION"; fi
if [ "$ROUNDS" != 3 ]; then COMMAND+=" -r $ROUNDS"; fi
if [ "$RECORD" = 0 ]; then COMMAND+=" --no-record"; fi
if [ -n "${WEFT_BENCH_VARIANTS:-}" ]; then COMMAND="WEFT_BENCH_VARIANTS=\"$WEFT_BENCH_VARIANTS\" $COMMAND"; fi
if [ "${WEFT_BENCH_SKIP_WEFT:-0}" = 1 ]; then COMMAND="WEFT_BENCH_SKIP_WEFT=1 $COMMAND"
elif [ "${WEFT_BENCH_AGENT:-1}" = 0 ]; then COMMAND="WEFT_BENCH_AGENT=0 $COMMAND"; fi
if [ "${WEFT_BENCH_LATENCY:-}" = ping ]; then COMMAND="WEFT_BENCH_LATENCY=ping $COMMAND"; fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

remove_leftovers
choose_latency_tool
if [ "$LAT_TOOL" = sockperf ]; then
  LAT_DESC="sockperf $(sockperf --version 2>&1 | sed -n 's/.*version \([^ ,]*\).*/\1/p' | head -1) TCP ping-pong, ${LAT_SECONDS} s, 14-byte messages, full RTT"
else
  LAT_DESC="ping fallback (sockperf unavailable or WEFT_BENCH_LATENCY=ping): ICMP echo, 200 packets, 10 ms apart, 56-byte payload"
fi
log "lab $LAB, load average $LOAD_START, $DURATION s per iperf3 test"

declare -A RR         # RR[variant.metric.round] = value, the per-round figures
HAND_CTR=("${CTR[1]}" "${CTR[2]}")
ROUND_KEYS="p1.gbps p1.retr p4.gbps p4.retr lat.p50 lat.p99 lat.avg lat.n p1.cpugib p4.cpugib bg cp.cpu"
save_round() {  # save_round N: keeps this round's figures and clears them for the next round
  local v m
  for v in $VARIANTS; do
    for m in $ROUND_KEYS; do
      [ -n "${R[$v.$m]:-}" ] && RR[$v.$m.$1]=${R[$v.$m]}
      unset "R[$v.$m]"
    done
  done
}
take_medians() {  # R[variant.metric] = the median over the rounds that measured it
  local v m r values
  for v in $VARIANTS; do
    for m in $ROUND_KEYS; do
      values=""
      for ((r = 1; r <= ROUNDS; r++)); do values+="${RR[$v.$m.$r]:-} "; done
      R[$v.$m]=$(tr ' ' '\n' <<<"$values" | { grep -v '^$' || true; } | sort -g | awk '
        { x[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print x[(NR + 1) / 2]; else printf "%g\n", (x[NR / 2] + x[NR / 2 + 1]) / 2 }')
      [ -n "${R[$v.$m]}" ] || unset "R[$v.$m]"
    done
  done
}
round_table() {  # throughput of every round, so the spread behind the medians is visible
  local r v head="| round" rule="|---"
  for v in $VARIANTS; do head+=" | $v 1 / 4 streams Gbit/s"; rule+="|---"; done
  printf '%s |\n%s|\n' "$head" "$rule"
  for ((r = 1; r <= ROUNDS; r++)); do
    printf '| %s' "$r"
    for v in $VARIANTS; do printf ' | %s / %s' "${RR[$v.p1.gbps.$r]:--}" "${RR[$v.p4.gbps.$r]:--}"; done
    printf ' |\n'
  done
}

LAB_UP=1
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round of $ROUNDS"
  CTR[1]=${HAND_CTR[0]}; CTR[2]=${HAND_CTR[1]}
  # routed and vxlan: no controller, no agents, no `inet weft` table in the hosts.
  "$WEFT" lab up "$LAB" --hosts 2 --no-control-plane >"$TMP/lab-up.log" 2>&1 \
    || die "weft lab up failed: $(cat "$TMP/lab-up.log")"
  make_containers

  if wanted routed; then
    log "routed: configuring"
    routed_up
    measure routed
    routed_down
  fi
  if wanted vxlan; then
    log "vxlan: configuring"
    vxlan_up
    measure vxlan
    vxlan_down
  fi
  if wanted nebula; then
    log "nebula: configuring"
    nebula_up
    if [ -z "${STATUS[nebula]:-}" ] || [ "${STATUS[nebula]}" = ok ]; then measure nebula; fi
    nebula_down
  fi

  for datapath in kernel userspace; do
    [ "$datapath" = kernel ] && v=weft || v=weft-us
    wanted "$v" || continue
    log "$v: configuring through the control plane ($datapath datapath)"
    weft_datapath "$datapath"
    if [ -z "${STATUS[$v]:-}" ] || [ "${STATUS[$v]}" = ok ]; then
      cp0=$(control_plane_cpu)
      measure "$v"
      R[$v.cp.cpu]=$(awk -v a="$cp0" -v b="$(control_plane_cpu)" 'BEGIN { printf "%.2f", b - a }')
      log "$v: the controller and agents used ${R[$v.cp.cpu]} CPU s during the measurement"
      weft_datapath_down
    fi
  done
  for k in 1 2; do ip netns del "${HAND_CTR[$((k - 1))]}" 2>/dev/null || true; done
  "$WEFT" lab down "$LAB" >"$TMP/lab-down.log" 2>&1 || die "weft lab down $LAB failed: $(cat "$TMP/lab-down.log")"
  save_round "$round"
  for v in weft weft-us nebula; do
    if [[ "${STATUS[$v]:-}" == failed* || "${STATUS[$v]:-}" == skipped* ]] && [ "$round" -lt "$ROUNDS" ]; then
      log "$v: ${STATUS[$v]}; the next rounds go on without it"
      VARIANTS=$(tr ' ' '\n' <<<"$VARIANTS" | grep -vx "$v" | tr '\n' ' ')
    fi
  done
done
take_medians

echo
echo "Container-to-container, 2-host lab, overlay MTU $MTU, iperf3 ${DURATION} s per test, median of $ROUNDS round(s), load average at start $LOAD_START"
echo "Latency: $LAT_DESC"
echo "$(background_note | sed 's/^b/B/')"
echo
table
echo
round_table
echo
if [ "$RECORD" = 1 ]; then record; fi

rc=0
for v in weft weft-us; do [[ "${STATUS[$v]:-}" == failed* ]] && rc=1; done
exit "$rc"
