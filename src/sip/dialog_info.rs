//! The dialog event package's body (RFC 4235 §4, `application/dialog-info+xml`): what a
//! NOTIFY says about the calls of a watched extension, and what that means for a busy lamp
//! and for call pickup.
//!
//! Parsing is tolerant of what PBXes send (a missing or foreign namespace, elements in any
//! order, unknown elements and attributes ignored) and never panics; a body that is not XML
//! or has no `dialog-info` root is an error. This module does no I/O.

use serde::Serialize;

/// The content type of a dialog-info body.
pub const CONTENT_TYPE: &str = "application/dialog-info+xml";

/// What a busy lamp shows for an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlfState {
    /// No call.
    Idle,
    /// A call rings there (it can be picked up).
    Ringing,
    /// On a call, or placing one.
    Busy,
    /// Not known: not subscribed yet, refused, or the subscription failed.
    Unknown,
}

/// Whether the watched extension placed or received a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It placed the call (it sent the INVITE).
    Initiator,
    /// It received the call.
    Recipient,
}

/// The state of one dialog (RFC 4235 §3.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// INVITE sent or received, no answer yet.
    Trying,
    /// A provisional response without a To tag.
    Proceeding,
    /// A provisional response with a To tag: ringing.
    Early,
    /// Answered.
    Confirmed,
    /// Over.
    Terminated,
}

/// One `<dialog>` element, as seen from the watched extension (the entity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogEntry {
    /// The `id` attribute.
    pub id: String,
    /// `call-id`, when the notifier reveals it.
    pub call_id: Option<String>,
    /// `local-tag`: the entity's tag in that dialog.
    pub local_tag: Option<String>,
    /// `remote-tag`: the other party's tag.
    pub remote_tag: Option<String>,
    /// `direction`, when given.
    pub role: Option<Role>,
    /// The `<state>` element.
    pub state: DialogState,
    /// The other party: `<remote><target uri>`, else `<remote><identity>`.
    pub remote_uri: Option<String>,
}

/// A whole `<dialog-info>` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogInfo {
    /// The `version` attribute (increases with every NOTIFY of a subscription).
    pub version: Option<u64>,
    /// `state="full"` (true) or `partial` (false).
    pub full: bool,
    /// The `entity` attribute: whose dialogs these are.
    pub entity: Option<String>,
    /// The dialogs.
    pub dialogs: Vec<DialogEntry>,
}

/// Why a dialog-info body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogInfoError {
    /// Not well-formed XML.
    #[error("the dialog-info body is not well-formed XML: {0}")]
    Xml(String),
    /// The root element is not `dialog-info`.
    #[error("the body's root element is `{0}`, not dialog-info")]
    NotDialogInfo(String),
}

/// The most dialogs read from one body; the rest are ignored.
const MAX_DIALOGS: usize = 64;

/// Parses a dialog-info body. Dialogs without an `id` or a known `<state>` are skipped.
pub fn parse(body: &str) -> Result<DialogInfo, DialogInfoError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(body, opts)
        .map_err(|e| DialogInfoError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "dialog-info" {
        return Err(DialogInfoError::NotDialogInfo(
            root.tag_name().name().chars().take(40).collect(),
        ));
    }
    let dialogs = root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "dialog")
        .filter_map(dialog_entry)
        .take(MAX_DIALOGS)
        .collect();
    Ok(DialogInfo {
        version: root
            .attribute("version")
            .and_then(|v| v.trim().parse().ok()),
        full: !root
            .attribute("state")
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("partial")),
        entity: root.attribute("entity").map(|e| e.trim().to_string()),
        dialogs,
    })
}

/// One `<dialog>` element, or `None` when it lacks an id or a known state.
fn dialog_entry(node: roxmltree::Node<'_, '_>) -> Option<DialogEntry> {
    let id = node.attribute("id")?.trim().to_string();
    let state = match child(node, "state")?
        .text()?
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "trying" => DialogState::Trying,
        "proceeding" => DialogState::Proceeding,
        "early" => DialogState::Early,
        "confirmed" => DialogState::Confirmed,
        "terminated" => DialogState::Terminated,
        _ => return None,
    };
    let role = match node.attribute("direction").map(str::trim) {
        Some(d) if d.eq_ignore_ascii_case("initiator") => Some(Role::Initiator),
        Some(d) if d.eq_ignore_ascii_case("recipient") => Some(Role::Recipient),
        _ => None,
    };
    let attr = |name: &str| {
        node.attribute(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let remote_uri = child(node, "remote").and_then(|remote| {
        let target = child(remote, "target")
            .and_then(|t| t.attribute("uri"))
            .map(str::trim);
        let identity = child(remote, "identity")
            .and_then(|i| i.text())
            .map(str::trim);
        target
            .or(identity)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
    });
    Some(DialogEntry {
        id,
        call_id: attr("call-id"),
        local_tag: attr("local-tag"),
        remote_tag: attr("remote-tag"),
        role,
        state,
        remote_uri,
    })
}

/// The first child element called `name` (any namespace).
fn child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

impl DialogEntry {
    /// True while a call rings at the entity: it received the call (or the direction is not
    /// given) and the dialog is not yet answered.
    pub fn is_ringing_here(&self) -> bool {
        self.role != Some(Role::Initiator)
            && matches!(
                self.state,
                DialogState::Trying | DialogState::Proceeding | DialogState::Early
            )
    }
}

/// The lamp for a set of dialogs: ringing when a call rings there (even while on another
/// call: that is the one the operator can pick up), else busy when a dialog is answered or
/// the entity is placing a call, else idle.
pub fn lamp<'a>(dialogs: impl IntoIterator<Item = &'a DialogEntry>) -> BlfState {
    let mut busy = false;
    for d in dialogs {
        if d.is_ringing_here() {
            return BlfState::Ringing;
        }
        busy |= d.state != DialogState::Terminated;
    }
    if busy {
        BlfState::Busy
    } else {
        BlfState::Idle
    }
}

