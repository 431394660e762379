//! Moodle's "Download all submissions": one folder per student and submission plugin, named
//! `<Full Name>_<participant id>_assign<type>_<plugin>` (Moodle before 4.1 adds a trailing `_`).
//! The participant id is what the grading worksheet's `Identifier` says (`Participant <id>`).
//! Source: moodle/moodle `mod/assign/classes/downloader.php`.

use std::sync::LazyLock;

use regex::Regex;

static FOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<name>.+)_(?P<id>\d+)_assign(?:submission|feedback)_(?P<plugin>[a-z]+)_?$").unwrap()
});

/// One student's folder of a Moodle download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoodleFolder {
    /// The student's full name as Moodle wrote it (diacritics kept).
    pub full_name: String,
    pub participant: u64,
    /// `file` (uploaded files) or `onlinetext` (text typed in Moodle, as `onlinetext.html`).
    pub plugin: String,
}

impl MoodleFolder {
    /// The folder's name read as Moodle writes it, or None for any other folder.
    pub fn parse(folder: &str) -> Option<MoodleFolder> {
        let c = FOLDER.captures(folder)?;
        Some(MoodleFolder {
            full_name: c["name"].to_string(),
            participant: c["id"].parse().ok()?,
            plugin: c["plugin"].to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_moodle_folder_names_old_and_new() {
        let f = MoodleFolder::parse("Zażółć Gęślą-Jaźń_1234567_assignsubmission_file").unwrap();
        assert_eq!((f.full_name.as_str(), f.participant, f.plugin.as_str()), ("Zażółć Gęślą-Jaźń", 1234567, "file"));
        // Before Moodle 4.1: a trailing underscore.
        let old = MoodleFolder::parse("Jan Kowalski_42_assignsubmission_onlinetext_").unwrap();
        assert_eq!((old.participant, old.plugin.as_str()), (42, "onlinetext"));
        // A name with underscores of its own keeps them.
        assert_eq!(
            MoodleFolder::parse("Anna_Maria Nowak_7_assignsubmission_file").unwrap().full_name,
            "Anna_Maria Nowak"
        );
        assert_eq!(MoodleFolder::parse("student-01"), None);
        assert_eq!(MoodleFolder::parse("Jan Kowalski_assignsubmission_file"), None);
    }
}
