//! BILLmanager-style configuration files (`db.conf`, `billmgr.conf`,
//! `mgrnotify.conf`): one `Key Value` a line, `#` comments, blank lines ignored.

/// One setting: its 1-based line number, key and (trimmed, possibly empty) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'t> {
    pub line: usize,
    pub key: &'t str,
    pub value: &'t str,
}

/// The settings of a file's text, in order.
pub fn entries(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().enumerate().filter_map(|(index, line)| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (key, value) = match line.split_once(char::is_whitespace) {
            Some((k, v)) => (k, v.trim()),
            None => (line, ""),
        };
        Some(Entry {
            line: index + 1,
            key,
            value,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_comments() {
        let text = "# db\nDBHost  localhost \n\nDBPassword\nDBName billmgr x\n";
        let got: Vec<_> = entries(text).map(|e| (e.line, e.key, e.value)).collect();
        assert_eq!(
            got,
            [
                (2, "DBHost", "localhost"),
                (4, "DBPassword", ""),
                (5, "DBName", "billmgr x")
            ]
        );
    }
}
