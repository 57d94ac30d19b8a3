//! Header names: the ones sihai acts on get an enum variant so lookups compare integers,
//! and every long or compact spelling (RFC 3261 §7.3.3, §20; RFC 3265, 3515, 3892, 4028,
//! 4474) maps to the same variant. Anything else is `Other` and is kept as written.

/// A header name, case-insensitively recognised. `Other` headers keep their spelling in
/// the message and are matched by text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Accept,
    AcceptContact,
    Allow,
    AllowEvents,
    Authorization,
    CallId,
    Contact,
    ContentDisposition,
    ContentEncoding,
    ContentLength,
    ContentType,
    CSeq,
    Date,
    Diversion,
    Event,
    Expires,
    From,
    HistoryInfo,
    Identity,
    IdentityInfo,
    MaxForwards,
    MinExpires,
    PAssertedIdentity,
    Privacy,
    ProxyAuthenticate,
    ProxyAuthorization,
    ProxyRequire,
    RAck,
    Reason,
    RecordRoute,
    ReferTo,
    ReferredBy,
    RejectContact,
    RequestDisposition,
    Require,
    RetryAfter,
    Route,
    RSeq,
    Server,
    SessionExpires,
    Subject,
    Supported,
    Timestamp,
    To,
    Unsupported,
    UserAgent,
    Via,
    Warning,
    WwwAuthenticate,
    Other,
}

use HeaderName::*;

/// Long names, in the spelling we write.
const LONG: &[(&str, HeaderName)] = &[
    ("Accept", Accept),
    ("Accept-Contact", AcceptContact),
    ("Allow", Allow),
    ("Allow-Events", AllowEvents),
    ("Authorization", Authorization),
    ("Call-ID", CallId),
    ("Contact", Contact),
    ("Content-Disposition", ContentDisposition),
    ("Content-Encoding", ContentEncoding),
    ("Content-Length", ContentLength),
    ("Content-Type", ContentType),
    ("CSeq", CSeq),
    ("Date", Date),
    ("Diversion", Diversion),
    ("Event", Event),
    ("Expires", Expires),
    ("From", From),
    ("History-Info", HistoryInfo),
    ("Identity", Identity),
    ("Identity-Info", IdentityInfo),
    ("Max-Forwards", MaxForwards),
    ("Min-Expires", MinExpires),
    ("P-Asserted-Identity", PAssertedIdentity),
    ("Privacy", Privacy),
    ("Proxy-Authenticate", ProxyAuthenticate),
    ("Proxy-Authorization", ProxyAuthorization),
    ("Proxy-Require", ProxyRequire),
    ("RAck", RAck),
    ("Reason", Reason),
    ("Record-Route", RecordRoute),
    ("Refer-To", ReferTo),
    ("Referred-By", ReferredBy),
    ("Reject-Contact", RejectContact),
    ("Request-Disposition", RequestDisposition),
    ("Require", Require),
    ("Retry-After", RetryAfter),
    ("Route", Route),
    ("RSeq", RSeq),
    ("Server", Server),
    ("Session-Expires", SessionExpires),
    ("Subject", Subject),
    ("Supported", Supported),
    ("Timestamp", Timestamp),
    ("To", To),
    ("Unsupported", Unsupported),
    ("User-Agent", UserAgent),
    ("Via", Via),
    ("Warning", Warning),
    ("WWW-Authenticate", WwwAuthenticate),
];

