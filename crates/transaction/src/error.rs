//! Why the TU's request to the layer was refused. Messages from the network never
//! produce errors: what cannot be matched is dropped or passed up as stray.

use sihai_sip::HeaderError;
use thiserror::Error;

use crate::key::{ClientKey, ServerKey};

/// Keys are boxed to keep `Result`s small on the success path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransactionError {
    #[error("no server transaction {0}")]
    NoSuchTransaction(Box<ServerKey>),
    #[error("server transaction {key} cannot send {status}: it is {state}")]
    InvalidState {
        key: Box<ServerKey>,
        status: u16,
        state: &'static str,
    },
    #[error("expected a response, got a request")]
    NotAResponse,
    #[error("expected a request, got a response")]
    NotARequest,
    #[error(
        "ACK is not sent in a transaction: ACK for a 2xx is the TU's, ACK for non-2xx the layer's"
    )]
    AckIsNotATransaction,
    #[error("request has no usable top Via: {0}")]
    Via(HeaderError),
    #[error(
        "top Via branch {branch:?} lacks the RFC 3261 magic cookie z9hG4bK; the TU must generate one"
    )]
    NotRfc3261Branch { branch: Option<String> },
    #[error("bad CSeq: {0}")]
    CSeq(HeaderError),
    #[error("CSeq method {cseq} differs from request method {method}")]
    CSeqMismatch { method: String, cseq: String },
    #[error("client transaction {0} already exists")]
    Duplicate(Box<ClientKey>),
}
