//! What a student's `RUN` may reach and use. The node runs BuildKit's bridge network mode
//! (the official image ships its CNI plugins), so each `RUN` has a network namespace of its
//! own behind the node's `buildkit0` bridge, while buildkitd itself keeps the node's
//! network to push to registry7. In the node's namespace, the raw table drops what comes in
//! from that bridge towards private, loopback, link-local and the grading host's own
//! addresses: registry7, other runs and the host's services are out of reach, while public
//! addresses stay reachable for package installs unless egress is off. The raw table is
//! used because the CNI plugins manage the filter and nat tables and never touch it.
//!
//! The node's resources are capped: memory, processes, CPUs, and its build storage
//! (`/var/lib/buildkit`) is a tmpfs of bounded size, so a disk-filling `RUN` fails with
//! "no space left on device" instead of filling the host's disk.

use std::net::IpAddr;

use serde::Serialize;

/// The bridge BuildKit puts `RUN` steps on, set explicitly so the rules name it.
pub const RUN_BRIDGE: &str = "buildkit0";
pub const RUN_SUBNET: &str = "10.10.0.0/16";
/// Where the rules are copied into the node before it starts.
pub const RULES_V4: &str = "/etc/buildkit/lab7-isolation.rules";
pub const RULES_V6: &str = "/etc/buildkit/lab7-isolation6.rules";

/// Private, shared, loopback, link-local, documentation, benchmarking, multicast and reserved
/// IPv4 ranges (RFC 6890): none is a public service a build may need.
const BLOCKED_V4: [&str; 13] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/3",
];

/// Whether lab7's firewall keeps a build from `ip` whatever the egress: a private, shared,
/// loopback, link-local, multicast or reserved address (IPv4 as `BLOCKED_V4`; IPv6 anything
/// but global unicast), or one of this machine's own addresses (the node's rules hold them).
pub fn is_fenced(ip: IpAddr) -> bool {
    is_fenced_range(ip) || super::placement::host_addresses().contains(&ip)
}

fn is_fenced_range(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => BLOCKED_V4.iter().any(|range| {
            let (net, bits) = range.split_once('/').expect("ranges are CIDR");
            let (net, bits): (std::net::Ipv4Addr, u32) = (net.parse().expect("CIDR"), bits.parse().expect("CIDR"));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(v4) & mask == u32::from(net) & mask
        }),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_fenced_range(IpAddr::V4(v4)),
            None => v6.segments()[0] & 0xe000 != 0x2000,
        },
    }
}

/// Whether a `RUN` may open connections to public addresses (package installs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Egress {
    /// Public addresses only: never the host, registry7, other runs or private networks.
    #[default]
    Public,
    /// No network at all for `RUN` steps.
    None,
}

/// The node's resource caps (documented in the README; `check` and `batch` take them as flags).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NodeLimits {
    pub memory_bytes: u64,
    /// Size of the tmpfs holding BuildKit's state: images, layers, the cache. It counts
    /// towards `memory_bytes` as it fills, so memory must be the larger.
    pub disk_bytes: u64,
    pub pids: i64,
    pub cpus: f64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits { memory_bytes: 6 << 30, disk_bytes: 4 << 30, pids: 2048, cpus: 2.0 }
    }
}

impl NodeLimits {
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_bytes < (256 << 20) || self.disk_bytes < (64 << 20) {
            return Err("--node-memory must be at least 256m and --node-disk at least 64m".into());
        }
        if self.disk_bytes >= self.memory_bytes {
            return Err(format!(
                "--node-disk ({}) must be smaller than --node-memory ({}): the node's storage is a tmpfs counted in its memory",
                human_bytes(self.disk_bytes),
                human_bytes(self.memory_bytes)
            ));
        }
        if self.pids < 64 || !(self.cpus.is_finite() && self.cpus > 0.0) {
            return Err("--node-pids must be at least 64 and --node-cpus a positive number".into());
        }
        Ok(())
    }

    /// The tmpfs options of `/var/lib/buildkit` (exec: RUN steps execute from it).
    pub fn tmpfs_options(&self) -> String {
        format!("rw,exec,dev,suid,size={}k", self.disk_bytes >> 10)
    }
}

