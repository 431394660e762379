//! Remote BuildKit nodes (`lab7 batch --node tcp://HOST:PORT`): BuildKit daemons lab7 does not
//! run — a buildx `remote` or `kubernetes` builder's, a native arm64 machine. lab7 then runs
//! `buildctl --addr …` in a small client container of its own, and publishes registry7 where
//! the node can reach it, behind a password made for the run: the node's `RUN` steps (and
//! anyone else on that network) can reach the port, but not read or write without it.

use std::net::IpAddr;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Serialize;

use crate::Error;

/// Where a remote node listens, and how to reach it over TLS (buildctl's own flags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteNode {
    /// `tcp://HOST:PORT`, as buildctl's `--addr` takes it.
    pub addr: String,
    pub tls: Option<NodeTls>,
    /// An address of this machine the node reaches registry7 at (`--registry-address`).
    pub registry_address: IpAddr,
}

/// buildctl's `--tlscacert`, `--tlscert`, `--tlskey` and `--tlsservername`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeTls {
    pub ca_cert: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub server_name: Option<String>,
}

/// Where the TLS files go in the client container.
const TLS_DIR: &str = "/lab7/tls";

impl RemoteNode {
    /// Reads `--node`: `tcp://HOST:PORT` (buildctl's unix and docker-container addresses name
    /// daemons on this machine, which lab7 runs itself).
    pub fn parse(addr: &str, tls: Option<NodeTls>, registry_address: IpAddr) -> Result<RemoteNode, Error> {
        let rest = addr.strip_prefix("tcp://").ok_or_else(|| {
            Error::input(
                format!("--node {addr}: not a tcp:// address"),
                "give a BuildKit daemon's address as tcp://HOST:PORT (buildx's remote driver uses the same)",
            )
        })?;
        let port_ok = rest.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(Error::input(
                format!("--node {addr}: no HOST:PORT after tcp://"),
                "write it as tcp://HOST:PORT",
            ));
        }
        if let Some(t) = &tls {
            for f in [Some(&t.ca_cert), t.cert.as_ref(), t.key.as_ref()].into_iter().flatten() {
                if !f.is_file() {
                    return Err(Error::input(
                        format!("{}: no such file (a --node-tls… flag)", f.display()),
                        "give the PEM files buildctl takes for this daemon",
                    ));
                }
            }
        }
        Ok(RemoteNode { addr: addr.to_string(), tls, registry_address })
    }

    /// The flags that send buildctl to this node, as they are inside the client container.
    pub fn buildctl_flags(&self) -> Vec<String> {
        let mut f = vec!["--addr".to_string(), self.addr.clone()];
        if let Some(t) = &self.tls {
            f.extend(["--tlscacert".into(), format!("{TLS_DIR}/ca.pem")]);
            if t.cert.is_some() {
                f.extend(["--tlscert".into(), format!("{TLS_DIR}/cert.pem")]);
            }
            if t.key.is_some() {
                f.extend(["--tlskey".into(), format!("{TLS_DIR}/key.pem")]);
            }
            if let Some(n) = &t.server_name {
                f.extend(["--tlsservername".into(), n.clone()]);
            }
        }
        f
    }

    /// The TLS files to copy into the client container: (path inside, contents).
    pub fn tls_files(&self) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let Some(t) = &self.tls else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for (name, file) in [("ca.pem", Some(&t.ca_cert)), ("cert.pem", t.cert.as_ref()), ("key.pem", t.key.as_ref())] {
            let Some(file) = file else { continue };
            let bytes = std::fs::read(file)
                .map_err(|e| Error::input(format!("{}: {e}", file.display()), "give a readable PEM file"))?;
            out.push((format!("{TLS_DIR}/{name}"), bytes));
        }
        Ok(out)
    }
}

/// The password registry7 asks of every request in a run on a remote node.
#[derive(Debug, Clone)]
pub struct RegistryLogin {
    pub user: String,
    pub password: String,
}

impl RegistryLogin {
    /// A fresh login: 32 random hex characters of password.
    pub fn new() -> RegistryLogin {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS has randomness");
        RegistryLogin { user: "lab7".into(), password: bytes.iter().map(|b| format!("{b:02x}")).collect() }
    }

    /// The registry's htpasswd file (distribution takes bcrypt only).
    pub fn htpasswd(&self) -> String {
        let hash = bcrypt::hash(&self.password, 5).expect("bcrypt hashes any password");
        format!("{}:{hash}\n", self.user)
    }

    /// `~/.docker/config.json` for buildctl in the client container: it hands the login to
    /// the node for this registry only.
    pub fn docker_config(&self, registry_host: &str) -> String {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.user, self.password));
        serde_json::json!({ "auths": { registry_host: { "auth": auth } } }).to_string()
    }
}

impl Default for RegistryLogin {
    fn default() -> Self {
        RegistryLogin::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_a_tcp_address_and_its_tls_files_must_exist() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let n = RemoteNode::parse("tcp://buildkit-1:1234", None, ip).unwrap();
        assert_eq!(n.buildctl_flags(), ["--addr", "tcp://buildkit-1:1234"]);
        assert!(RemoteNode::parse("unix:///run/buildkit/buildkitd.sock", None, ip)
            .unwrap_err()
            .to_string()
            .contains("tcp://"));
        assert!(RemoteNode::parse("tcp://buildkit-1", None, ip).is_err());
        let tls = NodeTls { ca_cert: "/nonexistent/ca.pem".into(), cert: None, key: None, server_name: None };
        assert!(RemoteNode::parse("tcp://b:1234", Some(tls), ip)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn tls_flags_are_buildctls() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let tls =
            NodeTls { ca_cert: ca.clone(), cert: Some(ca.clone()), key: Some(ca), server_name: Some("bk".into()) };
        let n = RemoteNode::parse("tcp://b:1234", Some(tls), "10.0.0.5".parse().unwrap()).unwrap();
        let flags = n.buildctl_flags().join(" ");
        assert_eq!(
            flags,
            "--addr tcp://b:1234 --tlscacert /lab7/tls/ca.pem --tlscert /lab7/tls/cert.pem --tlskey /lab7/tls/key.pem --tlsservername bk"
        );
        assert_eq!(n.tls_files().unwrap().len(), 3);
    }

    #[test]
    fn the_login_is_bcrypt_for_the_registry_and_basic_auth_for_buildctl() {
        let l = RegistryLogin::new();
        let line = l.htpasswd();
        let (user, hash) = line.trim().split_once(':').unwrap();
        assert_eq!(user, "lab7");
        assert!(bcrypt::verify(&l.password, hash).unwrap());
        let cfg: serde_json::Value = serde_json::from_str(&l.docker_config("10.0.0.5:40000")).unwrap();
        assert!(cfg["auths"]["10.0.0.5:40000"]["auth"].is_string());
    }
}
