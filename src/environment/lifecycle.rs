//! Nothing of a run outlives it. Every container and the network of a run carry its
//! random id and its owner (`host/pid`, or `container:<id>` when lab7 runs in a container);
//! while the run lives it holds an exclusive lock on `<tmp>/lab7-runs/<id>.lock`. A run
//! removes its own objects at its end, on Ctrl-C and when dropped; a run killed with SIGKILL
//! leaves them, and the next lab7 start (or `lab7 doctor --clean`) removes exactly those whose
//! owner is gone: the lock is free (the kernel released it with the dead process), or, without
//! a lock file, the pid is dead; for a container owner, the engine no longer runs that
//! container. A live run's objects, and those of runs on other hosts sharing the daemon, stay.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;

use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;

use crate::Error;

pub const RUN_LABEL: &str = "org.lab7.run";
pub const OWNER_LABEL: &str = "org.lab7.owner";

/// A run's id, 12 random hex digits.
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("the OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who started a run, as its objects' owner label says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A lab7 process on a host: `host/pid`.
    Process { host: String, pid: String },
    /// lab7 in a container of the same engine: `container:<id>`. A `--rm` container's hostname
    /// and pid 1 say nothing once it is gone; the engine knows whether it still runs.
    Container(String),
    /// Objects of lab7 versions before owners were recorded.
    Unknown,
}

impl Owner {
    /// This process as an owner.
    pub fn me() -> Owner {
        match super::placement::own_container() {
            Some(c) => Owner::Container(c.id.clone()),
            None => Owner::Process { host: hostname(), pid: std::process::id().to_string() },
        }
    }

    pub fn parse(label: Option<&str>) -> Owner {
        let Some(label) = label else { return Owner::Unknown };
        if let Some(id) = label.strip_prefix("container:") {
            return Owner::Container(id.to_string());
        }
        match label.rsplit_once('/') {
            Some((host, pid)) => Owner::Process { host: host.into(), pid: pid.into() },
            None => Owner::Unknown,
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Process { host, pid } => write!(f, "{host}/{pid}"),
            Owner::Container(id) => write!(f, "container:{id}"),
            Owner::Unknown => Ok(()),
        }
    }
}

/// This process's owner label.
pub fn owner() -> String {
    Owner::me().to_string()
}

/// The labels of a run's objects: its id and its owner.
pub fn labels(run_id: &str, owner: &Owner) -> HashMap<String, String> {
    HashMap::from([(RUN_LABEL.to_string(), run_id.to_string()), (OWNER_LABEL.to_string(), owner.to_string())])
}

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("lab7-runs")
}

/// The run's claim on its id: held while the run lives, released by the kernel when it dies.
#[derive(Debug)]
pub struct RunLease {
    pub run_id: String,
    path: PathBuf,
    _lock: File,
}

impl RunLease {
    pub fn take() -> Result<RunLease, Error> {
        let dir = lock_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::docker(format!("{}: cannot create the run lock folder: {e}", dir.display()), None))?;
        let run_id = new_run_id();
        let path = dir.join(format!("{run_id}.lock"));
        let lock = File::create(&path)
            .map_err(|e| Error::docker(format!("{}: cannot create the run lock: {e}", path.display()), None))?;
        if !try_lock(&lock) {
            return Err(Error::docker(format!("{}: the run lock is held by another process", path.display()), None));
        }
        Ok(RunLease { run_id, path, _lock: lock })
    }
}

impl Drop for RunLease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An exclusive lock the OS releases when the process dies (flock on unix, LockFileEx on Windows).
fn try_lock(file: &File) -> bool {
    file.try_lock().is_ok()
}

#[cfg(unix)]
fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    (unsafe { libc::kill(pid, 0) } == 0) || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Without unix signals a pid is taken as alive: a run is then swept only when its lock is free.
#[cfg(not(unix))]
fn pid_alive(_pid: i32) -> bool {
    true
}

