//! `lab7`: the command line over the lab7 library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `lab7 inspect … | head` should end quietly, as other Unix tools do, not panic on EPIPE.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    let ended = match cli::without_runtime(&args) {
        Some(ended) => ended,
        None => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
            runtime.block_on(cli::run(args))
        }
    };
    match ended {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("lab7: error: {e}");
            e.exit().into()
        }
    }
}
