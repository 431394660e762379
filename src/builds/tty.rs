//! buildx's tty display (`=> CACHED [linux/arm64 build1 2/5] RUN …`) as text, one frame or many.
//!
//! A student copies the display from the terminal (one frame: the last), or a recorder keeps
//! every redraw (`script`, an IDE console, a CI log) and its escape codes are stripped later:
//! then the text is a stream of frames, each starting `[+] Building …`, each cut to the
//! terminal's width and height. A vertex is the same vertex in every frame it appears in; its
//! state is the one its latest appearance shows (an early frame shows a step still running, a
//! later one its `CACHED` or `ERROR`), and a line under it that any frame showed happened (a
//! cache export's `writing cache manifest …` may be in an early frame only, the final frame
//! showing what fit on the screen).

use std::sync::LazyLock;

use regex::Regex;

use super::vertex::{Vertex, VertexState};

static TTY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*=> (=> )?(CACHED |ERROR )?(.*?)(\s+\d+\.\d+s)?(\s+done)?$").unwrap());
/// A frame's first line: `[+] Building 12.3s (20/20) FINISHED     docker-container:lab7`.
static FRAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*\[\+\] Building \d+\.\d+s").unwrap());

/// Names shorter than this are matched only whole: a longer name cut at a slightly different
/// width from one frame to the next (the timer column grows from `9.9s` to `10.0s`) is still
/// the same vertex when one cut is a prefix of the other.
const CUT_NAME_MIN: usize = 24;