/// A node limit a student's build ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "limit")]
pub enum LimitHit {
    /// Forks refused at `--node-pids`; how many, when the node's cgroup counted them.
    Processes { refused: Option<u64> },
    /// Processes killed at `--node-memory`.
    Memory { killed: u64 },
    /// `--node-disk` full: "no space left on device".
    BuildStorage,
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Processes { refused: Some(n) } => write!(f, "process limit ({n} forks refused)"),
            LimitHit::Processes { refused: None } => write!(f, "process limit (--node-pids: a fork was refused)"),
            LimitHit::Memory { killed } => write!(f, "memory limit ({killed} processes killed out of memory)"),
            LimitHit::BuildStorage => write!(f, "build storage limit (--node-disk: no space left on device)"),
        }
    }
}

/// `6g`, `512m`, `1024k` or plain bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 10),
        Some((i, 'm')) => (&t[..i], 20),
        Some((i, 'g')) => (&t[..i], 30),
        _ => (t, 0),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("`{s}` is not a size: give a number with k, m or g, e.g. 4g"))
}

pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}g", n >> 30),
        n if n >= 1 << 20 => format!("{}m", n >> 20),
        n => format!("{n}b"),
    }
}

/// The run's own network, as Docker made it: registry7 and the mirror are on it, and its
/// gateway is the grading host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNetwork {
    /// `172.22.0.0/16`
    pub subnet: String,
    pub gateway: IpAddr,
}

/// `iptables-restore --noflush` input for the node: what `RUN` steps may not reach (raw
/// table, from the bridge), and what the node's own processes may not reach — buildkitd
/// fetches `ADD <url>`, `ADD <git>`, `FROM <registry>/…` and `# syntax=` frontends itself,
/// from the node's network (filter table, OUTPUT). The node may reach its own loopback
/// (Docker's DNS answers there) and the run's network (registry7, the mirror) but never its
/// gateway, the grading host; with public egress, public addresses too. Refused with REJECT,
/// so that a fetch fails at once ("connection refused") instead of hanging until a timeout.
/// `host` are the grading host's own addresses (its public ones are not in the ranges).
pub fn rules_v4(egress: Egress, host: &[IpAddr], network: &RunNetwork) -> String {
    let blocked: Vec<String> = BLOCKED_V4
        .iter()
        .map(|s| s.to_string())
        .chain(host.iter().filter(|a| a.is_ipv4()).map(|a| format!("{a}/32")))
        .collect();
    let mut r = format!("*raw\n:LAB7-RUN - [0:0]\n-I PREROUTING 1 -i {RUN_BRIDGE} -j LAB7-RUN\n");
    match egress {
        Egress::None => r += "-A LAB7-RUN -j DROP\n",
        Egress::Public => blocked.iter().for_each(|range| r += &format!("-A LAB7-RUN -d {range} -j DROP\n")),
    }
    r += "COMMIT\n*filter\n:LAB7-NODE - [0:0]\n-I OUTPUT 1 -j LAB7-NODE\n-A LAB7-NODE -o lo -j RETURN\n";
    r += &format!("-A LAB7-NODE -d {}/32 -j REJECT\n", network.gateway);
    r += &format!("-A LAB7-NODE -d {} -j RETURN\n", network.subnet);
    match egress {
        Egress::None => r += "-A LAB7-NODE -j REJECT\n",
        Egress::Public => blocked.iter().for_each(|range| r += &format!("-A LAB7-NODE -d {range} -j REJECT\n")),
    }
    r + "COMMIT\n"
}

/// The bridge has no IPv6 subnet; its link-local addresses must not reach anything either.
/// The node's own IPv6: loopback, and with public egress global unicast only (no unique
/// local fd00::/8, link-local fe80::/10 or multicast).
pub fn rules_v6(egress: Egress) -> String {
    let mut r = format!("*raw\n-I PREROUTING 1 -i {RUN_BRIDGE} -j DROP\nCOMMIT\n");
    r += "*filter\n:LAB7-NODE - [0:0]\n-I OUTPUT 1 -j LAB7-NODE\n-A LAB7-NODE -o lo -j RETURN\n";
    if egress == Egress::Public {
        r += "-A LAB7-NODE -d 2000::/3 -j RETURN\n";
    }
    r + "-A LAB7-NODE -j REJECT\nCOMMIT\n"
}

