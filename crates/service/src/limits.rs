//! The bounds of what a request may carry, checked at the edge: one place
//! for every service's sizes, lengths and counts.
//!
//! The transport refuses anything over [`MAX_MESSAGE_BYTES`] before a
//! handler runs ([`crate::transport`]); the handlers then check each string
//! and repeated field they take from a request with [`id`], [`text`],
//! [`document`] and [`each_id`], and turn a [`Violation`] into their own
//! INVALID_ARGUMENT error naming the field (`Error::invalid(v.field,
//! v.message)`). The checks run before anything is read or written, so a
//! refused request changes nothing.
//!
//! A violation never quotes the value (it may be a megabyte): it says how
//! long it is, or which character is not allowed, and the limit.

/// The largest gRPC message any server or client sends or accepts: 4 MiB.
///
/// What a message carries at most is a list page (1000 tiles or roll-outs,
/// [`crate::paging`]) or one tile with its configuration document. A
/// Partner Connect document is a few KiB (the largest fixture is 1.2 KiB)
/// and is refused over [`MAX_DOCUMENT_BYTES`]; every write is one etcd
/// transaction, which etcd refuses over 1.5 MiB (`--max-request-bytes`'
/// default). 4 MiB is then above anything a correct peer sends, and it is
/// also tonic's decoding default, made explicit and applied to encoding as
/// well (tonic encodes without a limit by default).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The largest Partner Connect configuration document accepted: 256 KiB.
///
/// A write stores the document (in the revision) and its parsed form (in
/// the tile) in one etcd transaction, limited to 1.5 MiB by default; 256
/// KiB leaves room for both and the audit record, and is still two orders
/// of magnitude above a real document (a few KiB: names, URLs, a
/// description of at most a few paragraphs, file names of the images).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The longest id (tile, roll-out, partner, region, workspace): 253
/// characters, an etcd key segment's limit (`tilewave_store::keys`).
pub const MAX_ID_CHARS: usize = 253;

/// The longest free text (a note, a reason): 4096 characters, a few
/// paragraphs. Kept in audit records and shown in lists.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The most entries of a repeated field naming regions or states: 1024.
/// The region catalog ships 70 regions (`crates/core/regions.toml`); a list
/// longer than the catalog many times over is not a mistake worth planning.
pub const MAX_LIST_ITEMS: usize = 1024;

/// One bounded field that is out of bounds: the field (a request path such
/// as `spec.regions[3]`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Violation {
    /// The request field, e.g. `reason` or `spec.exclude_regions[2]`.
    pub field: String,
    /// What is wrong, with the limit.
    pub message: String,
}

impl Violation {
    fn new(field: &str, message: String) -> Self {
        Self {
            field: field.to_owned(),
            message,
        }
    }
}

/// An id: at most [`MAX_ID_CHARS`] characters, no control characters and
/// no whitespace. Empty is allowed here (whether it is required is the
/// handler's rule).
pub fn id(field: &str, value: &str) -> Result<(), Violation> {
    bounded(field, value, MAX_ID_CHARS)?;
    if let Some((at, c)) = value
        .char_indices()
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        return Err(Violation::new(
            field,
            format!("{} at byte {at} is not allowed in an id", c.escape_unicode()),
        ));
    }
    Ok(())
}

/// Free text (a note, a reason): at most [`MAX_TEXT_CHARS`] characters; no
/// control characters other than tab and line ends (`\n`, `\r`).
pub fn text(field: &str, value: &str) -> Result<(), Violation> {
    bounded(field, value, MAX_TEXT_CHARS)?;
    if let Some((at, c)) = value
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Violation::new(
            field,
            format!(
                "control character {} at byte {at} is not allowed",
                c.escape_unicode()
            ),
        ));
    }
    Ok(())
}

/// A configuration document: at most [`MAX_DOCUMENT_BYTES`] bytes.
pub fn document(field: &str, value: &str) -> Result<(), Violation> {
    if value.len() > MAX_DOCUMENT_BYTES {
        return Err(Violation::new(
            field,
            format!(
                "the document is {} bytes; at most {MAX_DOCUMENT_BYTES} are accepted",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// A repeated field: at most `max` entries.
pub fn count(field: &str, len: usize, max: usize) -> Result<(), Violation> {
    if len > max {
        return Err(Violation::new(
            field,
            format!("{len} entries; at most {max} are accepted"),
        ));
    }
    Ok(())
}

/// A repeated field of ids (regions, ...): at most [`MAX_LIST_ITEMS`]
/// entries, each an [`id`] (named `field[i]`).
pub fn each_id(field: &str, values: &[String]) -> Result<(), Violation> {
    count(field, values.len(), MAX_LIST_ITEMS)?;
    for (i, v) in values.iter().enumerate() {
        id(&format!("{field}[{i}]"), v)?;
    }
    Ok(())
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), Violation> {
    // Counting characters of a megabyte string is cheap, but bytes bound
    // characters from above, so most values need no count at all.
    if value.len() > max {
        let chars = value.chars().count();
        if chars > max {
            return Err(Violation::new(
                field,
                format!("{chars} characters; at most {max} are accepted"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["", "riverflow-ingest", "aws:us-east-1", &"é".repeat(MAX_ID_CHARS)] {
            assert_eq!(id("id", ok), Ok(()), "{ok:?}");
        }
        let long = "a".repeat(MAX_ID_CHARS + 1);
        for (bad, says) in [
            (long.as_str(), "254 characters; at most 253"),
            ("a b", "\\u{20} at byte 1"),
            ("a\nb", "\\u{a} at byte 1"),
            ("\0", "\\u{0} at byte 0"),
        ] {
            let v = id("spec.tile_id", bad).unwrap_err();
            assert_eq!(v.field, "spec.tile_id");
            assert!(v.message.contains(says), "{bad:?}: {}", v.message);
        }
    }

    #[test]
    fn texts() {
        for ok in [
            "",
            "rolled back: p99 up\r\n\tsee the dashboard",
            &"é".repeat(MAX_TEXT_CHARS),
        ] {
            assert_eq!(text("reason", ok), Ok(()));
        }
        let v = text("reason", &"x".repeat(MAX_TEXT_CHARS + 1)).unwrap_err();
        assert_eq!(
            v.to_string(),
            "reason: 4097 characters; at most 4096 are accepted"
        );
        let v = text("note", "a\u{1b}[2J").unwrap_err();
        assert_eq!(
            v.to_string(),
            "note: control character \\u{1b} at byte 1 is not allowed"
        );
    }

    #[test]
    fn documents_and_lists() {
        assert_eq!(document("config_json", &"x".repeat(MAX_DOCUMENT_BYTES)), Ok(()));
        let v = document("config_json", &"x".repeat(MAX_DOCUMENT_BYTES + 1)).unwrap_err();
        assert!(v.message.contains("262145 bytes"), "{v}");

        let regions: Vec<String> = vec!["aws:us-east-1".into(), "gcp:bad region".into()];
        assert_eq!(each_id("regions", &regions[..1]), Ok(()));
        assert_eq!(each_id("regions", &regions).unwrap_err().field, "regions[1]");
        let many = vec![String::new(); MAX_LIST_ITEMS + 1];
        let v = each_id("spec.exclude_regions", &many).unwrap_err();
        assert_eq!(v.field, "spec.exclude_regions");
        assert!(v.message.starts_with("1025 entries"), "{v}");
    }

    #[test]
    fn a_document_fits_a_message() {
        const { assert!(MAX_DOCUMENT_BYTES * 4 < MAX_MESSAGE_BYTES) };
    }
}
