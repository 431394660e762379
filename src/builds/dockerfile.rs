//! Just enough of a Dockerfile to refuse a file that is none (no FROM) before any container
//! starts. What the build must show comes from BuildKit's log, not from this file.
//!
//! parse-dockerfile reads it as BuildKit's frontend does (parser directives, `# escape=`,
//! line continuations, heredocs: a heredoc line that starts with `FROM` is text). A file it
//! cannot parse is not refused here: BuildKit is the judge, and its error (with the line)
//! is what the student is shown.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DockerfileSummary {
    /// `None` when the parser could not read the file (BuildKit will say why, if it agrees).
    pub stages: Option<usize>,
}

impl DockerfileSummary {
    pub fn parse(text: &str) -> DockerfileSummary {
        // Windows editors may start the file with a UTF-8 byte order mark; BuildKit reads past it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let stages = match parse_dockerfile::parse(text) {
            Ok(d) => Some(d.stages().len()),
            // Unparsed, it is still no Dockerfile when no line even starts with FROM.
            Err(_) if !text.lines().any(starts_with_from) => Some(0),
            Err(_) => None,
        };
        DockerfileSummary { stages }
    }

    /// The parser read it and found no FROM: not a Dockerfile.
    pub fn has_no_stage(&self) -> bool {
        self.stages == Some(0)
    }
}

fn starts_with_from(line: &str) -> bool {
    line.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case("FROM"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_toy_apps_stages() {
        let text = include_str!("../../tests/fixtures/toy-app/Dockerfile_multi");
        assert_eq!(DockerfileSummary::parse(text).stages, Some(2));
    }

    #[test]
    fn a_byte_order_mark_before_from_is_read_past() {
        assert_eq!(DockerfileSummary::parse("\u{feff}FROM busybox:1.36\nRUN true\n").stages, Some(1));
    }

    #[test]
    fn continuations_heredocs_and_escape_directives_are_read_as_buildkit_reads_them() {
        let text = "FROM busybox\nRUN echo a \\\n  && echo RUN b\n# RUN not this\ncopy x /x\n";
        assert_eq!(DockerfileSummary::parse(text).stages, Some(1));
        let heredoc = "FROM busybox\nCOPY <<EOF /start\nFROM text-not-a-stage\nRun this is text too\nEOF\n";
        assert_eq!(DockerfileSummary::parse(heredoc).stages, Some(1));
        let escape = "# escape=`\nFROM busybox AS a\nRUN echo a `\n  FROM b\nFROM busybox\n";
        assert_eq!(DockerfileSummary::parse(escape).stages, Some(2));
        assert!(DockerfileSummary::parse("hello, not a Dockerfile\n").has_no_stage());
    }
}
