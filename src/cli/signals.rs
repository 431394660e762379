//! SIGINT, SIGTERM and SIGHUP stop a run cleanly: the first cancels it (its containers,
//! network and volumes are removed and what was graded so far is reported), a second one
//! is told to wait for the cleanup, a third exits at once (the next lab7 start removes
//! what is left). The exit code is then 128 + the signal's number, as a shell reports it.
//! On Windows, Ctrl-C and Ctrl-Break (the console's stops) count as SIGINT.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;

use lab7::{Error, Exit};
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
        for (mut stops, number) in stop_signals()? {
            let (token, caught, count) = (token.clone(), caught.clone(), count.clone());
            tokio::spawn(async move {
                while stops.recv().await {
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

/// One kind of stop the OS delivers, as a stream: `recv` is false when it can no longer come.
enum Stops {
    #[cfg(unix)]
    Unix(tokio::signal::unix::Signal),
    #[cfg(windows)]
    CtrlC(tokio::signal::windows::CtrlC),
    #[cfg(windows)]
    CtrlBreak(tokio::signal::windows::CtrlBreak),
}

impl Stops {
    async fn recv(&mut self) -> bool {
        match self {
            #[cfg(unix)]
            Stops::Unix(s) => s.recv().await.is_some(),
            #[cfg(windows)]
            Stops::CtrlC(s) => s.recv().await.is_some(),
            #[cfg(windows)]
            Stops::CtrlBreak(s) => s.recv().await.is_some(),
        }
    }
}

fn cannot_listen(number: i32) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::Lab(format!("cannot listen for signal {number}: {e}"))
}

/// SIGINT, SIGTERM and SIGHUP, each with its number.
#[cfg(unix)]
fn stop_signals() -> Result<Vec<(Stops, i32)>, Error> {
    use tokio::signal::unix::{signal, SignalKind};
    [(SignalKind::interrupt(), 2), (SignalKind::terminate(), 15), (SignalKind::hangup(), 1)]
        .into_iter()
        .map(|(kind, number)| Ok((Stops::Unix(signal(kind).map_err(cannot_listen(number))?), number)))
        .collect()
}

/// Ctrl-C and Ctrl-Break, both as SIGINT (what a Windows console sends a program it stops).
#[cfg(windows)]
fn stop_signals() -> Result<Vec<(Stops, i32)>, Error> {
    use tokio::signal::windows::{ctrl_break, ctrl_c};
    Ok(vec![
        (Stops::CtrlC(ctrl_c().map_err(cannot_listen(2))?), 2),
        (Stops::CtrlBreak(ctrl_break().map_err(cannot_listen(2))?), 2),
    ])
}