/// Whether a run's owner is gone, so that its objects may be removed. `container_running`
/// answers for a container owner (the engine's word).
fn owner_gone(run_id: &str, owner: &Owner, any_running: bool, container_running: impl Fn(&str) -> bool) -> bool {
    match owner {
        // Objects of lab7 versions before owners were recorded: only stopped ones.
        Owner::Unknown => !any_running,
        Owner::Container(id) => !container_running(id),
        Owner::Process { host, .. } if *host != hostname() => false, // another machine's run, sharing this daemon
        Owner::Process { pid, .. } => {
            let path = lock_dir().join(format!("{run_id}.lock"));
            match File::open(&path) {
                Ok(f) => try_lock(&f),
                Err(_) => pid.parse().is_ok_and(|p| !pid_alive(p)),
            }
        }
    }
}

/// Which of these containers the engine runs now (a container owner of a run is alive).
async fn running_containers(docker: &Docker, ids: impl Iterator<Item = &str>) -> std::collections::HashSet<String> {
    let mut running = std::collections::HashSet::new();
    for id in ids {
        let state = docker.inspect_container(id, None).await.ok().and_then(|c| c.state).and_then(|s| s.running);
        if state == Some(true) {
            running.insert(id.to_string());
        }
    }
    running
}

/// What a sweep did: the runs it removed, and those it could not (with why): another lab7
/// process may be removing the same dead run at that moment; the next sweep tries again.
#[derive(Debug, Default)]
pub struct Swept {
    pub removed: Vec<String>,
    pub failed: Vec<(String, Error)>,
}

/// One sweep at a time in a process: the jobs of a batch start their environments at once,
/// and two sweeps removing one dead run collide ("active endpoints" on its network).
static SWEEPING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Removes the containers (with their anonymous volumes) and networks of every run whose
/// owner is gone. A dead run that cannot be removed now is not this run's failure.
pub async fn sweep(docker: &Docker) -> Result<Swept, Error> {
    let _one_at_a_time = SWEEPING.lock().await;
    let filter = HashMap::from([("label".to_string(), vec![RUN_LABEL.to_string()])]);
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filter).build()))
        .await
        .map_err(|e| super::docker::error("list lab7 containers", e))?;
    let networks = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filter).build()))
        .await
        .map_err(|e| super::docker::error("list lab7 networks", e))?;
    // run id → (owner, any container running)
    let mut runs: BTreeMap<String, (Owner, bool)> = BTreeMap::new();
    for c in &containers {
        let labels = c.labels.clone().unwrap_or_default();
        let Some(id) = labels.get(RUN_LABEL) else { continue };
        let running = c.state.as_ref().is_some_and(|s| s.to_string() == "running");
        let entry =
            runs.entry(id.clone()).or_insert((Owner::parse(labels.get(OWNER_LABEL).map(String::as_str)), false));
        entry.1 |= running;
    }
    for n in &networks {
        let labels = n.labels.clone().unwrap_or_default();
        if let Some(id) = labels.get(RUN_LABEL) {
            runs.entry(id.clone()).or_insert((Owner::parse(labels.get(OWNER_LABEL).map(String::as_str)), false));
        }
    }
    let owners = runs.values().filter_map(|(o, _)| match o {
        Owner::Container(id) => Some(id.as_str()),
        _ => None,
    });
    let live = running_containers(docker, owners).await;
    let mut swept = Swept::default();
    for (id, (owner, running)) in runs {
        if owner_gone(&id, &owner, running, |c| live.contains(c)) {
            match remove_run(docker, &id).await {
                Ok(()) => {
                    // The dead owner's lock file, if it had one: nothing holds it any more.
                    let _ = std::fs::remove_file(lock_dir().join(format!("{id}.lock")));
                    swept.removed.push(id);
                }
                Err(e) => swept.failed.push((id, e)),
            }
        }
    }
    Ok(swept)
}

