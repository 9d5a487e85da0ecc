//! The documents a gateway module reads: the outgoing request and the
//! gateway parameter block shared by every command.

use crate::gateway::GatewayError;
use crate::script::{FieldKind, Metadata};
use crate::xml::{self, Params};

/// A gateway's settings as the module sees them.
#[derive(Debug, Clone, Default)]
pub struct GatewaySettings {
    /// `<gateway>`'s own children (id, name, gateway_module, ...), without xmlparams.
    pub gateway: Params,
    /// The xmlparams document as text (empty when there was none).
    pub xmlparams: String,
    /// What the module works with: xmlparams' fields, then `<gateway>`'s own children
    /// for names xmlparams does not have.
    pub params: Params,
}

impl GatewaySettings {
    /// Builds the settings from a gateway row's columns and its xmlparams text.
    pub fn new(gateway: Params, xmlparams: &str) -> Result<Self, GatewayError> {
        let mut params = if xmlparams.trim().is_empty() {
            Params::new()
        } else {
            let doc = xml::parse(xmlparams)
                .map_err(|e| GatewayError::xml(format!("xmlparams is not an XML document: {e}")))?;
            Params::from_children(doc.root_element())
        };
        for (k, v) in gateway.iter() {
            params.insert_if_absent(k, v);
        }
        register_secrets(params.iter(), &[]);
        Ok(Self {
            gateway,
            xmlparams: xmlparams.to_owned(),
            params,
        })
    }

    /// Reads the settings from a document: its `<gateway>` element when it has one
    /// (outgoing, ingoing), else its root (the check_connection form).
    pub fn from_doc(doc: &roxmltree::Document<'_>) -> Result<Self, GatewayError> {
        let root = doc.root_element();
        let holder = root
            .children()
            .find(|c| c.has_tag_name("gateway"))
            .unwrap_or(root);
        let mut gateway = Params::new();
        let mut xmlparams = String::new();
        for child in holder.children().filter(|c| c.is_element()) {
            if child.has_tag_name("xmlparams") {
                xmlparams = if child.children().any(|c| c.is_element()) {
                    // Nested elements: keep them as a document of their own.
                    let range = child.range();
                    let inner = &doc.input_text()[range];
                    inner.to_owned()
                } else {
                    xml::text_of(child)
                };
            } else if holder != root || !child.children().any(|c| c.is_element()) {
                gateway.insert_if_absent(child.tag_name().name(), &xml::text_of(child));
            }
        }
        Self::new(gateway, &xmlparams)
    }

    /// A required parameter, or a `missed` error naming it.
    pub fn require(&self, name: &str) -> Result<&str, GatewayError> {
        self.params
            .get(name)
            .ok_or_else(|| GatewayError::missed(name))
    }

    /// The seed's ingoing input: `<doc><gateway>..<xmlparams>..</gateway></doc>`.
    pub fn to_xml(&self) -> String {
        let mut w = xml::Writer::new();
        w.start("doc");
        self.write_into(&mut w);
        w.finish()
    }

    fn write_into(&self, w: &mut crate::xml::Writer) {
        w.start("gateway");
        self.gateway.write_into(w);
        w.start("xmlparams");
        w.text(&self.xmlparams);
        w.end();
        w.end();
    }
}

/// Registers the secrets among a gateway's parameters, so they never reach a log or
/// an error: values of password fields (`password_fields`, from a script's metadata
/// or a module's plugin XML), values of parameters whose names say they are secrets,
/// and the password in the userinfo of any URL.
pub fn register_secrets<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    password_fields: &[String],
) {
    for (name, value) in params {
        if password_fields.iter().any(|f| f == name) || crate::log::is_secret_name(name) {
            crate::log::add_secret(value);
        } else if let Some(password) = url_password(value) {
            crate::log::add_secret(password);
        }
    }
}

/// The parameters a command of a gateway described by `metadata` works with:
/// defaults filled in, then checked against its fields (required ones present, one of
/// each `required_one_of` group present, select values among the options). Password
/// values become registered secrets.
pub fn checked_params(metadata: &Metadata, params: &Params) -> Result<Params, GatewayError> {
    let mut params = params.clone();
    for field in &metadata.fields {
        if let (Some(default), None) = (&field.default, params.get(&field.name)) {
            params.set(&field.name, default);
        }
    }
    register_secrets(params.iter(), &metadata.password_fields());
    for field in &metadata.fields {
        match params.get(&field.name) {
            None if field.required => return Err(GatewayError::missed(&field.name)),
            Some(value)
                if field.kind == FieldKind::Select
                    && !field.options.iter().any(|o| o.value == value) =>
            {
                let choices: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
                return Err(GatewayError::value(
                    &field.name,
                    format!(
                        "'{value}' is not a choice of {}: use one of {}",
                        field.name,
                        choices.join(", ")
                    ),
                ));
            }
            _ => {}
        }
    }
    for group in &metadata.required_one_of {
        if group.iter().all(|name| params.get(name).is_none()) {
            return Err(GatewayError::new(
                "missed",
                &group[0],
                format!("fill in one of the parameters {}", group.join(", ")),
            ));
        }
    }
    Ok(params)
}

