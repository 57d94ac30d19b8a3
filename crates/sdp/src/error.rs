//! Why a session description was refused or could not be negotiated.
//!
//! Parse errors name the 1-based line of the SIP body and what is wrong with it, so a
//! log line is enough to see which carrier device sent what. Negotiation errors map
//! onto SIP answers: every one of them means "488 Not Acceptable Here" for an offer.

/// The longest piece of peer-supplied text quoted back in an error, in characters:
/// enough to recognise the line, not enough to flood a log with a hostile body.
const EXCERPT_CHARS: usize = 64;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body holds no line at all.
    #[error("SDP is empty")]
    Empty,
    /// A line is malformed or in the wrong place.
    #[error("SDP line {line}: {problem}")]
    Syntax {
        /// 1-based line number in the body as received (blank lines count).
        line: usize,
        /// What is wrong with it.
        problem: SyntaxProblem,
    },
    /// A line that every description must have is absent.
    #[error("SDP has no `{line_type}=` line")]
    MissingLine {
        /// The type letter of the missing line.
        line_type: char,
    },
    /// No audio m= line has a non-zero port, an RTP profile and an IP address.
    #[error(
        "SDP has no usable audio stream (an audio m= line with a non-zero port, an RTP profile and an IP address)"
    )]
    NoAudio,
    /// The only usable audio uses SRTP, which the relay does not terminate.
    #[error("the audio stream uses secure RTP (`{profile}`), which the relay does not terminate")]
    SecureMedia {
        /// The m= line's protocol, e.g. `RTP/SAVP`.
        profile: String,
    },
    /// The audio stream offers (or answers) none of the codecs we accept.
    #[error("none of the audio formats `{formats}` is a codec we accept")]
    NoCommonCodec {
        /// The m= line's formats, space separated, as received.
        formats: String,
    },
    /// [`crate::LocalAudio::codecs`] is empty, so there is nothing to offer.
    #[error("no codec to offer: the local codec list is empty")]
    NoLocalCodec,
    /// Our own telephone-event payload type would clash with a static one.
    #[error("telephone-event payload type {payload_type} is outside the dynamic range 96-127")]
    TelephoneEventPayloadType {
        /// The payload type asked for.
        payload_type: u8,
    },
}

/// What is wrong with one line; carried by [`SdpError::Syntax`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxProblem {
    /// The line is not `<letter>=<value>`.
    #[error("expected `<type>=<value>` with a one-letter type, found `{text}`")]
    NotATypedLine {
        /// The start of the line.
        text: String,
    },
    /// The first line is not `v=`.
    #[error("SDP must start with `v=0`, found `{text}`")]
    VersionNotFirst {
        /// The start of the first line.
        text: String,
    },
    /// `v=` holds something other than 0, the only version there is.
    #[error("unsupported SDP version `{version}`, only 0 exists")]
    UnsupportedVersion {
        /// The value of the `v=` line.
        version: String,
    },
    /// A line that may appear once per section appears again.
    #[error("a second `{line_type}=` line where only one is allowed")]
    Duplicate {
        /// Its type letter.
        line_type: char,
    },
    /// A session-level line (`o=`, `s=`, `t=`, ...) after the first `m=`.
    #[error("`{line_type}=` belongs to the session level, before the first `m=` line")]
    SessionLineInMedia {
        /// Its type letter.
        line_type: char,
    },
    /// `r=` repeats a `t=` that is not there.
    #[error("`r=` without a preceding `t=`")]
    RepeatWithoutTiming,
    /// The line has too few or too many space-separated fields.
    #[error("`{line_type}=` needs {expected}, found `{text}`")]
    WrongFieldCount {
        /// Its type letter.
        line_type: char,
        /// The fields the line must have.
        expected: &'static str,
        /// The start of the value.
        text: String,
    },
    /// A numeric field is not a number in range.
    #[error("{field} `{value}` is not a valid number")]
    NotANumber {
        /// Which field, e.g. `m= port`.
        field: &'static str,
        /// The start of the field.
        value: String,
    },
    /// A network type other than `IN`.
    #[error("unknown network type `{value}`, only IN is defined")]
    UnknownNetworkType {
        /// The start of the field.
        value: String,
    },
    /// An address type other than `IP4` or `IP6`.
    #[error("unknown address type `{value}`, expected IP4 or IP6")]
    UnknownAddressType {
        /// The start of the field.
        value: String,
    },
}

/// Quotes at most [`EXCERPT_CHARS`] characters of peer-supplied text.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(excerpt("a=sendrecv"), "a=sendrecv");
        let long = "é".repeat(100);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 3);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn syntax_errors_name_the_line_and_the_problem() {
        let err = SdpError::Syntax {
            line: 5,
            problem: SyntaxProblem::NotANumber {
                field: "m= port",
                value: "abc".into(),
            },
        };
        assert_eq!(
            err.to_string(),
            "SDP line 5: m= port `abc` is not a valid number"
        );
    }
}
