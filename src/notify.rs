//! systemd's readiness protocol (`sd_notify(3)`): under a unit of `Type=notify`, systemd
//! passes the path of a datagram socket in `NOTIFY_SOCKET` and counts the service as
//! started only when it sends `READY=1` there; `STOPPING=1` tells it that shutdown has
//! begun. A few lines over [`UnixDatagram`] rather than a crate: the protocol is one
//! datagram of `KEY=value` lines.
//!
//! Without `NOTIFY_SOCKET` (started by hand, by a test, under another supervisor) every
//! call does nothing.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where readiness is reported, if anywhere.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// The socket `NOTIFY_SOCKET` names; none when it is unset or empty.
    pub fn from_env() -> io::Result<Notifier> {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(value) if !value.is_empty() => Notifier::for_socket(&value),
            _ => Ok(Notifier::disabled()),
        }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// The socket `name` as systemd writes it in `NOTIFY_SOCKET`: an absolute path, or
    /// `@name` for a socket in Linux's abstract namespace (what systemd uses when
    /// /run is not yet writable, and what a container manager may pass).
    pub fn for_socket(name: &OsStr) -> io::Result<Notifier> {
        let bytes = name.as_bytes();
        let address = match bytes.first() {
            Some(b'/') => SocketAddr::from_pathname(name)?,
            Some(b'@') => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(&bytes[1..])?
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "NOTIFY_SOCKET {name:?} is neither an absolute path nor an abstract \
                         socket name (@name)"
                    ),
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        Ok(Notifier {
            target: Some((socket, address)),
        })
    }

    /// Sends `state` (newline-separated `KEY=value` assignments, e.g. `READY=1`); `Ok`
    /// without a socket.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        let Some((socket, address)) = &self.target else {
            return Ok(());
        };
        let sent = socket.send_to_addr(state.as_bytes(), address)?;
        if sent != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", state.len()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn received(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification within 5 s");
        String::from_utf8(buf[..n].to_vec()).expect("UTF-8 notification")
    }

    #[test]
    fn a_path_socket_receives_each_state_as_one_datagram() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).expect("bind the notify socket");
        let notifier = Notifier::for_socket(path.as_os_str()).expect("a path socket");
        notifier
            .notify("READY=1\nSTATUS=listening")
            .expect("send READY");
        notifier.notify("STOPPING=1").expect("send STOPPING");
        assert_eq!(received(&systemd), "READY=1\nSTATUS=listening");
        assert_eq!(received(&systemd), "STOPPING=1");
    }

    #[test]
    fn an_abstract_socket_is_named_with_an_at_sign() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("sihai-notify-test-{}", std::process::id());
        let systemd = UnixDatagram::bind_addr(
            &SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name"),
        )
        .expect("bind the abstract notify socket");
        let notifier = Notifier::for_socket(OsStr::new(&format!("@{name}"))).expect("abstract");
        notifier.notify("READY=1").expect("send READY");
        assert_eq!(received(&systemd), "READY=1");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let notifier = Notifier::disabled();
        assert!(notifier.target.is_none());
        notifier
            .notify("READY=1")
            .expect("a disabled notifier succeeds");
    }

    #[test]
    fn a_relative_name_is_refused_with_the_reason() {
        let err = Notifier::for_socket(OsStr::new("run/notify"))
            .err()
            .expect("a relative path is no notify socket");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("neither an absolute path"),
            "{err}"
        );
    }

    #[test]
    fn a_socket_nobody_listens_on_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().expect("temp dir");
        let notifier =
            Notifier::for_socket(dir.path().join("gone").as_os_str()).expect("a path socket");
        assert!(notifier.notify("READY=1").is_err());
    }
}
