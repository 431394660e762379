//! What a class shares that a student's own run would not: the same digest of a run in two
//! students' reports (shared evidence), and weaker signals — the same Dockerfile, reports in
//! mostly the same words. All listed for the instructor to judge; none takes points.

use super::Row;
use crate::intake::Project;

/// Two students' reports showing the same digest of a run: shared evidence for the instructor
/// to judge (lab7 takes no points for it).
#[derive(Debug, Clone, PartialEq)]
pub struct SharedEvidence {
    pub students: (String, String),
    /// Where the two stand in the rows (names may repeat in a class).
    pub rows: (usize, usize),
    pub digests: Vec<crate::reference::Digest>,
    /// One line of each, as quoted: where the first shared digest stands in each report.
    pub quotes: (crate::handin::Quote, crate::handin::Quote),
}

/// The digests a row's report showed of its runs (none without a report).
fn produced(r: &Row) -> &[(crate::reference::Digest, crate::handin::Quote)] {
    r.report.as_ref().map_or(&[], |x| &x.produced)
}

/// Each pair of students whose reports show a digest in common, in the rows' order.
pub fn shared_evidence(rows: &[Row]) -> Vec<SharedEvidence> {
    let mut pairs = Vec::new();
    for (i, a) in rows.iter().enumerate() {
        let da = produced(a);
        for (j, b) in rows.iter().enumerate().skip(i + 1) {
            let db = produced(b);
            let common: Vec<_> =
                da.iter().filter_map(|(d, q)| Some((d, q, db.iter().find(|(e, _)| e == d)?))).collect();
            let Some((_, qa, (_, qb))) = common.first() else { continue };
            pairs.push(SharedEvidence {
                students: (a.student.name.clone(), b.student.name.clone()),
                rows: (i, j),
                digests: common.iter().map(|(d, _, _)| (*d).clone()).collect(),
                quotes: ((*qa).clone(), qb.clone()),
            });
        }
    }
    pairs
}

/// The pairs as Markdown, for the class's summary: students joined by shared digests form one
/// group (eight reports of one run are one finding, not 28 pairs), each member with the line
/// where the group's first shared digest stands in that report.
pub fn shared_evidence_markdown(rows: &[Row], pairs: &[SharedEvidence]) -> String {
    if pairs.is_empty() {
        return "\nShared evidence: no digest of a run appears in two students' reports.\n".into();
    }
    // Rows joined by shared digests, by their place in the class (two students may share a name).
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for p in pairs {
        let (a, b) = p.rows;
        let ia = groups.iter().position(|g| g.contains(&a));
        let ib = groups.iter().position(|g| g.contains(&b));
        match (ia, ib) {
            (Some(i), Some(j)) if i != j => {
                let moved = groups.remove(i.max(j));
                groups[i.min(j)].extend(moved);
            }
            (Some(_), Some(_)) => {}
            (Some(i), None) => groups[i].push(b),
            (None, Some(j)) => groups[j].push(a),
            (None, None) => groups.push(vec![a, b]),
        }
    }
    let mut o = String::from(
        "\n## Shared evidence (for the instructor to judge; no points taken)\n\nA build's digests are unique to its run: the same one in two reports means the same run's output.\n",
    );
    for g in &mut groups {
        g.sort();
        let Some(first) = pairs.iter().find(|p| g.contains(&p.rows.0)).map(|p| &p.digests[0]) else { continue };
        o += &format!("\n- **{} students** show the output of one run ({first}):\n", g.len());
        for &i in g.iter() {
            let name = &rows[i].student.name;
            match produced(&rows[i]).iter().find(|(d, _)| d == first) {
                Some((_, q)) => o += &format!("  - {name}, {}: `{}`\n", q.at, q.text),
                None => o += &format!("  - {name}\n"),
            }
        }
    }
    o
}

/// A weaker signal than a shared digest: students whose Dockerfiles are the same text once
/// comments, blank lines, spacing and the case of instructions are set aside. Many students
/// start from the lab's example, so it is listed for the instructor, never counted.
pub fn same_dockerfiles(rows: &[Row]) -> Vec<Vec<String>> {
    let mut by_text: Vec<(String, Vec<String>)> = Vec::new();
    for r in rows {
        let Project::Found { context, dockerfile, .. } = &r.student.project else { continue };
        let Ok(text) = crate::lab::read_small(&context.join(dockerfile), 1 << 20) else { continue };
        let key = normalized_dockerfile(&text);
        match by_text.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(r.student.name.clone()),
            None => by_text.push((key, vec![r.student.name.clone()])),
        }
    }
    by_text.into_iter().map(|(_, names)| names).filter(|n| n.len() > 1).collect()
}

fn normalized_dockerfile(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let first = words.next().unwrap_or_default().to_ascii_uppercase();
            std::iter::once(first).chain(words.map(str::to_string)).collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The groups as Markdown, after the shared evidence.
pub fn same_dockerfiles_markdown(groups: &[Vec<String>]) -> String {
    if groups.is_empty() {
        return String::new();
    }
    let mut o = String::from("\n### A weaker signal: the same Dockerfile (comments and spacing aside)\n\n");
    for g in groups {
        o += &format!("- {} students: {}\n", g.len(), g.join(", "));
    }
    o
}

/// How alike two reports' prose must be (shared five-word runs over all of either's) to be
/// listed: most of the words the same, beyond a shared template's headings.
pub const SIMILAR_PROSE: f64 = 0.6;

/// A weaker signal: pairs of students whose reports' own words are mostly the same five-word
/// runs (Jaccard similarity at least `SIMILAR_PROSE`), with the share, for the instructor.
pub fn similar_prose(rows: &[Row]) -> Vec<(String, String, f64)> {
    let mut pairs = Vec::new();
    for (i, a) in rows.iter().enumerate() {
        let Some(pa) = a.report.as_ref().map(|r| &r.prose).filter(|p| p.len() >= 20) else { continue };
        for b in &rows[i + 1..] {
            let Some(pb) = b.report.as_ref().map(|r| &r.prose).filter(|p| p.len() >= 20) else { continue };
            let common = pa.intersection(pb).count() as f64;
            let jaccard = common / (pa.len() as f64 + pb.len() as f64 - common);
            if jaccard >= SIMILAR_PROSE {
                pairs.push((a.student.name.clone(), b.student.name.clone(), jaccard));
            }
        }
    }
    pairs
}

/// The pairs as Markdown, after the Dockerfiles.
pub fn similar_prose_markdown(pairs: &[(String, String, f64)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut o = String::from("\n### A weaker signal: reports in mostly the same words\n\n");
    for (a, b, j) in pairs {
        o += &format!("- {a} and {b}: {:.0} % of their five-word runs in common\n", j * 100.0);
    }
    o
}