/// `pass` of `scheme://user:pass@host...`.
fn url_password(value: &str) -> Option<&str> {
    let (_, rest) = value.trim().split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo.split_once(':').map(|(_, password)| password)
}

/// Registers the secrets of a document a gateway command reads (a form, the
/// outgoing XML) before anything else is done with it: its password fields are the
/// module's own and those its form description declares (`<input type="password"
/// name="..">`); an `xmlparams` holding a document is read too.
pub fn register_form_secrets(text: &str, password_fields: &[String]) {
    let Ok(doc) = xml::parse(text) else { return };
    let mut fields = password_fields.to_vec();
    fields.extend(crate::plugin::password_inputs(&doc));
    register_element_secrets(&doc, &fields);
}

fn register_element_secrets(doc: &roxmltree::Document<'_>, fields: &[String]) {
    let elements = doc.descendants().filter(|n| n.is_element());
    let values: Vec<(&str, String)> = elements
        .filter(|n| !n.children().any(|c| c.is_element()))
        .map(|n| (n.tag_name().name(), xml::text_of(n)))
        .collect();
    register_secrets(values.iter().map(|(k, v)| (*k, v.as_str())), fields);
    for (name, value) in &values {
        if *name == "xmlparams" && value.trim_start().starts_with('<') {
            if let Ok(inner) = xml::parse(value) {
                register_element_secrets(&inner, fields);
            }
        }
    }
}

/// `--command outgoing`'s input: one message for one user through one gateway.
#[derive(Debug, Clone, Default)]
pub struct OutgoingInput {
    pub settings: GatewaySettings,
    /// The text (for email: the text/plain version).
    pub message: String,
    pub subject: String,
    /// For email: the HTML version of the message, when there is one.
    pub html: Option<String>,
    /// For email: files to attach.
    pub attachments: Vec<Attachment>,
    pub user: Params,
    pub project: Params,
}

/// `<attachment name=".." type="..">path</attachment>` of the outgoing XML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachment {
    /// The file name the recipient sees; empty: the path's file name.
    pub name: String,
    /// The MIME type; empty: guessed from the name.
    pub content_type: String,
    /// Where the file is (absolute, or relative to the mgr root).
    pub path: String,
}

impl OutgoingInput {
    pub fn parse(text: &str) -> Result<Self, GatewayError> {
        if text.trim().is_empty() {
            return Err(GatewayError::xml(
                "empty input: expected the outgoing XML on stdin",
            ));
        }
        let doc = xml::parse(text)
            .map_err(|e| GatewayError::xml(format!("input is not an XML document: {e}")))?;
        let root = doc.root_element();
        let child = |name: &str| root.children().find(|c| c.has_tag_name(name));
        if child("gateway").is_none() {
            return Err(GatewayError::missed("gateway"));
        }
        Ok(Self {
            settings: GatewaySettings::from_doc(&doc)?,
            message: child("message").map(xml::text_of).unwrap_or_default(),
            subject: child("subject").map(xml::text_of).unwrap_or_default(),
            html: child("html")
                .map(xml::text_of)
                .filter(|h| !h.trim().is_empty()),
            attachments: child("attachments")
                .into_iter()
                .flat_map(|a| a.children().filter(|c| c.has_tag_name("attachment")))
                .map(|a| Attachment {
                    name: a.attribute("name").unwrap_or_default().to_owned(),
                    content_type: a.attribute("type").unwrap_or_default().to_owned(),
                    path: xml::text_of(a),
                })
                .collect(),
            user: child("user").map(Params::from_children).unwrap_or_default(),
            project: child("project")
                .map(Params::from_children)
                .unwrap_or_default(),
        })
    }

