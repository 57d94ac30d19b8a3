//! Transaction identities: what makes a message belong to a transaction (§17.1.3,
//! §17.2.3).
//!
//! Keys are hashed, so matching is one map lookup rather than a walk over every
//! transaction. Their text parts are `Bytes` slices of the message that created the
//! transaction, so building a key copies nothing; the transaction keeps that message
//! alive anyway. The map uses std's SipHash on purpose: every byte of a key is chosen
//! by the peer.

use std::fmt;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use sihai_sip::{Message, Method, Via};

/// A client transaction: the branch of the top Via we sent and the CSeq method, which
/// tells the INVITE from the CANCEL that shares its branch (§17.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    branch: Bytes,
    method: Bytes,
}

/// A server transaction: branch, sent-by and method of the request's top Via (§17.2.3),
/// or, when the branch lacks the RFC 3261 cookie, the RFC 2543 set of identifying
/// headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey(ServerId);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ServerId {
    Branch {
        branch: Bytes,
        host: NoCase,
        port: Option<u16>,
        method: Bytes,
    },
    /// Boxed: rare, and seven fields would make every key (and every event) larger.
    Legacy(Box<LegacyId>),
}

/// RFC 2543 matching: Request-URI, To tag, From tag, Call-ID, CSeq and top Via. Plain
/// byte equality, as a retransmission is byte-identical in these fields; the §19.1.4
/// URI equivalence rules would buy nothing but cost a parse per request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LegacyId {
    request_uri: Bytes,
    to_tag: Option<Bytes>,
    from_tag: Option<Bytes>,
    call_id: Bytes,
    cseq: u32,
    method: Bytes,
    top_via: Bytes,
}

/// Either kind of key, for events that concern both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    Client(ClientKey),
    Server(ServerKey),
}

/// Which To tag an RFC 2543 key carries: the ACK's own differs from its INVITE's when
/// the INVITE was out of dialog, since only the response added one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToTag {
    AsRequest,
    Absent,
}

impl ClientKey {
    pub(crate) fn new(msg: &Message, branch: &str, method: Method<'_>) -> ClientKey {
        let buf = msg.as_bytes();
        ClientKey {
            branch: share(buf, branch),
            method: method_bytes(buf, method),
        }
    }

    /// The key a response belongs to, if it names a branch and a CSeq method at all.
    pub(crate) fn for_response(msg: &Message) -> Option<ClientKey> {
        let via = msg.top_via().ok()?;
        let branch = via.branch()?;
        let cseq = msg.cseq().ok()?;
        Some(ClientKey::new(msg, branch, cseq.method))
    }

    /// The INVITE this CANCEL (same branch, §9.1) is about.
    pub(crate) fn invite_of_cancel(&self) -> ClientKey {
        ClientKey {
            branch: self.branch.clone(),
            method: Bytes::from_static(b"INVITE"),
        }
    }

    pub fn branch(&self) -> &str {
        as_str(&self.branch)
    }

    pub fn method(&self) -> &str {
        as_str(&self.method)
    }

    /// The same identity in a buffer of its own: see [`ServerKey::detached`].
    pub(crate) fn detached(&self) -> ClientKey {
        let method = static_method(&self.method);
        let mut parts = detach([Some(&self.branch), method.is_none().then_some(&self.method)]);
        ClientKey {
            branch: parts[0].take().unwrap_or_default(),
            method: method.or_else(|| parts[1].take()).unwrap_or_default(),
        }
    }
}

impl ServerKey {
    /// The key of the transaction `msg` belongs to if its method were `method`: ACK and
    /// CANCEL look for their INVITE this way.
    pub(crate) fn new(
        msg: &Message,
        via: &Via<'_>,
        method: Method<'_>,
        to_tag: ToTag,
    ) -> Option<ServerKey> {
        let buf = msg.as_bytes();
        let method = method_bytes(buf, method);
        if via.has_rfc3261_branch() {
            let branch = share(buf, via.branch()?);
            let host = NoCase(share(buf, via.host));
            return Some(ServerKey(ServerId::Branch {
                branch,
                host,
                port: via.port,
                method,
            }));
        }
        let cseq = msg.cseq().ok()?;
        let to_tag = match to_tag {
            ToTag::AsRequest => msg.to().ok()?.tag().map(|t| share(buf, t)),
            ToTag::Absent => None,
        };
        Some(ServerKey(ServerId::Legacy(Box::new(LegacyId {
            request_uri: share(buf, msg.request_uri()?),
            to_tag,
            from_tag: msg.from().ok()?.tag().map(|t| share(buf, t)),
            call_id: share(buf, msg.call_id().ok()?),
            cseq: cseq.seq,
            method,
            top_via: share(buf, msg.vias().next()?),
        }))))
    }

