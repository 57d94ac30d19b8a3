//! Request methods. Methods are case-sensitive tokens (RFC 3261 §7.1); the ones
//! defined by RFC 3261 and its common extensions get variants, any other token is an
//! extension method carried as text.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    Ack,
    Bye,
    Cancel,
    Info,
    Invite,
    Message,
    Notify,
    Options,
    Prack,
    Publish,
    Refer,
    Register,
    Subscribe,
    Update,
    Extension(&'a str),
}

impl<'a> Method<'a> {
    /// Every method with a variant: those of RFC 3261 and its common extensions.
    pub const STANDARD: [Method<'static>; 14] = [
        Method::Ack,
        Method::Bye,
        Method::Cancel,
        Method::Info,
        Method::Invite,
        Method::Message,
        Method::Notify,
        Method::Options,
        Method::Prack,
        Method::Publish,
        Method::Refer,
        Method::Register,
        Method::Subscribe,
        Method::Update,
    ];

    pub fn parse(token: &'a str) -> Method<'a> {
        match token {
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "INFO" => Method::Info,
            "INVITE" => Method::Invite,
            "MESSAGE" => Method::Message,
            "NOTIFY" => Method::Notify,
            "OPTIONS" => Method::Options,
            "PRACK" => Method::Prack,
            "PUBLISH" => Method::Publish,
            "REFER" => Method::Refer,
            "REGISTER" => Method::Register,
            "SUBSCRIBE" => Method::Subscribe,
            "UPDATE" => Method::Update,
            other => Method::Extension(other),
        }
    }

    pub fn as_str(&self) -> &'a str {
        match self {
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
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