impl HeaderName {
    /// Recognises a name as received (any case, long or compact form).
    pub fn parse(name: &str) -> HeaderName {
        if name.len() == 1 {
            return match name.as_bytes()[0].to_ascii_lowercase() {
                b'a' => AcceptContact,
                b'b' => ReferredBy,
                b'c' => ContentType,
                b'd' => RequestDisposition,
                b'e' => ContentEncoding,
                b'f' => From,
                b'i' => CallId,
                b'j' => RejectContact,
                b'k' => Supported,
                b'l' => ContentLength,
                b'm' => Contact,
                b'n' => IdentityInfo,
                b'o' => Event,
                b'r' => ReferTo,
                b's' => Subject,
                b't' => To,
                b'u' => AllowEvents,
                b'v' => Via,
                b'x' => SessionExpires,
                b'y' => Identity,
                _ => Other,
            };
        }
        // Only names of the same length can match, so bucket by length first: a
        // message has ~15 header lines and this runs for every one.
        let candidates: &[(&str, HeaderName)] = match name.len() {
            2 => &[("To", To)],
            3 => &[("Via", Via)],
            4 => &[
                ("From", From),
                ("CSeq", CSeq),
                ("Date", Date),
                ("RAck", RAck),
                ("RSeq", RSeq),
            ],
            5 => &[("Allow", Allow), ("Route", Route), ("Event", Event)],
            6 => &[("Accept", Accept), ("Reason", Reason), ("Server", Server)],
            7 => &[
                ("Call-ID", CallId),
                ("Contact", Contact),
                ("Expires", Expires),
                ("Privacy", Privacy),
                ("Require", Require),
                ("Subject", Subject),
                ("Warning", Warning),
            ],
            8 => &[("Identity", Identity), ("Refer-To", ReferTo)],
            9 => &[
                ("Supported", Supported),
                ("Timestamp", Timestamp),
                ("Diversion", Diversion),
            ],
            10 => &[("User-Agent", UserAgent)],
            11 => &[
                ("Retry-After", RetryAfter),
                ("Referred-By", ReferredBy),
                ("Unsupported", Unsupported),
                ("Min-Expires", MinExpires),
            ],
            12 => &[
                ("Max-Forwards", MaxForwards),
                ("Content-Type", ContentType),
                ("Record-Route", RecordRoute),
                ("Allow-Events", AllowEvents),
                ("History-Info", HistoryInfo),
            ],
            13 => &[
                ("Authorization", Authorization),
                ("Proxy-Require", ProxyRequire),
                ("Identity-Info", IdentityInfo),
            ],
            14 => &[
                ("Content-Length", ContentLength),
                ("Accept-Contact", AcceptContact),
                ("Reject-Contact", RejectContact),
            ],
            15 => &[("Session-Expires", SessionExpires)],
            16 => &[
                ("Content-Encoding", ContentEncoding),
                ("WWW-Authenticate", WwwAuthenticate),
            ],
            18 => &[("Proxy-Authenticate", ProxyAuthenticate)],
            19 => &[
                ("Proxy-Authorization", ProxyAuthorization),
                ("P-Asserted-Identity", PAssertedIdentity),
                ("Content-Disposition", ContentDisposition),
                ("Request-Disposition", RequestDisposition),
            ],
            _ => &[],
        };
        for &(long, header) in candidates {
            if long.eq_ignore_ascii_case(name) {
                return header;
            }
        }
        Other
    }

    /// The canonical long spelling; `None` for `Other`, whose spelling lives in the message.
    pub fn as_str(self) -> Option<&'static str> {
        LONG.iter().find(|(_, h)| *h == self).map(|(s, _)| *s)
    }

    /// Headers whose grammar is a comma-separated list, so that several values may share
    /// one header line (RFC 3261 §7.3.1). Others (e.g. `Date`, `WWW-Authenticate`)
    /// contain commas as part of a single value.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Via | Route
                | RecordRoute
                | Contact
                | Allow
                | Supported
                | Require
                | ProxyRequire
                | Unsupported
                | Accept
                | AllowEvents
                | ContentEncoding
                | Diversion
                | HistoryInfo
                | PAssertedIdentity
                | Warning
                | AcceptContact
                | RejectContact
                | RequestDisposition
        )
    }

    /// Headers a request or response may carry at most once.
    pub fn is_single(self) -> bool {
        matches!(
            self,
            CallId | CSeq | From | To | MaxForwards | ContentLength | ContentType | Expires
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_compact_forms_agree() {
        for (compact, long) in [
            ("v", "Via"),
            ("i", "Call-ID"),
            ("f", "From"),
            ("t", "To"),
            ("m", "Contact"),
            ("l", "Content-Length"),
            ("c", "Content-Type"),
            ("k", "Supported"),
            ("s", "Subject"),
            ("e", "Content-Encoding"),
            ("o", "Event"),
            ("u", "Allow-Events"),
            ("r", "Refer-To"),
            ("b", "Referred-By"),
            ("x", "Session-Expires"),
            ("y", "Identity"),
        ] {
            assert_eq!(
                HeaderName::parse(compact),
                HeaderName::parse(long),
                "{compact}"
            );
            assert_eq!(
                HeaderName::parse(&compact.to_uppercase()),
                HeaderName::parse(long)
            );
            assert_ne!(HeaderName::parse(long), Other, "{long}");
        }
    }

    #[test]
    fn case_insensitive_and_canonical() {
        assert_eq!(HeaderName::parse("cAlL-iD"), CallId);
        assert_eq!(HeaderName::parse("cseq"), CSeq);
        assert_eq!(CallId.as_str(), Some("Call-ID"));
        assert_eq!(HeaderName::parse("X-Custom"), Other);
        assert_eq!(Other.as_str(), None);
        assert_eq!(HeaderName::parse("q"), Other);
    }

    #[test]
    fn every_variant_but_other_has_a_spelling() {
        for &(long, header) in LONG {
            assert_eq!(HeaderName::parse(long), header);
            assert_eq!(header.as_str(), Some(long));
        }
    }
}