/// The node's `buildkitd.toml`: registry7 (and the mirror) over plain HTTP; offline,
/// docker.io through the mirror; `RUN` steps on their own bridge.
pub fn buildkitd_toml(registry_host: &str, mirror_host: Option<&str>) -> String {
    let mut t = format!(
        "[worker.oci]\n  networkMode = \"bridge\"\n  bridgeName = \"{RUN_BRIDGE}\"\n  bridgeSubnet = \"{RUN_SUBNET}\"\n\n"
    );
    t += &format!("[registry.\"{registry_host}\"]\n  http = true\n  insecure = true\n");
    if let Some(m) = mirror_host {
        t += &format!("[registry.\"{m}\"]\n  http = true\n  insecure = true\n");
        t += &format!("[registry.\"docker.io\"]\n  mirrors = [\"{m}\"]\n");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_addresses_are_the_non_public_ones() {
        for fenced in [
            "172.17.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "127.0.0.1",
            "192.168.1.1",
            "::1",
            "fe80::1",
            "fd00::5",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_fenced(fenced.parse().unwrap()), "{fenced}");
        }
        for public in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "151.101.0.1"] {
            assert!(!is_fenced(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn sizes_parse_as_docker_writes_them() {
        assert_eq!(parse_bytes("4g"), Ok(4 << 30));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert!(parse_bytes("lots").unwrap_err().contains("lots"));
        assert_eq!(human_bytes(6 << 30), "6g");
    }

    #[test]
    fn the_default_limits_hold_together_and_bad_ones_say_why() {
        assert_eq!(NodeLimits::default().validate(), Ok(()));
        let bad = NodeLimits { disk_bytes: 8 << 30, ..NodeLimits::default() };
        assert!(bad.validate().unwrap_err().contains("--node-disk"));
    }

    #[test]
    fn rules_drop_private_ranges_and_the_hosts_addresses_or_everything() {
        let host: IpAddr = "203.0.113.7".parse().unwrap();
        let net = RunNetwork { subnet: "172.22.0.0/16".into(), gateway: "172.22.0.1".parse().unwrap() };
        let public = rules_v4(Egress::Public, &[host], &net);
        for needle in ["-i buildkit0 -j LAB7-RUN", "-d 172.16.0.0/12 -j DROP", "-d 203.0.113.7/32 -j DROP", "COMMIT"] {
            assert!(public.contains(needle), "{needle} not in {public}");
        }
        assert!(rules_v4(Egress::None, &[host], &net).contains("-A LAB7-RUN -j DROP\n"));
    }

    /// buildkitd's own fetches: the run's network but not its gateway (the host), then the
    /// same ranges as RUN steps, refused at once.
    #[test]
    fn the_nodes_own_fetches_reach_the_runs_network_and_not_the_host() {
        let host: IpAddr = "203.0.113.7".parse().unwrap();
        let net = RunNetwork { subnet: "172.22.0.0/16".into(), gateway: "172.22.0.1".parse().unwrap() };
        let public = rules_v4(Egress::Public, &[host], &net);
        let node: Vec<&str> = public.lines().filter(|l| l.starts_with("-A LAB7-NODE")).collect();
        assert_eq!(
            node[..3],
            [
                "-A LAB7-NODE -o lo -j RETURN",
                "-A LAB7-NODE -d 172.22.0.1/32 -j REJECT",
                "-A LAB7-NODE -d 172.22.0.0/16 -j RETURN"
            ]
        );
        assert!(
            node.contains(&"-A LAB7-NODE -d 169.254.0.0/16 -j REJECT")
                && node.contains(&"-A LAB7-NODE -d 203.0.113.7/32 -j REJECT")
        );
        let none = rules_v4(Egress::None, &[host], &net);
        assert!(none.lines().rfind(|l| l.starts_with("-A LAB7-NODE")) == Some("-A LAB7-NODE -j REJECT"), "{none}");
        assert!(rules_v6(Egress::Public).contains("-A LAB7-NODE -d 2000::/3 -j RETURN\n-A LAB7-NODE -j REJECT"));
        assert!(!rules_v6(Egress::None).contains("2000::/3"));
    }
}