/// Applies a NOTIFY's document to the dialogs known so far: a full document replaces them,
/// a partial one updates by id; terminated dialogs are dropped either way.
pub fn merge(known: &mut Vec<DialogEntry>, info: DialogInfo) {
    if info.full {
        known.clear();
    }
    for d in info.dialogs {
        known.retain(|k| k.id != d.id);
        if d.state != DialogState::Terminated && known.len() < MAX_DIALOGS {
            known.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4235 §4.3, first NOTIFY: Alice's INVITE is out.
    const RFC_TRYING: &str = r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
             version="0" state="full"
             entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710"
          local-tag="1928301774" direction="initiator">
    <state>trying</state>
  </dialog>
</dialog-info>"#;

    /// RFC 4235 §4.3, full example with participants and an event attribute on state.
    const RFC_FULL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
    version="1" state="full" entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710"
          local-tag="1928301774" remote-tag="456887766"
          direction="initiator">
    <state event="replaced">confirmed</state>
    <duration>274</duration>
    <local>
      <identity display="Alice">sip:alice@example.com</identity>
      <target uri="sip:alice@pc33.example.com">
        <param pname="+sip.rendering" pvalue="yes"/>
      </target>
    </local>
    <remote>
      <identity display="Bob">sip:bob@example.org</identity>
      <target uri="sip:bobster@phone21.example.org"/>
    </remote>
  </dialog>
  <dialog id="4" call-id="98asjd8" local-tag="1000" remote-tag="2000">
    <state code="486" event="rejected">terminated</state>
  </dialog>
</dialog-info>"#;

    /// What kamailio's pua_dialoginfo publishes (and presence_dialoginfo notifies) for the
    /// callee while it rings: call-id and both tags, caller as remote.
    const KAMAILIO_EARLY: &str = r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="sip:201@lab.example">
  <dialog id="6b8b4567-327b23c6" call-id="327b23c6-643c9869@10.0.0.5" local-tag="as4f1a9" remote-tag="0a1b2c3d" direction="recipient">
    <state>early</state>
    <remote>
      <identity display="Operator">sip:200@lab.example</identity>
      <target uri="sip:200@lab.example"/>
    </remote>
    <local>
      <identity>sip:201@lab.example</identity>
      <target uri="sip:201@lab.example"/>
    </local>
  </dialog>
</dialog-info>"#;

    /// kamailio presence_dialoginfo for an extension with no call (aggregated, no dialogs).
    const KAMAILIO_IDLE: &str = r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="4" state="full" entity="sip:201@lab.example"/>"#;

    /// The shape Asterisk (res_pjsip) sends: namespace prefix-free, no call-id or tags on a
    /// ringing dialog, state `early` with direction `recipient`.
    const ASTERISK_RINGING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="2" state="full" entity="sip:201@192.168.1.10">
 <dialog id="201" direction="recipient">
  <state>early</state>
  <remote>
   <identity display="100">sip:100@192.168.1.10</identity>
   <target uri="sip:100@192.168.1.10"/>
  </remote>
  <local>
   <identity display="201">sip:201@192.168.1.10</identity>
   <target uri="sip:201@192.168.1.10"/>
  </local>
 </dialog>
</dialog-info>"#;

    /// A Yealink phone's partial NOTIFY: one dialog ended.
    const YEALINK_PARTIAL: &str = r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="4" state="partial"
entity="sip:1000@10.2.1.48:5060">
<dialog id="65644">
<state>terminated</state>
</dialog>
</dialog-info>"#;

    #[test]
    fn rfc_examples() {
        let info = parse(RFC_TRYING).expect("RFC example parses");
        assert_eq!(info.version, Some(0));
        assert!(info.full);
        assert_eq!(info.entity.as_deref(), Some("sip:alice@example.com"));
        assert_eq!(info.dialogs.len(), 1);
        let d = &info.dialogs[0];
        assert_eq!(d.state, DialogState::Trying);
        assert_eq!(d.role, Some(Role::Initiator));
        assert_eq!(d.call_id.as_deref(), Some("a84b4c76e66710"));
        assert_eq!(d.local_tag.as_deref(), Some("1928301774"));
        assert_eq!(d.remote_tag, None);
        assert_eq!(
            lamp(&info.dialogs),
            BlfState::Busy,
            "placing a call is busy"
        );

        let info = parse(RFC_FULL).expect("RFC example parses");
        assert_eq!(info.dialogs.len(), 2);
        assert_eq!(info.dialogs[0].state, DialogState::Confirmed);
        assert_eq!(
            info.dialogs[0].remote_uri.as_deref(),
            Some("sip:bobster@phone21.example.org"),
            "the remote target wins over the identity"
        );
        assert_eq!(info.dialogs[1].state, DialogState::Terminated);
        assert_eq!(info.dialogs[1].role, None);
        assert_eq!(lamp(&info.dialogs), BlfState::Busy);
    }

    #[test]
    fn kamailio_and_asterisk_bodies() {
        let info = parse(KAMAILIO_EARLY).expect("parses");
        let d = &info.dialogs[0];
        assert!(d.is_ringing_here());
        assert_eq!(d.call_id.as_deref(), Some("327b23c6-643c9869@10.0.0.5"));
        assert_eq!(d.local_tag.as_deref(), Some("as4f1a9"));
        assert_eq!(d.remote_tag.as_deref(), Some("0a1b2c3d"));
        assert_eq!(d.remote_uri.as_deref(), Some("sip:200@lab.example"));
        assert_eq!(lamp(&info.dialogs), BlfState::Ringing);

        let idle = parse(KAMAILIO_IDLE).expect("parses");
        assert!(idle.dialogs.is_empty());
        assert_eq!(lamp(&idle.dialogs), BlfState::Idle);

        let info = parse(ASTERISK_RINGING).expect("parses");
        assert_eq!(lamp(&info.dialogs), BlfState::Ringing);
        assert_eq!(
            info.dialogs[0].call_id, None,
            "Asterisk hides the call's identity"
        );
    }

    #[test]
    fn partial_updates_merge_by_id() {
        let mut known = Vec::new();
        merge(&mut known, parse(RFC_FULL).expect("parses"));
        assert_eq!(known.len(), 1, "terminated dialogs are not kept");
        let ringing = parse(KAMAILIO_EARLY).expect("parses");
        let mut partial = ringing.clone();
        partial.full = false;
        merge(&mut known, partial);
        assert_eq!(known.len(), 2);
        assert_eq!(
            lamp(&known),
            BlfState::Ringing,
            "a second call rings while busy"
        );
        let mut end = parse(YEALINK_PARTIAL).expect("parses");
        assert!(!end.full);
        end.dialogs[0].id = "as7d900as8".into();
        merge(&mut known, end);
        assert_eq!(known.len(), 1);
        merge(&mut known, parse(KAMAILIO_IDLE).expect("parses"));
        assert_eq!(
            lamp(&known),
            BlfState::Idle,
            "a full document replaces everything"
        );
    }

    #[test]
    fn tolerance_and_errors() {
        // No namespace, upper-case state and direction, unknown elements, a dialog without id.
        let body = r#"<dialog-info version="9" entity="sip:1@x"><foo/>
            <dialog id="a" direction="RECIPIENT"><state> Early </state><bar x="1"/></dialog>
            <dialog><state>confirmed</state></dialog>
            <dialog id="b"><state>dancing</state></dialog></dialog-info>"#;
        let info = parse(body).expect("parses");
        assert_eq!(info.dialogs.len(), 1);
        assert_eq!(info.dialogs[0].role, Some(Role::Recipient));
        assert_eq!(info.dialogs[0].state, DialogState::Early);
        assert!(matches!(parse("not xml"), Err(DialogInfoError::Xml(_))));
        assert!(matches!(parse(""), Err(DialogInfoError::Xml(_))));
        assert_eq!(
            parse("<presence/>"),
            Err(DialogInfoError::NotDialogInfo("presence".into()))
        );
        let dtd = r#"<!DOCTYPE d [<!ENTITY a "aaaa">]><dialog-info>&a;</dialog-info>"#;
        assert!(parse(dtd).is_err(), "DTDs (entity bombs) are refused");
        // Every prefix of a real body: an error or a document, never a panic.
        for end in 0..KAMAILIO_EARLY.len() {
            if KAMAILIO_EARLY.is_char_boundary(end) {
                let _ = parse(&KAMAILIO_EARLY[..end]);
            }
        }
    }
}