/// Removes every container (force, with its anonymous volumes) and network of one run.
pub async fn remove_run(docker: &Docker, run_id: &str) -> Result<(), Error> {
    let filter = HashMap::from([("label".to_string(), vec![format!("{RUN_LABEL}={run_id}")])]);
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filter).build()))
        .await
        .map_err(|e| super::docker::error("list the run's containers", e))?;
    let mut removals = tokio::task::JoinSet::new();
    for id in containers.into_iter().filter_map(|c| c.id) {
        let docker = docker.clone();
        removals.spawn(async move {
            let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
            match docker.remove_container(&id, Some(options)).await {
                // Another removal of it is under way (another lab7, or one the engine goes on
                // with after its client died): until it ends, the container still holds its
                // endpoint on the network removed next.
                Err(e) if e.to_string().contains("is already in progress") => {
                    gone(&docker, &id).await;
                    Ok(())
                }
                other => other,
            }
        });
    }
    while let Some(done) = removals.join_next().await {
        match done {
            Ok(Ok(())) => {}
            // Already gone (removed by its own handle a moment ago): that is the goal.
            Ok(Err(e)) if e.to_string().contains("No such container") => {}
            Ok(Err(e)) => return Err(super::docker::error("remove a lab7 container", e)),
            Err(e) => return Err(Error::docker(format!("remove a lab7 container: {e}"), None)),
        }
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filter).build()))
        .await
        .map_err(|e| super::docker::error("list the run's networks", e))?;
    for n in networks.into_iter().filter_map(|n| n.id) {
        leave_network(docker, &n).await;
        match docker.remove_network(&n).await {
            Ok(()) => {}
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => return Err(super::docker::error("remove the run's network", e)),
        }
    }
    Ok(())
}

/// Waits (at most a minute) until the engine no longer knows the container.
async fn gone(docker: &Docker, id: &str) {
    for _ in 0..600 {
        if docker.inspect_container(id, None).await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Disconnects what is still attached to a run's network once its own containers are gone:
/// lab7 itself when it runs in a container (it joined the network to reach registry7).
async fn leave_network(docker: &Docker, network: &str) {
    use testcontainers::bollard::models::NetworkDisconnectRequest;
    let Ok(info) = docker.inspect_network(network, None).await else { return };
    for container in info.containers.unwrap_or_default().into_keys() {
        let request = NetworkDisconnectRequest { container, force: Some(true) };
        let _ = docker.disconnect_network(network, request).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_random_hex() {
        let (a, b) = (new_run_id(), new_run_id());
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_live_lease_is_not_swept_and_a_released_one_is() {
        let lease = RunLease::take().unwrap();
        let me = Owner::parse(Some(&owner()));
        let engine = |_: &str| -> bool { unreachable!("no container owner here") };
        assert!(!owner_gone(&lease.run_id, &me, true, engine));
        let id = lease.run_id.clone();
        drop(lease);
        // Lock file gone with the lease: the pid decides, and this process is alive.
        assert!(!owner_gone(&id, &me, true, engine));
        let dead = Owner::parse(Some(&format!("{}/{}", hostname(), i32::MAX)));
        assert!(owner_gone(&id, &dead, true, engine));
        assert!(!owner_gone(&id, &Owner::parse(Some("another-host/1")), false, engine));
    }

    #[test]
    fn a_container_owner_is_gone_when_the_engine_no_longer_runs_it() {
        let owner = Owner::parse(Some("container:4f1c2a7e9b3d"));
        assert_eq!(owner, Owner::Container("4f1c2a7e9b3d".into()));
        assert_eq!(owner.to_string(), "container:4f1c2a7e9b3d");
        // Another hostname, no lock file here: only the engine's answer counts.
        assert!(!owner_gone("0123456789ab", &owner, true, |id| id == "4f1c2a7e9b3d"));
        assert!(owner_gone("0123456789ab", &owner, true, |_| false));
        assert_eq!(Owner::parse(None), Owner::Unknown);
    }
}
