//! SIGINT, SIGTERM and SIGHUP stop a run cleanly: the first cancels it (its containers,
//! network and volumes are removed and what was graded so far is reported), a second one
//! is told to wait for the cleanup, a third exits at once (the next lab7 start removes
//! what is left). The exit code is then 128 + the signal's number, as a shell reports it.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;

use lab7::{Error, Exit};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

pub struct Interrupt {
    token: CancellationToken,
    signal: Arc<AtomicI32>,
}

impl Interrupt {
    /// Starts listening; call from inside the runtime.
    pub fn watch() -> Result<Interrupt, Error> {
        let token = CancellationToken::new();
        let caught = Arc::new(AtomicI32::new(0));
        let count = Arc::new(AtomicUsize::new(0));
        for (kind, number) in [(SignalKind::interrupt(), 2), (SignalKind::terminate(), 15), (SignalKind::hangup(), 1)] {
            let mut stream = signal(kind).map_err(|e| Error::Lab(format!("cannot listen for signal {number}: {e}")))?;
            let (token, caught, count) = (token.clone(), caught.clone(), count.clone());
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    let _ = caught.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
                    match count.fetch_add(1, Ordering::SeqCst) {
                        0 => eprintln!("\nlab7: interrupted: stopping the run and removing its containers …"),
                        1 => eprintln!("lab7: still cleaning up; interrupt once more to exit at once (leftovers are removed by the next lab7 run)"),
                        _ => std::process::exit(128 + number),
                    }
                    token.cancel();
                }
            });
        }
        Ok(Interrupt { token, signal: caught })
    }

    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The first signal that arrived, as lab7's exit.
    pub fn exit(&self) -> Option<Exit> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            n => Some(Exit::Signal(n as u8)),
        }
    }
}
