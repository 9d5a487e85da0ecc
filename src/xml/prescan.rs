//! One linear pass over a document before roxmltree parses it, enforcing the limits of
//! [`super`]: nesting depth (roxmltree recurses per level, and a stack overflow aborts the
//! process), attributes per element, nodes, namespace bindings, and in templates the DTD's
//! entities and what their references expand to.
//!
//! The pass follows roxmltree's own grammar for where a token ends (first `-->` ends a
//! comment, a start tag ends at the first `>` outside quotes, ...), so on every prefix of a
//! text that roxmltree accepts it sees the same elements at the same depth. Past the first
//! place roxmltree refuses, its counts do not matter: roxmltree stops there.

use std::collections::HashMap;

use super::{
    ParseError, MAX_ATTRIBUTES, MAX_DEPTH, MAX_ENTITY_DECLARATIONS, MAX_ENTITY_EXPANSION,
    MAX_ENTITY_REFERENCES, MAX_NAMESPACE_BINDINGS, MAX_NODES, MAX_TEXT_JOIN_WORK,
};

/// Checks `text` against the limits; `entities` accepts an internal DTD that declares text
/// entities (templates), otherwise any DTD is refused.
pub(super) fn check(text: &str, entities: bool) -> Result<(), ParseError> {
    let mut scan = Scan {
        text,
        b: text.as_bytes(),
        entities_allowed: entities,
        entities: HashMap::new(),
        open: Vec::new(),
        run: Run::default(),
        nodes: 0,
        namespace_bindings: 0,
        entity_references: 0,
        entity_bytes: 0,
    };
    scan.document()
}

/// What one entity reference costs, its nested references included.
#[derive(Debug, Clone, Copy, Default)]
struct Expansion {
    bytes: usize,
    references: usize,
}

/// The text roxmltree joins into one node: consecutive character data, CDATA sections and
/// entity values.
#[derive(Default)]
struct Run {
    pieces: usize,
    bytes: usize,
}

/// `Ok(Some(end))`: the token ends before `end`; `Ok(None)`: roxmltree refuses the text at
/// this token, so the scan can stop.
type Step = Result<Option<usize>, ParseError>;

