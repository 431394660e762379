//! Just enough of a Dockerfile to know what the build log should show.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DockerfileSummary {
    pub stages: usize,
    /// RUN, COPY and ADD instructions: the steps a registry cache must cover.
    pub layer_steps: usize,
}

impl DockerfileSummary {
    pub fn parse(text: &str) -> DockerfileSummary {
        let mut s = DockerfileSummary::default();
        let mut continued = false;
        for line in text.lines() {
            let trimmed = line.trim();
            let is_instruction = !continued && !trimmed.is_empty() && !trimmed.starts_with('#');
            continued = trimmed.ends_with('\\');
            if !is_instruction {
                continue;
            }
            match trimmed.split_whitespace().next().unwrap_or("").to_ascii_uppercase().as_str() {
                "FROM" => s.stages += 1,
                "RUN" | "COPY" | "ADD" => s.layer_steps += 1,
                _ => {}
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_toy_apps_stages_and_layer_steps() {
        let text = include_str!("../../tests/fixtures/toy-app/Dockerfile_multi");
        assert_eq!(DockerfileSummary::parse(text), DockerfileSummary { stages: 2, layer_steps: 4 });
    }

    #[test]
    fn continuation_lines_are_one_instruction() {
        let text = "FROM busybox\nRUN echo a \\\n  && echo RUN b\n# RUN not this\ncopy x /x\n";
        assert_eq!(DockerfileSummary::parse(text), DockerfileSummary { stages: 1, layer_steps: 2 });
    }
}
