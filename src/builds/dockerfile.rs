//! Just enough of a Dockerfile to refuse a file that is none (no FROM) before any container
//! starts. What the build must show comes from BuildKit's log, not from counting lines here.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DockerfileSummary {
    pub stages: usize,
}

impl DockerfileSummary {
    pub fn parse(text: &str) -> DockerfileSummary {
        // Windows editors may start the file with a UTF-8 byte order mark; BuildKit reads past it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut s = DockerfileSummary::default();
        let mut continued = false;
        for line in text.lines() {
            let trimmed = line.trim();
            let is_instruction = !continued && !trimmed.is_empty() && !trimmed.starts_with('#');
            continued = trimmed.ends_with('\\');
            if !is_instruction {
                continue;
            }
            if trimmed.split_whitespace().next().is_some_and(|word| word.eq_ignore_ascii_case("FROM")) {
                s.stages += 1;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_toy_apps_stages() {
        let text = include_str!("../../tests/fixtures/toy-app/Dockerfile_multi");
        assert_eq!(DockerfileSummary::parse(text), DockerfileSummary { stages: 2 });
    }

    #[test]
    fn a_byte_order_mark_before_from_is_read_past() {
        assert_eq!(DockerfileSummary::parse("\u{feff}FROM busybox:1.36\nRUN true\n").stages, 1);
    }

    #[test]
    fn continuation_lines_are_one_instruction() {
        let text = "FROM busybox\nRUN echo a \\\n  && echo RUN b\n# RUN not this\ncopy x /x\n";
        assert_eq!(DockerfileSummary::parse(text), DockerfileSummary { stages: 1 });
    }
}