struct Scan<'a> {
    text: &'a str,
    b: &'a [u8],
    entities_allowed: bool,
    entities: HashMap<&'a str, Expansion>,
    /// Per open element, the namespace bindings in scope.
    open: Vec<usize>,
    run: Run,
    nodes: usize,
    namespace_bindings: usize,
    entity_references: usize,
    entity_bytes: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'a> Scan<'a> {
    fn document(&mut self) -> Result<(), ParseError> {
        let mut p = if self.b.starts_with("\u{feff}".as_bytes()) {
            3
        } else {
            0
        };
        if self.b[p..].starts_with(b"<?xml ") {
            match self.declaration_end(p) {
                Some(end) => p = end,
                None => return Ok(()),
            }
        }
        loop {
            p = self.skip_spaces(p);
            let rest = &self.b[p..];
            let next = if rest.starts_with(b"<!--") {
                self.add_node(p)?;
                self.find(p + 4, b"-->").map(|e| e + 3)
            } else if rest.starts_with(b"<?") {
                self.add_node(p)?;
                self.find(p + 2, b"?>").map(|e| e + 2)
            } else if rest.starts_with(b"<!DOCTYPE") {
                if !self.entities_allowed {
                    return Err(self.refuse(p, "a DTD (<!DOCTYPE>) is not accepted here"));
                }
                Some(self.doctype(p)?)
            } else {
                break;
            };
            match next {
                Some(end) => p = end,
                None => return Ok(()),
            }
        }
        self.content(p)
    }

    /// The end of the XML declaration: its attribute values are quoted, and roxmltree reads
    /// them as such.
    fn declaration_end(&self, from: usize) -> Option<usize> {
        let mut quote = None;
        let mut i = from + 5;
        while i < self.b.len() {
            let c = self.b[i];
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if self.b[i..].starts_with(b"?>") => return Some(i + 2),
                None => {}
            }
            i += 1;
        }
        None
    }

    fn content(&mut self, mut p: usize) -> Result<(), ParseError> {
        while p < self.b.len() {
            if self.b[p] != b'<' {
                let end = self.b[p..]
                    .iter()
                    .position(|&c| c == b'<')
                    .map_or(self.b.len(), |i| p + i);
                self.character_data(p, end)?;
                p = end;
                continue;
            }
            let rest = &self.b[p..];
            let step = if rest.starts_with(b"<![CDATA[") {
                match self.find(p + 9, b"]]>") {
                    Some(end) => {
                        self.add_piece(end - (p + 9));
                        Ok(Some(end + 3))
                    }
                    None => Ok(None),
                }
            } else {
                self.end_run(p)?;
                if rest.starts_with(b"<!--") {
                    self.add_node(p)?;
                    Ok(self.find(p + 4, b"-->").map(|e| e + 3))
                } else if rest.starts_with(b"<!") {
                    // Anything else starting so is refused in content, and after the root.
                    Ok(None)
                } else if rest.starts_with(b"<?") {
                    self.add_node(p)?;
                    Ok(self.find(p + 2, b"?>").map(|e| e + 2))
                } else if rest.starts_with(b"</") {
                    self.open.pop();
                    Ok(self.find(p + 2, b">").map(|e| e + 1))
                } else {
                    self.start_tag(p)
                }
            };
            match step? {
                Some(end) => p = end,
                None => return Ok(()),
            }
        }
        self.end_run(p)
    }

    /// A start tag: it ends at the first `>` outside a quoted attribute value.
    fn start_tag(&mut self, start: usize) -> Step {
        let mut attributes = 0;
        let mut namespace_declarations = 0;
        let mut quote = None;
        let mut i = start + 1;
        loop {
            let Some(&c) = self.b.get(i) else {
                return Ok(None);
            };
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == b'&' => {
                    // An attribute value: entity references expand into it.
                    if let Some((Reference::Entity(name), _)) = self.reference(i) {
                        self.expand(name, i)?;
                    }
                }
                Some(_) => {}
                None => match c {
                    b'"' | b'\'' => quote = Some(c),
                    b'>' => break,
                    b'=' => {
                        attributes += 1;
                        let name = self.name_before(i);
                        if name == b"xmlns" || name.starts_with(b"xmlns:") {
                            namespace_declarations += 1;
                        }
                    }
                    _ => {}
                },
            }
            i += 1;
        }
        let depth = self.open.len() + 1;
        if depth > MAX_DEPTH {
            return Err(self.refuse(
                start,
                &format!("elements are nested deeper than the limit of {MAX_DEPTH} levels"),
            ));
        }
        if attributes > MAX_ATTRIBUTES {
            return Err(self.refuse(
                start,
                &format!("an element has more than the limit of {MAX_ATTRIBUTES} attributes"),
            ));
        }
        self.add_node(start)?;
        let inherited = self.open.last().copied().unwrap_or(0);
        let in_scope = if namespace_declarations > 0 {
            // roxmltree gives this element its own copy of every binding in scope.
            let bindings = inherited + namespace_declarations;
            self.namespace_bindings = self.namespace_bindings.saturating_add(bindings);
            if self.namespace_bindings > MAX_NAMESPACE_BINDINGS {
                return Err(self.refuse(
                    start,
                    &format!(
                        "namespace declarations exceed the limit of \
                         {MAX_NAMESPACE_BINDINGS} bindings in scope, summed over elements"
                    ),
                ));
            }
            bindings
        } else {
            inherited
        };
        let empty = self.b[i - 1] == b'/';
        if !empty {
            self.open.push(in_scope);
        }
        Ok(Some(i + 1))
    }

    /// The attribute name in front of the `=` at `eq` (the walk back stops at the previous
    /// `=`, so a tag costs one pass however it is built).
    fn name_before(&self, eq: usize) -> &'a [u8] {
        let b = self.b;
        let mut end = eq;
        while end > 0 && is_space(b[end - 1]) {
            end -= 1;
        }
        let mut start = end;
        while start > 0
            && !is_space(b[start - 1])
            && !matches!(b[start - 1], b'"' | b'\'' | b'<' | b'=')
        {
            start -= 1;
        }
        &b[start..end]
    }

    /// Character data up to the next `<`: one piece of the current text, plus the entity
    /// values its references bring.
    fn character_data(&mut self, from: usize, to: usize) -> Result<(), ParseError> {
        self.add_piece(to - from);
        let mut i = from;
        while let Some(offset) = self.b[i..to].iter().position(|&c| c == b'&') {
            let amp = i + offset;
            i = amp + 1;
            if let Some((Reference::Entity(name), end)) = self.reference(amp) {
                let e = self.expand(name, amp)?;
                // roxmltree appends the text before the reference, the entity's text and
                // each nested reference's text as separate pieces.
                let pieces = e.references.saturating_add(1).saturating_mul(2);
                self.run.pieces = self.run.pieces.saturating_add(pieces);
                self.run.bytes = self.run.bytes.saturating_add(e.bytes);
                i = end;
            }
        }
        Ok(())
    }

    fn add_piece(&mut self, bytes: usize) {
        self.run.pieces += 1;
        self.run.bytes = self.run.bytes.saturating_add(bytes);
    }

    /// Ends the current text before a non-text token at `at`.
    fn end_run(&mut self, at: usize) -> Result<(), ParseError> {
        let run = std::mem::take(&mut self.run);
        if run.pieces == 0 {
            return Ok(());
        }
        self.add_node(at)?;
        if (run.pieces - 1).saturating_mul(run.bytes) > MAX_TEXT_JOIN_WORK {
            return Err(self.refuse(
                at,
                &format!(
                    "a text is joined from too many pieces (entity references, CDATA \
                     sections): more than the limit of {MAX_TEXT_JOIN_WORK} bytes of copying"
                ),
            ));
        }
        Ok(())
    }

    fn add_node(&mut self, at: usize) -> Result<(), ParseError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.refuse(
                at,
                &format!("the document has more than the limit of {MAX_NODES} nodes"),
            ));
        }
        Ok(())
    }

    /// Counts one reference to a declared entity (an undeclared one roxmltree refuses).
    fn expand(&mut self, name: &str, at: usize) -> Result<Expansion, ParseError> {
        let Some(&e) = self.entities.get(name) else {
            return Ok(Expansion::default());
        };
        self.entity_references = self
            .entity_references
            .saturating_add(e.references.saturating_add(1));
        if self.entity_references > MAX_ENTITY_REFERENCES {
            return Err(self.refuse(
                at,
                &format!(
                    "entity references (nested ones included) exceed the limit of \
                     {MAX_ENTITY_REFERENCES}"
                ),
            ));
        }
        self.entity_bytes = self.entity_bytes.saturating_add(e.bytes);
        if self.entity_bytes > MAX_ENTITY_EXPANSION {
            return Err(self.refuse(
                at,
                &format!(
                    "entity references expand to more than the limit of \
                     {MAX_ENTITY_EXPANSION} bytes"
                ),
            ));
        }
        Ok(e)
    }

    /// `<!DOCTYPE name ExternalID? [ internal subset ]>`, read as roxmltree reads it; returns
    /// where it ends. The subset may hold comments, processing instructions, element,
    /// attribute-list and notation declarations (skipped to their first `>`, as roxmltree
    /// does) and declarations of internal general entities whose values are text.
    fn doctype(&mut self, start: usize) -> Result<usize, ParseError> {
        let malformed = |s: &Self, at| s.refuse(at, "the DTD is not well-formed");
        let mut p = start + 9;
        if !self.b.get(p).copied().is_some_and(is_space) {
            return Err(malformed(self, p));
        }
        p = self.skip_spaces(p);
        p = self.skip_name(p);
        p = self.skip_spaces(p);
        if self.b[p..].starts_with(b"SYSTEM") || self.b[p..].starts_with(b"PUBLIC") {
            let literals = if self.b[p..].starts_with(b"SYSTEM") {
                1
            } else {
                2
            };
            p += 6;
            for _ in 0..literals {
                p = self.skip_spaces(p);
                p = self.quoted(p).ok_or_else(|| malformed(self, p))?.1;
            }
            p = self.skip_spaces(p);
        }
        match self.b.get(p) {
            Some(b'>') => return Ok(p + 1),
            Some(b'[') => p += 1,
            _ => return Err(malformed(self, p)),
        }
        let mut declared = Vec::new();
        loop {
            p = self.skip_spaces(p);
            let rest = &self.b[p..];
            let end = if rest.starts_with(b"<!ENTITY") {
                self.entity_declaration(p, &mut declared)?
            } else if rest.starts_with(b"<!--") {
                self.find(p + 4, b"-->").map(|e| e + 3)
            } else if rest.starts_with(b"<?") {
                self.find(p + 2, b"?>").map(|e| e + 2)
            } else if rest.starts_with(b"<!ELEMENT")
                || rest.starts_with(b"<!ATTLIST")
                || rest.starts_with(b"<!NOTATION")
            {
                self.find(p, b">").map(|e| e + 1)
            } else if rest.starts_with(b"]") {
                let q = self.skip_spaces(p + 1);
                if self.b.get(q) != Some(&b'>') {
                    return Err(malformed(self, q));
                }
                p = q + 1;
                break;
            } else if rest.starts_with(b"%") {
                return Err(self.refuse(p, "parameter entities are not accepted in a DTD"));
            } else {
                None
            };
            p = end.ok_or_else(|| malformed(self, p))?;
        }
        self.measure_entities(&declared)?;
        Ok(p)
    }

    /// `<!ENTITY name "value">`; returns where it ends.
    fn entity_declaration(
        &self,
        start: usize,
        declared: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<Option<usize>, ParseError> {
        let mut p = start + 8;
        if !self.b.get(p).copied().is_some_and(is_space) {
            return Ok(None);
        }
        p = self.skip_spaces(p);
        if self.b.get(p) == Some(&b'%') {
            return Err(self.refuse(p, "parameter entities are not accepted in a DTD"));
        }
        let name_end = self.skip_name(p);
        let name = &self.text[p..name_end];
        p = self.skip_spaces(name_end);
        let Some((value, end)) = self.quoted(p) else {
            if self.b[p..].starts_with(b"SYSTEM") || self.b[p..].starts_with(b"PUBLIC") {
                return Err(self.refuse(
                    p,
                    &format!("external entities are not accepted (entity '{name}')"),
                ));
            }
            return Ok(None);
        };
        p = self.skip_spaces(end);
        if self.b.get(p) != Some(&b'>') {
            return Ok(None);
        }
        declared.push((name, value));
        if declared.len() > MAX_ENTITY_DECLARATIONS {
            return Err(self.refuse(
                start,
                &format!(
                    "the DTD declares more than the limit of {MAX_ENTITY_DECLARATIONS} entities"
                ),
            ));
        }
        Ok(Some(p + 1))
    }

    /// What each declared entity expands to. An entity's replacement text is its value
    /// with character references decoded (libxml2 then reads references in it again, so
    /// `&#38;name;` is a reference there); it must not hold markup, and the entities must
    /// not refer to each other in a loop. The first declaration of a name wins.
    fn measure_entities(&mut self, declared: &[(&'a str, &'a str)]) -> Result<(), ParseError> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, (name, _)) in declared.iter().enumerate() {
            index.entry(name).or_insert(i);
        }
        let mut state = vec![Measure::Pending; declared.len()];
        for &i in index.values() {
            let e = self.measure(i, declared, &index, &mut state)?;
            self.entities.insert(declared[i].0, e);
        }
        Ok(())
    }

    fn measure(
        &self,
        i: usize,
        declared: &[(&'a str, &'a str)],
        index: &HashMap<&str, usize>,
        state: &mut [Measure],
    ) -> Result<Expansion, ParseError> {
        let (name, value) = declared[i];
        match state[i] {
            Measure::Done(e) => return Ok(e),
            Measure::Visiting => {
                return Err(ParseError::new(format!(
                    "the DTD's entity '{name}' refers to itself"
                )))
            }
            Measure::Pending => {}
        }
        state[i] = Measure::Visiting;
        let replacement = decode_character_references(value);
        if replacement.contains('<') {
            return Err(ParseError::new(format!(
                "the DTD's entity '{name}' holds markup; entities may hold text only"
            )));
        }
        let mut e = Expansion {
            bytes: replacement.len(),
            references: 0,
        };
        let mut rest = replacement.as_str();
        while let Some(amp) = rest.find('&') {
            rest = &rest[amp + 1..];
            let Some(len) = reference_len(rest.as_bytes()) else {
                continue;
            };
            if let Some(&j) = index.get(&rest[..len]) {
                let nested = self.measure(j, declared, index, state)?;
                e.bytes = e.bytes.saturating_add(nested.bytes);
                e.references = e
                    .references
                    .saturating_add(nested.references.saturating_add(1));
            }
        }
        state[i] = Measure::Done(e);
        Ok(e)
    }

    /// The reference starting with `&` at `at`, and where it ends.
    fn reference(&self, at: usize) -> Option<(Reference<'a>, usize)> {
        let len = reference_len(&self.b[at + 1..])?;
        let name = &self.text[at + 1..at + 1 + len];
        let reference =
            if name.starts_with('#') || matches!(name, "lt" | "gt" | "amp" | "apos" | "quot") {
                Reference::Character
            } else {
                Reference::Entity(name)
            };
        Some((reference, at + len + 2))
    }

    /// A quoted literal at `at`: its content and where it ends.
    fn quoted(&self, at: usize) -> Option<(&'a str, usize)> {
        let quote = *self.b.get(at).filter(|&&q| q == b'"' || q == b'\'')?;
        let close = at + 1 + self.b[at + 1..].iter().position(|&c| c == quote)?;
        Some((&self.text[at + 1..close], close + 1))
    }

    fn skip_spaces(&self, mut p: usize) -> usize {
        while self.b.get(p).copied().is_some_and(is_space) {
            p += 1;
        }
        p
    }

    /// Past a name: up to a space or a delimiter of the DTD.
    fn skip_name(&self, mut p: usize) -> usize {
        while self
            .b
            .get(p)
            .is_some_and(|&c| !is_space(c) && !matches!(c, b'[' | b'>' | b'"' | b'\''))
        {
            p += 1;
        }
        p
    }

    fn find(&self, from: usize, pattern: &[u8]) -> Option<usize> {
        self.b
            .get(from..)?
            .windows(pattern.len())
            .position(|w| w == pattern)
            .map(|i| from + i)
    }

    /// An error at byte `at`, with its line.
    fn refuse(&self, at: usize, msg: &str) -> ParseError {
        let line = 1 + self.b[..at.min(self.b.len())]
            .iter()
            .filter(|&&c| c == b'\n')
            .count();
        ParseError::new(format!("{msg} (line {line})"))
    }
}