    /// The document a notification module sends to `gate/<module> --command outgoing`.
    pub fn to_xml(&self) -> String {
        let mut w = xml::Writer::new();
        w.start("doc");
        self.settings.write_into(&mut w);
        w.start("message");
        w.text(&self.message);
        w.end();
        w.start("subject");
        w.text(&self.subject);
        w.end();
        if let Some(html) = &self.html {
            w.start("html");
            w.text(html);
            w.end();
        }
        if !self.attachments.is_empty() {
            w.start("attachments");
            for a in &self.attachments {
                w.start("attachment");
                if !a.name.is_empty() {
                    w.attr("name", &a.name);
                }
                if !a.content_type.is_empty() {
                    w.attr("type", &a.content_type);
                }
                w.text(&a.path);
                w.end();
            }
            w.end();
        }
        for (name, params) in [("user", &self.user), ("project", &self.project)] {
            w.start(name);
            params.write_into(&mut w);
            w.end();
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_SHAPE: &str = r#"<doc>
  <gateway><id>3</id><name>sms</name><gateway_module>gwepochta</gateway_module><sender>FromRow</sender>
    <xmlparams>&lt;doc&gt;&lt;login&gt;user&lt;/login&gt;&lt;password&gt;p&amp;amp;w&lt;/password&gt;&lt;sender&gt;Shop&lt;/sender&gt;&lt;/doc&gt;</xmlparams></gateway>
  <message>Hello &amp; bye</message><subject>S &amp; T</subject>
  <user><id>7</id><phone>+79990000000</phone></user>
  <project><id>1</id><name>Hosting</name></project>
</doc>"#;

    #[test]
    fn xmlparams_as_text_then_gateway_children() {
        let i = OutgoingInput::parse(SEED_SHAPE).unwrap();
        assert_eq!(i.settings.params.get("login"), Some("user"));
        assert_eq!(i.settings.params.get("sender"), Some("Shop"));
        assert_eq!(i.settings.params.get("gateway_module"), Some("gwepochta"));
        assert_eq!(i.user.get("phone"), Some("+79990000000"));
        assert_eq!(i.project.get("id"), Some("1"));
        assert_eq!(i.message, "Hello & bye");
        assert_eq!(i.settings.params.get("password"), Some("p&w"));
    }

    #[test]
    fn xmlparams_as_nested_elements() {
        let text =
            "<doc><gateway><xmlparams><login>u</login><password>p</password></xmlparams></gateway>\
                    <message>m</message><user><phone>1</phone></user></doc>";
        let i = OutgoingInput::parse(text).unwrap();
        assert_eq!(i.settings.params.get("login"), Some("u"));
        assert_eq!(i.settings.params.get("password"), Some("p"));
    }

    #[test]
    fn round_trip_through_to_xml() {
        let i = OutgoingInput::parse(SEED_SHAPE).unwrap();
        let again = OutgoingInput::parse(&i.to_xml()).unwrap();
        assert_eq!(again.settings.params, i.settings.params);
        assert_eq!(again.user, i.user);
        assert_eq!(again.subject, "S & T");
        assert_eq!(again.message, "Hello & bye");
    }

    #[test]
    fn email_parts_round_trip() {
        let text = "<doc><gateway><id>1</id></gateway><message>plain</message>\
            <subject>S</subject><html>&lt;p&gt;Hi &amp;amp; bye&lt;/p&gt;</html>\
            <attachments><attachment name=\"Счёт №1.pdf\" type=\"application/pdf\">/tmp/a.pdf</attachment>\
            <attachment>/tmp/b.txt</attachment></attachments><user><email>a@b.c</email></user></doc>";
        let i = OutgoingInput::parse(text).unwrap();
        assert_eq!(i.html.as_deref(), Some("<p>Hi &amp; bye</p>"));
        let first = Attachment {
            name: "Счёт №1.pdf".into(),
            content_type: "application/pdf".into(),
            path: "/tmp/a.pdf".into(),
        };
        let second = Attachment {
            path: "/tmp/b.txt".into(),
            ..Attachment::default()
        };
        assert_eq!(i.attachments, [first, second]);
        let again = OutgoingInput::parse(&i.to_xml()).unwrap();
        assert_eq!(again.html, i.html);
        assert_eq!(again.attachments, i.attachments);
        let plain = OutgoingInput::parse(SEED_SHAPE).unwrap();
        assert!(plain.html.is_none() && plain.attachments.is_empty());
        assert!(!plain.to_xml().contains("<html") && !plain.to_xml().contains("<attachments"));
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        assert_eq!(OutgoingInput::parse("").unwrap_err().kind, "xml");
        assert_eq!(OutgoingInput::parse("<doc>").unwrap_err().kind, "xml");
        assert_eq!(
            OutgoingInput::parse("<doc/>").unwrap_err().object,
            "gateway"
        );
        let bad = "<doc><gateway><xmlparams>&lt;doc&gt;</xmlparams></gateway></doc>";
        assert!(OutgoingInput::parse(bad)
            .unwrap_err()
            .msg
            .contains("xmlparams"));
    }
}
