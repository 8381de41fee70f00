#!/usr/bin/env python3
"""Attach and detach latency per container: weft-cni beside the reference bridge plugin.

Brings up a one-host Weft lab (`weft lab up cbench-PID --hosts 1`, network `blue`, MTU 1450),
then, N times (default 50), makes a fresh network namespace and times one CNI ADD and one CNI
DEL of each plugin, alternating which goes first so that drift hits both alike:

  weft    weft-cni, network blue, through the host agent's unix socket (veth into the agent's
          bridge wbr1, address from the agent's IPAM, Workload registered with the controller)
  bridge  Debian's containernetworking-plugins `bridge` with `host-local` IPAM (its own bridge
          cbench0, isGateway, the same MTU, an IPAM data directory of this run's own)

Both plugins run in the lab host's network namespace (`ip netns exec weft-cbench-PID-host1`),
exactly as a runtime on that host would run them: a process per call, configuration on stdin,
CNI_* variables. A call's time is from spawning the plugin to its exit. Prints median, p90 and
the weft/bridge ratio of the medians, and with --record appends them to bench/RESULTS.md.

Safety: only namespaces named weft-cbench-PID-* (the lab's and the containers'), removed on exit
(and leftovers of earlier runs of this script removed on start); the root namespace is not
touched; the lab's controller and agent are stopped by `weft lab down`, by pid.

Usage: bench/cni.py [-n 50] [--record]   (root; WEFT=PATH picks the weft binary, weft-cni beside it
unless WEFT_CNI=PATH)
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_DIR = "/usr/lib/cni"
MTU = 1450


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def weft_binary():
    if os.environ.get("WEFT"):
        return os.environ["WEFT"]
    for build in ("release", "debug"):
        path = os.path.join(ROOT, ".build", build, "weft")
        if os.access(path, os.X_OK):
            return path
    sys.exit("cni.py: no weft binary (swift build -c release, or set WEFT=)")


def namespaces():
    return [line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()]


def time_call(plugin, command, host_ns, container, netns, config):
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": REFERENCE_DIR,
    }
    start = time.perf_counter_ns()
    done = subprocess.run(
        ["nsenter", f"--net=/run/netns/{host_ns}", plugin],
        input=json.dumps(config), capture_output=True, text=True, env=env)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    if done.returncode != 0:
        raise RuntimeError(f"{os.path.basename(plugin)} {command} failed: {done.stdout}{done.stderr}")
    return elapsed


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=50, help="containers per plugin (default 50)")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("cni.py: needs root (network namespaces)")
    if not os.access(f"{REFERENCE_DIR}/bridge", os.X_OK):
        sys.exit("cni.py: needs the reference plugins (apt-get install containernetworking-plugins)")
    weft = weft_binary()
    weft_cni = os.environ.get("WEFT_CNI") or os.path.join(os.path.dirname(weft), "weft-cni")

    for ns in namespaces():  # leftovers of an earlier run of this script
        if ns.startswith("weft-cbench-"):
            lab = ns[len("weft-"):].rsplit("-", 1)[0]
            sh(weft, "lab", "down", lab, check=False)
            if ns in namespaces():
                sh("ip", "netns", "del", ns, check=False)

    lab = f"cbench-{os.getpid()}"
    host_ns = f"weft-{lab}-host1"
    tmp = tempfile.mkdtemp(prefix=f"{lab}.")
    made = []
    try:
        sh(weft, "lab", "up", lab, "--hosts", "1")
        manifest = os.path.join(tmp, "blue.yaml")
        with open(manifest, "w") as f:
            f.write("apiVersion: weft/v1\nkind: Network\nmetadata: {name: blue}\n"
                    "spec: {cidr: 100.96.0.0/16, mtu: 1450}\n")
        sh(weft, "lab", "apply", lab, "-f", manifest)
        deadline = time.time() + 20
        while sh("ip", "-n", host_ns, "link", "show", "wbr1", check=False).returncode != 0:
            if time.time() > deadline:
                raise RuntimeError("the agent did not make wbr1")
            time.sleep(0.1)

        configs = {
            "weft": (weft_cni, {
                "cniVersion": "1.0.0", "name": "blue", "type": "weft-cni", "network": "blue",
                "agentSocket": f"/run/weft/labs/{lab}/host1/agent.sock"}),
            "bridge": (f"{REFERENCE_DIR}/bridge", {
                "cniVersion": "1.0.0", "name": "ref", "type": "bridge", "bridge": "cbench0",
                "isGateway": True, "ipMasq": False, "mtu": MTU,
                "ipam": {"type": "host-local", "subnet": "100.111.0.0/24",
                         "dataDir": os.path.join(tmp, "host-local")}}),
        }
        results = {name: {"ADD": [], "DEL": []} for name in configs}
        for i in range(args.n):
            order = list(configs) if i % 2 == 0 else list(reversed(configs))
            for name in order:
                plugin, config = configs[name]
                ns = f"weft-{lab}-{name[0]}{i}"
                sh("ip", "netns", "add", ns)
                made.append(ns)
                container = f"cbench{os.getpid()}{name}{i}"
                path = f"/run/netns/{ns}"
                results[name]["ADD"].append(time_call(plugin, "ADD", host_ns, container, path, config))
                results[name]["DEL"].append(time_call(plugin, "DEL", host_ns, container, path, config))
                sh("ip", "netns", "del", ns)
                made.remove(ns)

        rows = []
        for command in ("ADD", "DEL"):
            w, b = results["weft"][command], results["bridge"][command]
            rows.append((command, statistics.median(w), percentile(w, 90),
                         statistics.median(b), percentile(b, 90),
                         statistics.median(w) / statistics.median(b)))
        header = "| call | weft median | weft p90 | bridge median | bridge p90 | weft/bridge |"
        lines = [header, "|---|---|---|---|---|---|"]
        for command, wm, wp, bm, bp, ratio in rows:
            lines.append(f"| {command} | {wm:.1f} ms | {wp:.1f} ms | {bm:.1f} ms | {bp:.1f} ms | {ratio:.2f} |")
        table = "\n".join(lines)
        print(table)
        if args.record:
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
                f.write(f"\n## CNI attach/detach latency, {stamp}\n\n"
                        f"`bench/cni.py -n {args.n} --record` (weft: {weft}, weft-cni: {weft_cni}), "
                        f"{args.n} containers per plugin, one host, MTU {MTU}.\n\n{table}\n")
    finally:
        for ns in made:
            sh("ip", "netns", "del", ns, check=False)
        sh(weft, "lab", "down", lab, check=False)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