    /// The same transaction identity with the method INVITE: where a CANCEL's target is.
    pub(crate) fn as_invite(&self) -> ServerKey {
        let invite = Bytes::from_static(b"INVITE");
        match &self.0 {
            ServerId::Branch {
                branch, host, port, ..
            } => ServerKey(ServerId::Branch {
                branch: branch.clone(),
                host: host.clone(),
                port: *port,
                method: invite,
            }),
            ServerId::Legacy(id) => ServerKey(ServerId::Legacy(Box::new(LegacyId {
                method: invite,
                ..(**id).clone()
            }))),
        }
    }

    /// The same identity in one small buffer of its own. A key's parts are slices of the
    /// request that created it, which is right while the transaction runs (it holds that
    /// request anyway) but would keep a whole request alive for each transaction that
    /// only waits out Timer J or K.
    pub(crate) fn detached(&self) -> ServerKey {
        match &self.0 {
            ServerId::Branch {
                branch,
                host,
                port,
                method,
            } => {
                let known = static_method(method);
                let [branch, host, method] = detach([
                    Some(branch),
                    Some(&host.0),
                    known.is_none().then_some(method),
                ]);
                ServerKey(ServerId::Branch {
                    branch: branch.unwrap_or_default(),
                    host: NoCase(host.unwrap_or_default()),
                    port: *port,
                    method: known.or(method).unwrap_or_default(),
                })
            }
            ServerId::Legacy(id) => {
                let [request_uri, to_tag, from_tag, call_id, method, top_via] = detach([
                    Some(&id.request_uri),
                    id.to_tag.as_ref(),
                    id.from_tag.as_ref(),
                    Some(&id.call_id),
                    Some(&id.method),
                    Some(&id.top_via),
                ]);
                ServerKey(ServerId::Legacy(Box::new(LegacyId {
                    request_uri: request_uri.unwrap_or_default(),
                    to_tag,
                    from_tag,
                    call_id: call_id.unwrap_or_default(),
                    cseq: id.cseq,
                    method: method.unwrap_or_default(),
                    top_via: top_via.unwrap_or_default(),
                })))
            }
        }
    }

    pub(crate) fn is_legacy(&self) -> bool {
        matches!(self.0, ServerId::Legacy(_))
    }

    /// The branch, when the request was matched by it (RFC 3261 peers).
    pub fn branch(&self) -> Option<&str> {
        match &self.0 {
            ServerId::Branch { branch, .. } => Some(as_str(branch)),
            ServerId::Legacy(_) => None,
        }
    }

    /// The method of the request that created the transaction.
    pub fn method(&self) -> &str {
        match &self.0 {
            ServerId::Branch { method, .. } => as_str(method),
            ServerId::Legacy(id) => as_str(&id.method),
        }
    }
}

impl From<ClientKey> for TransactionKey {
    fn from(key: ClientKey) -> Self {
        TransactionKey::Client(key)
    }
}

impl From<ServerKey> for TransactionKey {
    fn from(key: ServerKey) -> Self {
        TransactionKey::Server(key)
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} {}", self.method(), self.branch())
    }
}

impl fmt::Display for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ServerId::Branch {
                branch,
                host,
                port,
                method,
            } => {
                write!(
                    f,
                    "server {} {} from {}",
                    as_str(method),
                    as_str(branch),
                    as_str(&host.0)
                )?;
                match port {
                    Some(port) => write!(f, ":{port}"),
                    None => Ok(()),
                }
            }
            ServerId::Legacy(id) => {
                write!(
                    f,
                    "server {} (RFC 2543) Call-ID {} CSeq {}",
                    as_str(&id.method),
                    as_str(&id.call_id),
                    id.cseq
                )
            }
        }
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransactionKey::Client(k) => k.fmt(f),
            TransactionKey::Server(k) => k.fmt(f),
        }
    }
}