/// The vertices of the display, merged over all its frames, and the `error:` lines outside them.
pub(super) fn parse(text: &str, is_error_line: fn(&str) -> bool) -> (Vec<Vertex>, Vec<String>) {
    let mut vertices: Vec<Vertex> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for frame in frames(text) {
        let (shown, said) = parse_frame(&frame, is_error_line);
        merge(&mut vertices, shown);
        for e in said {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    (vertices, errors)
}

/// The text cut before each `[+] Building` line; text without one is a single frame.
fn frames(text: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        if FRAME.is_match(line) && !out.last().is_some_and(Vec::is_empty) {
            out.push(Vec::new());
        }
        out.last_mut().expect("one frame at least").push(line);
    }
    out
}

/// One frame's vertices as it shows them: `=> name`, `=> CACHED name`, `=> ERROR name`, and
/// the `=> => line`s under each.
fn parse_frame(lines: &[&str], is_error_line: fn(&str) -> bool) -> (Vec<Vertex>, Vec<String>) {
    let mut vertices: Vec<Vertex> = Vec::new();
    let mut errors = Vec::new();
    for line in lines {
        let Some(c) = TTY.captures(line) else {
            if is_error_line(line) {
                errors.push(line.trim().to_string());
            }
            continue;
        };
        let body = c[3].trim().to_string();
        if c.get(1).is_some() {
            // `=> => sub-line` belongs to the vertex above it; at the top of a frame cut to the
            // terminal's height, to one the cut left out (an unnamed vertex `merge` places).
            if vertices.is_empty() {
                vertices.push(Vertex::named(""));
            }
            if let Some(v) = vertices.last_mut() {
                if let Some(msg) = body.strip_prefix("ERROR: ") {
                    v.state = VertexState::Error(msg.to_string());
                }
                v.lines.push(body);
            }
            continue;
        }
        let mut v = Vertex::named(&body);
        v.state = match c.get(2).map(|m| m.as_str().trim()) {
            Some("CACHED") => VertexState::Cached,
            Some(_) => VertexState::Error(String::new()),
            None => VertexState::Done,
        };
        vertices.push(v);
    }
    (vertices, errors)
}

/// Folds one frame into the vertices of the frames before it. The n-th vertex of a name in
/// the frame is the n-th of that name so far (two vertices may share a name); one not seen
/// before is added after the others.
fn merge(into: &mut Vec<Vertex>, mut frame: Vec<Vertex>) {
    let cut_off = frame.first().filter(|v| v.name.is_empty()).is_some().then(|| frame.remove(0));
    let mut taken: Vec<usize> = Vec::new();
    if let Some(lines) = cut_off.map(|v| v.lines) {
        add_cut_off_lines(into, frame.first(), lines);
    }
    for v in frame {
        let found = (0..into.len()).find(|&i| !taken.contains(&i) && same_vertex(&into[i].name, &v.name));
        let Some(i) = found else {
            taken.push(into.len());
            into.push(v);
            continue;
        };
        taken.push(i);
        let known = &mut into[i];
        // The latest frame says how the vertex stands; the longest cut names it best.
        known.state = v.state;
        if v.name.len() > known.name.len() {
            known.step = v.step;
            known.name = v.name;
        }
        for l in v.lines {
            if !known.lines.contains(&l) {
                known.lines.push(l);
            }
        }
    }
}

/// Lines at the top of a frame whose vertex the terminal's height cut off belong to the vertex
/// shown just before the frame's first one.
fn add_cut_off_lines(into: &mut [Vertex], first: Option<&Vertex>, lines: Vec<String>) {
    // A first vertex not seen before goes after all the others: the last one is before it.
    let at = match first.and_then(|f| into.iter().position(|v| same_vertex(&v.name, &f.name))) {
        Some(i) => i.checked_sub(1),
        None => into.len().checked_sub(1),
    };
    let Some(owner) = at.map(|i| &mut into[i]) else { return };
    for l in lines {
        if !owner.lines.contains(&l) {
            owner.lines.push(l);
        }
    }
}

fn same_vertex(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short == long || (short.len() >= CUT_NAME_MIN && long.starts_with(short))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_errors(_: &str) -> bool {
        false
    }

    #[test]
    fn the_latest_frame_gives_the_state_and_every_frame_its_lines() {
        let stream = "\
[+] Building 0.2s (3/9)
 => importing cache manifest from registry7:5000/cachedata1          0.1s
 => [linux/amd64 build1 2/5] RUN mkdir -p /var/app                  0.1s
 => exporting cache to registry                                     0.0s
 => => writing cache image manifest sha256:0123456789abcdef 0.0s done
[+] Building 1.5s (9/9) FINISHED
 => ERROR importing cache manifest from registry7:5000/cachedata1    0.1s
 => CACHED [linux/amd64 build1 2/5] RUN mkdir -p /var/app           0.0s
 => exporting cache to registry                                     0.4s
 => => preparing build cache for export                             0.4s
";
        let (v, _) = parse(stream, no_errors);
        assert_eq!(v.len(), 3, "{v:#?}");
        assert_eq!(v[0].state, VertexState::Error(String::new()));
        assert_eq!(v[1].state, VertexState::Cached);
        assert_eq!(v[2].lines.len(), 2, "{:?}", v[2].lines);
    }

    #[test]
    fn a_name_cut_a_character_shorter_in_another_frame_is_the_same_vertex() {
        let stream = "\
[+] Building 9.9s (1/2)
 => [linux/arm64 build1 1/5] FROM docker.io/library/busybox:1.36@sha256:19966f 9.9s
[+] Building 10.0s (2/2) FINISHED
 => [linux/arm64 build1 1/5] FROM docker.io/library/busybox:1.36@sha256:19966 10.0s
";
        let (v, _) = parse(stream, no_errors);
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(v[0].name.ends_with("19966f"));
    }

    #[test]
    fn lines_at_the_top_of_a_frame_cut_to_the_screen_belong_to_the_vertex_before_it() {
        let stream = "\
[+] Building 0.2s (2/3)
 => exporting to image                                              0.1s
 => => exporting layers                                             0.0s
[+] Building 0.3s (3/3)
 => => pushing manifest for registry7:5000/lab:cachetest@sha256:55ee 0.0s
 => exporting cache to registry                                     0.1s
 => => writing cache image manifest sha256:32b7f2f1f2d2             0.0s
";
        let (v, _) = parse(stream, no_errors);
        assert_eq!(v.len(), 2, "{v:#?}");
        assert_eq!(v[0].lines, ["exporting layers", "pushing manifest for registry7:5000/lab:cachetest@sha256:55ee"]);
        assert_eq!(v[1].lines.len(), 1);
    }

    #[test]
    fn two_vertices_of_one_name_in_one_frame_stay_two() {
        let frame = " => [internal] load metadata 0.1s\n => [internal] load metadata 0.1s\n";
        let (v, _) = parse(frame, no_errors);
        assert_eq!(v.len(), 2);
    }
}
