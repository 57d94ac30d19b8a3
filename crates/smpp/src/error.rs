//! Why bytes could not be read as a PDU, or a PDU could not be written.

use thiserror::Error;

/// Every malformed input has its own variant, so a log line names the fault and the
/// field; decoding never panics (the property tests feed it arbitrary bytes).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PduError {
    #[error("command_length {length} is below the 16-octet header")]
    LengthTooShort { length: u32 },
    #[error("command_length {length} exceeds the limit of {max} octets")]
    LengthTooLong { length: u32, max: u32 },
    #[error("PDU is {actual} octets but its command_length says {declared}")]
    LengthMismatch { declared: u32, actual: usize },
    #[error("unknown command_id {command_id:#010x} (sequence {sequence_number})")]
    UnknownCommand {
        command_id: u32,
        sequence_number: u32,
    },
    #[error("body of {command} ends inside field {field}")]
    Truncated {
        command: &'static str,
        field: &'static str,
    },
    #[error("field {field} of {command} has no NUL within its {max} octets")]
    UnterminatedString {
        command: &'static str,
        field: &'static str,
        max: usize,
    },
    #[error("field {field} of {command} is not valid text")]
    NotText {
        command: &'static str,
        field: &'static str,
    },
    #[error("{count} octets follow the body of {command}")]
    TrailingOctets { command: &'static str, count: usize },
    #[error("field {field} is {length} octets; at most {max} fit (without its NUL)")]
    FieldTooLong {
        field: &'static str,
        length: usize,
        max: usize,
    },
    #[error("field {field} contains a NUL octet")]
    NulInString { field: &'static str },
    #[error("TLV {tag:#06x} of {command} declares {declared} octets but {available} remain")]
    TlvTruncated {
        command: &'static str,
        tag: u16,
        declared: u16,
        available: usize,
    },
    #[error("TLV {tag:#06x} value is {length} octets; at most 65535 fit")]
    TlvTooLong { tag: u16, length: usize },
    #[error("short_message is {length} octets; at most 254 fit")]
    ShortMessageTooLong { length: usize },
}

/// Why a text could not be turned into submit_sm parts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("the text is empty")]
    Empty,
    #[error("the text needs {parts} parts; a concatenated message has at most 255")]
    TooManyParts { parts: usize },
}

/// Why [`Session::submit`](crate::Session::submit) refused a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubmitError {
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Pdu(#[from] PduError),
    #[error("message {0} is already pending")]
    DuplicateKey(u64),
    #[error("the session is closed (unbound on request); it sends nothing more")]
    Closed,
}