/// A host name compared as DNS does: ASCII case-insensitively.
#[derive(Debug, Clone)]
struct NoCase(Bytes);

impl PartialEq for NoCase {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for NoCase {}

impl Hash for NoCase {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.len());
        // Lower-cased a chunk at a time into one `write`: a `write_u8` per byte made
        // hashing a Via host cost as much as the rest of the key.
        let mut chunk = [0u8; 64];
        for part in self.0.chunks(chunk.len()) {
            let lowered = &mut chunk[..part.len()];
            lowered.copy_from_slice(part);
            lowered.make_ascii_lowercase();
            state.write(lowered);
        }
    }
}

/// `part` as a slice of `buf` without copying when it lies inside it (every view of a
/// parsed message does); a copy otherwise, so that a view of something else can never
/// make this panic.
fn share(buf: &Bytes, part: &str) -> Bytes {
    let base = buf.as_ptr() as usize;
    let start = part.as_ptr() as usize;
    if part.is_empty() {
        Bytes::new()
    } else if start >= base && start + part.len() <= base + buf.len() {
        buf.slice_ref(part.as_bytes())
    } else {
        Bytes::copy_from_slice(part.as_bytes())
    }
}

/// Methods are case-sensitive tokens; known ones map to static bytes, extension
/// methods to a slice of the message. ACK is not folded into INVITE here: callers ask
/// for the INVITE key explicitly.
fn method_bytes(buf: &Bytes, method: Method<'_>) -> Bytes {
    let known: &'static str = match method {
        Method::Ack => "ACK",
        Method::Bye => "BYE",
        Method::Cancel => "CANCEL",
        Method::Info => "INFO",
        Method::Invite => "INVITE",
        Method::Message => "MESSAGE",
        Method::Notify => "NOTIFY",
        Method::Options => "OPTIONS",
        Method::Prack => "PRACK",
        Method::Publish => "PUBLISH",
        Method::Refer => "REFER",
        Method::Register => "REGISTER",
        Method::Subscribe => "SUBSCRIBE",
        Method::Update => "UPDATE",
        Method::Extension(s) => return share(buf, s),
    };
    Bytes::from_static(known.as_bytes())
}

/// Copies of `parts` cut from one fresh buffer: one allocation for a whole key.
fn detach<const N: usize>(parts: [Option<&Bytes>; N]) -> [Option<Bytes>; N] {
    let len = parts.iter().flatten().map(|p| p.len()).sum();
    let mut buf = Vec::with_capacity(len);
    for part in parts.iter().flatten() {
        buf.extend_from_slice(part);
    }
    let buf = Bytes::from(buf);
    let mut at = 0;
    parts.map(|part| {
        part.map(|p| {
            let copy = buf.slice(at..at + p.len());
            at += p.len();
            copy
        })
    })
}

/// The static bytes of a method [`method_bytes`] knows, which need no copy.
fn static_method(method: &Bytes) -> Option<Bytes> {
    Method::STANDARD
        .iter()
        .map(|known| known.as_str())
        .find(|known| known.as_bytes() == &method[..])
        .map(|known| Bytes::from_static(known.as_bytes()))
}

