//! The live view of a run: a spinner per stage on a terminal, plain lines elsewhere.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use lab7::lab::{Progress, Stage};

pub struct View {
    tty: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl View {
    pub fn new() -> View {
        View { tty: std::io::stderr().is_terminal(), bar: Mutex::new(None) }
    }
}

impl Progress for View {
    fn stage_started(&self, stage: Stage) {
        if !self.tty {
            eprintln!("[lab7] {} …", stage.title());
            return;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}").expect("template"));
        bar.set_prefix(stage.title());
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.bar.lock().unwrap() = Some(bar);
    }

    fn stage_finished(&self, stage: Stage, seconds: f64) {
        match self.bar.lock().unwrap().take() {
            Some(bar) => bar.finish_with_message(format!("done in {seconds:.1}s")),
            None => eprintln!("[lab7] {} done in {seconds:.1}s", stage.title()),
        }
    }

    /// Shows the step BuildKit is on: the `#N [platform stage i/n] …` lines.
    fn build_line(&self, _stage: Stage, line: &str) {
        let Some(rest) = line.strip_prefix('#') else { return };
        let Some((_, body)) = rest.split_once(' ') else { return };
        if !body.starts_with('[') {
            return;
        }
        match self.bar.lock().unwrap().as_ref() {
            Some(bar) => bar.set_message(body.to_string()),
            None => eprintln!("[lab7]   {body}"),
        }
    }
}
