//! Reading the plugin XML that `mgrnotify sync` writes.

#![allow(dead_code)]

/// The text of `<msg name="name">` under the `<lang name="lang">` blocks.
pub fn msg(doc: &roxmltree::Document<'_>, lang: &str, name: &str) -> Option<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("lang") && n.attribute("name") == Some(lang))
        .flat_map(|l| l.descendants())
        .find(|m| m.has_tag_name("msg") && m.attribute("name") == Some(name))
        .and_then(|m| m.text())
        .map(str::to_owned)
}