/// Key parts were cut from `&str` views, so they are UTF-8.
fn as_str(b: &Bytes) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    fn key(text: &str) -> ServerKey {
        let m = parse(text);
        let via = m.top_via().unwrap();
        ServerKey::new(&m, &via, m.method().unwrap(), ToTag::AsRequest).unwrap()
    }

    #[test]
    fn sent_by_host_is_case_insensitive_branch_is_not() {
        let a = key(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP Host.Example:5060;branch=z9hG4bKx\r\n\r\n",
        );
        let b = key(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example:5060;branch=z9hG4bKx\r\n\r\n",
        );
        let c = key(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example:5060;branch=z9hG4bKX\r\n\r\n",
        );
        let d =
            key("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example;branch=z9hG4bKx\r\n\r\n");
        assert_eq!(a, b);
        let mut h = std::collections::HashSet::new();
        h.insert(a);
        assert!(h.contains(&b));
        assert!(!h.contains(&c));
        assert!(!h.contains(&d));
    }

    #[test]
    fn key_parts_share_the_message_buffer() {
        let m = parse(
            "FOO sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKabc\r\nCSeq: 1 FOO\r\n\r\n",
        );
        let k = ClientKey::for_response(&m).unwrap();
        assert_eq!((k.branch(), k.method()), ("z9hG4bKabc", "FOO"));
        let buf = m.as_bytes().as_ptr_range();
        assert!(buf.contains(&k.branch.as_ptr()) && buf.contains(&k.method.as_ptr()));
    }

    #[test]
    fn detached_keys_are_equal_and_own_their_bytes() {
        let texts = [
            "BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP Host.Example:5070;branch=z9hG4bKq\r\n\
             CSeq: 2 BYE\r\n\r\n",
            "FOO sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\r\nCSeq: 2 FOO\r\n\r\n",
            "BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=1\r\nFrom: <sip:c@d>;tag=f\r\n\
             To: <sip:a@b>;tag=t\r\nCall-ID: c1\r\nCSeq: 4 BYE\r\n\r\n",
        ];
        for text in texts {
            let m = parse(text);
            let via = m.top_via().unwrap();
            let server = ServerKey::new(&m, &via, m.method().unwrap(), ToTag::AsRequest).unwrap();
            let client = ClientKey::for_response(&m).unwrap();
            let (server_copy, client_copy) = (server.detached(), client.detached());
            assert_eq!(server_copy, server);
            assert_eq!(client_copy, client);
            assert_eq!(server_copy.to_string(), server.to_string());
            let mut h = std::collections::HashSet::new();
            h.insert(server_copy);
            assert!(h.contains(&server));
            // Nothing of the request stays referenced: its buffer is freed with it.
            let buf = m.as_bytes().as_ptr_range();
            assert!(!buf.contains(&client_copy.branch.as_ptr()));
            assert!(!buf.contains(&client_copy.method.as_ptr()));
            let server_copy = h.into_iter().next().unwrap();
            match &server_copy.0 {
                ServerId::Branch {
                    branch,
                    host,
                    method,
                    ..
                } => {
                    for part in [branch, &host.0, method] {
                        assert!(!buf.contains(&part.as_ptr()));
                    }
                }
                ServerId::Legacy(id) => {
                    for part in [&id.request_uri, &id.call_id, &id.top_via, &id.method] {
                        assert!(!buf.contains(&part.as_ptr()));
                    }
                    assert_eq!(id.to_tag.as_deref(), Some(&b"t"[..]));
                }
            }
        }
    }

    #[test]
    fn share_copies_foreign_slices() {
        let buf = Bytes::from_static(b"hello");
        assert_eq!(share(&buf, "world"), Bytes::from_static(b"world"));
        assert_eq!(share(&buf, ""), Bytes::new());
        let inside = std::str::from_utf8(&buf[1..3]).unwrap();
        assert_eq!(share(&buf, inside).as_ptr(), buf[1..].as_ptr());
    }

    #[test]
    fn legacy_keys_and_display() {
        let k = key(
            "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=1\r\nFrom: <sip:c@d>;tag=f\r\nTo: <sip:a@b>\r\n\
             Call-ID: c1\r\nCSeq: 4 INVITE\r\n\r\n",
        );
        assert!(k.is_legacy());
        assert_eq!(k.branch(), None);
        assert_eq!(k.method(), "INVITE");
        assert_eq!(k.to_string(), "server INVITE (RFC 2543) Call-ID c1 CSeq 4");
        let k = key("BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:5070;branch=z9hG4bK1\r\n\r\n");
        assert_eq!(k.to_string(), "server BYE z9hG4bK1 from h:5070");
        assert_eq!(k.as_invite().method(), "INVITE");
    }
}