#[derive(Debug, Clone, Copy)]
enum Measure {
    Pending,
    Visiting,
    Done(Expansion),
}

enum Reference<'a> {
    /// A character reference or a predefined entity: one character.
    Character,
    Entity(&'a str),
}

/// The length of a reference's name (what lies between `&` and `;`) at the start of
/// `after_amp`, when a `;` closes it before any delimiter.
fn reference_len(after_amp: &[u8]) -> Option<usize> {
    let len = after_amp
        .iter()
        .position(|&c| is_space(c) || matches!(c, b';' | b'&' | b'<' | b'>' | b'"' | b'\''))?;
    (after_amp[len] == b';' && len > 0).then_some(len)
}

/// `value` with `&#NN;` and `&#xHH;` replaced by their characters (others kept as written).
fn decode_character_references(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find("&#") {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = reference_len(&rest.as_bytes()[1..]).and_then(|len| {
            let digits = &rest[2..1 + len];
            let code = match digits.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => digits.parse().ok()?,
            };
            Some((char::from_u32(code)?, len + 2))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::xml::{parse, parse_template, MAX_DEPTH, MAX_NODES};

    /// Parses `text` (a template when `template`), expecting a refusal that names `limit`;
    /// the refusal must come quickly (the attacks below take seconds to minutes unbounded).
    fn refused(text: &str, template: bool, limit: &str) {
        let started = Instant::now();
        let result = if template {
            parse_template(text).map(|_| ())
        } else {
            parse(text).map(|_| ())
        };
        let msg = result.expect_err("refused").to_string();
        assert!(msg.contains(limit), "{msg}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }

    fn nested(depth: usize, open: &str, close: &str) -> String {
        open.repeat(depth) + close.repeat(depth).as_str()
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_before_roxmltree_recurses() {
        // 20 000 levels overflow roxmltree's stack and abort the whole process.
        refused(&nested(20_000, "<a>", "</a>"), false, "limit of 256 levels");
        refused(&nested(20_000, "<a>", "</a>"), true, "limit of 256 levels");
        assert!(parse(&nested(MAX_DEPTH, "<a>", "</a>")).is_ok());
        refused(&nested(MAX_DEPTH + 1, "<a>", "</a>"), false, "(line 1)");
        // An empty element at the limit's depth is one level too deep as well.
        refused(
            &(nested(MAX_DEPTH, "<a>", "</a>").replacen("</a>", "<b/></a>", 1)),
            false,
            "limit of 256 levels",
        );
    }

    #[test]
    fn nesting_is_counted_the_way_roxmltree_reads_tokens() {
        // Quoted `>` and `/>` do not end a start tag, and a quoted `>` does not end the
        // DOCTYPE, so what follows it is not a comment hiding the elements.
        let deep = nested(20_000, "<a b='>' c=\"/>\">", "</a>");
        refused(&deep, false, "limit of 256 levels");
        let hidden = format!(
            "<!DOCTYPE a SYSTEM '><!--'>{}-->",
            nested(20_000, "<a>", "</a>")
        );
        refused(&hidden, true, "limit of 256 levels");
        // Markup inside comments, CDATA sections and processing instructions is not markup.
        let inert = nested(1000, "<a>", "</a>");
        let doc = format!("<r><!--{inert}--><![CDATA[{inert}]]><?pi {inert}?></r>");
        assert!(parse(&doc).is_ok());
    }

    #[test]
    fn attributes_are_capped_per_element() {
        // 100 000 attributes took 25 s: roxmltree's duplicate check is quadratic.
        let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"v\"")).collect();
        refused(&format!("<r{attrs}/>"), false, "limit of 256 attributes");
        let attrs: String = (0..256).map(|i| format!(" a{i} = 'v=>'")).collect();
        assert_eq!(
            parse(&format!("<r{attrs}/>"))
                .unwrap()
                .root_element()
                .attributes()
                .len(),
            256
        );
        let attrs: String = (0..257).map(|i| format!(" a{i}=\"\"")).collect();
        refused(&format!("<r{attrs}/>"), false, "limit of 256 attributes");
    }

    #[test]
    fn nodes_are_capped() {
        let ok = format!("<r>{}</r>", "<e/>".repeat(MAX_NODES - 1));
        assert!(parse(&ok).is_ok());
        let over = format!("<r>{}</r>", "<e/>".repeat(MAX_NODES));
        refused(&over, false, "limit of 1000000 nodes");
    }

    #[test]
    fn namespace_bindings_copied_into_every_declaring_element_are_capped() {
        let root_ns: String = (0..200)
            .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
            .collect();
        let doc = |children: usize| {
            format!(
                "<r{root_ns}>{}</r>",
                "<e xmlns:z=\"urn:z\"/>".repeat(children)
            )
        };
        assert!(parse(&doc(1000)).is_ok());
        // Each child holds 201 bindings: 5 000 of them hold a million.
        refused(&doc(5000), false, "namespace declarations exceed the limit");
    }

    #[test]
    fn documents_larger_than_the_limit_are_refused() {
        let big = format!("<r>{}</r>", "x".repeat(crate::xml::MAX_INPUT_BYTES));
        refused(&big, false, "larger than the limit of 16777216 bytes");
    }

    #[test]
    fn a_dtd_is_refused_except_in_templates_with_text_entities() {
        let doc = "<!DOCTYPE d [<!ENTITY nbsp \"&#160;\">]><d>a&nbsp;b</d>";
        refused(doc, false, "a DTD (<!DOCTYPE>) is not accepted here");
        let parsed = parse_template(doc).unwrap();
        assert_eq!(parsed.root_element().text(), Some("a\u{a0}b"));
        let with_id = "<!DOCTYPE d SYSTEM \"x.dtd\" [<!-- c --><?pi x?><!ATTLIST d a CDATA #IMPLIED><!ENTITY copy '&#169;'>]><d>&copy;</d>";
        assert_eq!(
            parse_template(with_id).unwrap().root_element().text(),
            Some("\u{a9}")
        );
    }

    #[test]
    fn entity_expansion_is_bounded() {
        // An 11 KB stylesheet with one 5 KB entity used 2 000 times: 20-30 s in roxmltree.
        let big = "y".repeat(5000);
        let doc = format!(
            "<!DOCTYPE r [<!ENTITY n \"{big}\">]><r>{}</r>",
            "&n;".repeat(2000)
        );
        refused(&doc, true, "expand to more than the limit of 1048576 bytes");
        // The same through an attribute value.
        let doc = format!(
            "<!DOCTYPE r [<!ENTITY n \"{big}\">]><r a=\"{}\"/>",
            "&n;".repeat(2000)
        );
        refused(&doc, true, "expand to more than the limit of 1048576 bytes");
        // Billion laughs: ten levels of ten references each.
        let mut dtd = String::from("<!ENTITY l0 \"lol\">");
        for i in 1..10 {
            let refs = format!("&l{};", i - 1).repeat(10);
            dtd.push_str(&format!("<!ENTITY l{i} \"{refs}\">"));
        }
        refused(
            &format!("<!DOCTYPE r [{dtd}]><r>&l9;</r>"),
            true,
            "limit of 16384",
        );
        // 200 levels of doubling: counts that do not fit a machine word saturate.
        let mut dtd = String::from("<!ENTITY d0 \"x\">");
        for i in 1..200 {
            dtd.push_str(&format!("<!ENTITY d{i} \"&d{};&d{};\">", i - 1, i - 1));
        }
        refused(
            &format!("<!DOCTYPE r [{dtd}]><r a='&d199;'>&d199;</r>"),
            true,
            "limit of 16384",
        );
        // `&#38;` in a value becomes `&` in the replacement text, which libxml2 reads
        // again: these are references too.
        let escaped = "&#38;n;".repeat(300);
        let doc =
            format!("<!DOCTYPE r [<!ENTITY n \"{big}\"><!ENTITY m \"{escaped}\">]><r>&m;</r>");
        refused(&doc, true, "expand to more than the limit");
    }

    #[test]
    fn many_pieces_in_one_text_are_refused() {
        // roxmltree copies the text so far for every piece it appends.
        let doc = format!(
            "<!DOCTYPE r [<!ENTITY n \"&#160;\">]><r>{}</r>",
            "&n;".repeat(16_000)
        );
        refused(&doc, true, "joined from too many pieces");
        let doc = format!("<r>{}</r>", "<![CDATA[xxxxxxxxxx]]>".repeat(100_000));
        refused(&doc, false, "joined from too many pieces");
        // Separate texts are not joined.
        let doc = format!(
            "<r>{}</r>",
            "<a><![CDATA[x]]>y<![CDATA[z]]></a>".repeat(100_000)
        );
        assert!(parse(&doc).is_ok());
    }

    #[test]
    fn entities_must_be_internal_text_without_loops() {
        let dtd = |decls: &str| format!("<!DOCTYPE r [{decls}]><r/>");
        refused(
            &dtd("<!ENTITY e \"<a/>\">"),
            true,
            "entity 'e' holds markup",
        );
        refused(
            &dtd("<!ENTITY e \"&#60;a/>\">"),
            true,
            "entity 'e' holds markup",
        );
        refused(
            &dtd("<!ENTITY e SYSTEM \"file:///etc/passwd\">"),
            true,
            "external entities are not accepted (entity 'e')",
        );
        refused(
            &dtd("<!ENTITY % p \"x\">"),
            true,
            "parameter entities are not accepted",
        );
        refused(
            &dtd("<!ENTITY a \"&b;\"><!ENTITY b \"x&a;\">"),
            true,
            "refers to itself",
        );
        let many: String = (0..1025).map(|i| format!("<!ENTITY e{i} \"x\">")).collect();
        refused(&dtd(&many), true, "limit of 1024 entities");
        refused(
            "<!DOCTYPE r [<!BOGUS>]><r/>",
            true,
            "the DTD is not well-formed",
        );
        // The escaped forms of the predefined entities are text, not markup.
        let amp = "<!DOCTYPE r [<!ENTITY amp2 \"&#38;#38;\"><!ENTITY lt2 \"&#38;#60;\">]><r>&amp2;&lt2;</r>";
        assert!(parse_template(amp).is_ok());
    }
}
