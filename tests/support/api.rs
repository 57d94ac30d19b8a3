//! Talking to the daemon's admin API the way a client does: one HTTP/1.1 request per
//! connection over a real socket (from 127.0.0.1, or another loopback address to test
//! source networks), a browser session (cookie and CSRF token), users and API keys
//! made with the `sihai user` commands.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::SIHAI;

/// `sihai user add LOGIN --role ROLE [--enterprise E]`, password `LOGIN-secret-pw`.
pub fn add_user(config: &Path, login: &str, role: &str, enterprise: Option<&str>) {
    let mut args = vec!["user", "add", login, "--role", role];
    if let Some(e) = enterprise {
        args.extend(["--enterprise", e]);
    }
    let mut child = Command::new(SIHAI)
        .args(&args)
        .arg("-c")
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sihai user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{login}-secret-pw\n").as_bytes())
        .expect("write the password");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "user add {login}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Reply {
    pub status: u16,
    pub headers: String,
    /// The payload as text (lossy), for JSON and CSV.
    pub body: String,
    /// The payload as received (chunked framing removed), for audio.
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), with a JSON body
/// if any.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let stream = TcpStream::connect(addr).expect("connect to the API");
    let body = body.map(|b| ("application/json", b.as_bytes()));
    exchange(stream, addr, method, path, headers, body)
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), with a body of
/// any type, `(content type, bytes)`.
pub fn http_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Reply {
    let stream = TcpStream::connect(addr).expect("connect to the API");
    exchange(stream, addr, method, path, headers, body)
}

/// The same as [`http`] from the local address `source`: Linux routes all of
/// 127.0.0.0/8 to the loopback interface, so a client may bind 127.0.0.2 and reach a
/// server on 127.0.0.1.
pub fn http_from(
    source: IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let body = body.map(|b| ("application/json", b.as_bytes()));
    exchange(
        connect_from(source, addr),
        addr,
        method,
        path,
        headers,
        body,
    )
}

/// A connection to `addr` bound to `source` before connecting (std has no way to).
fn connect_from(source: IpAddr, addr: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a runtime to connect with");
    runtime.block_on(async {
        let socket = match source {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .expect("a socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .unwrap_or_else(|e| panic!("bind {source}: {e}"));
        let stream = socket.connect(addr).await.expect("connect to the API");
        let stream = stream.into_std().expect("a std stream");
        stream.set_nonblocking(false).expect("blocking mode");
        stream
    })
}

fn exchange(
    mut stream: TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Reply {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some((content_type, body)) = body {
        request.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    if let Some((_, body)) = body {
        request.extend_from_slice(body);
    }
    // The server may answer (413, 404) before it has read a large body, and close: what
    // it answered is what the test wants, so a failed send is not the end.
    let _ = stream.write_all(&request);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let payload = raw.get(split + 4..).unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding") && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let bytes = if chunked {
        dechunk(payload)
    } else {
        payload.to_vec()
    };
    Reply {
        status,
        headers: head,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    }
}

/// The payload of a chunked body (RFC 9112 section 7.1); a malformed one ends where the
/// framing breaks, so a test comparing the payload fails.
fn dechunk(mut framed: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    while let Some(end) = framed.windows(2).position(|w| w == b"\r\n") {
        let size_line = String::from_utf8_lossy(&framed[..end]);
        let size_text = size_line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        let rest = &framed[end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        payload.extend_from_slice(&rest[..size]);
        framed = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
    payload
}

/// A logged-in browser: its cookie and CSRF token.
pub struct Session {
    pub addr: SocketAddr,
    pub cookie: String,
    pub csrf: String,
}

/// The body of a login of `login` with `password`.
pub fn login_body(login: &str, password: &str) -> String {
    serde_json::json!({ "login": login, "password": password }).to_string()
}

impl Session {
    /// Logs in with the password `LOGIN-secret-pw` (what [`add_user`] sets).
    pub fn login(addr: SocketAddr, login: &str) -> Session {
        Session::login_with(addr, login, &format!("{login}-secret-pw"))
    }

    pub fn login_with(addr: SocketAddr, login: &str, password: &str) -> Session {
        let reply = http(
            addr,
            "POST",
            "/api/v1/login",
            &[],
            Some(&login_body(login, password)),
        );
        assert_eq!(reply.status, 200, "login {login}: {}", reply.body);
        let set_cookie = reply.header("set-cookie").expect("a session cookie");
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
            "{set_cookie}"
        );
        let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
        let csrf = reply.json()["csrf_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Session { addr, cookie, csrf }
    }

    pub fn get(&self, path: &str) -> Reply {
        http(self.addr, "GET", path, &[("Cookie", &self.cookie)], None)
    }

    pub fn put(&self, path: &str, body: &str) -> Reply {
        self.write("PUT", path, Some(body))
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        self.write("POST", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.write("DELETE", path, None)
    }

    /// A write with the cookie and its CSRF token.
    pub fn write(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        http(
            self.addr,
            method,
            path,
            &[("Cookie", &self.cookie), ("X-CSRF-Token", &self.csrf)],
            body,
        )
    }
}

/// An API key for `login`, from `sihai user key`.
pub fn api_key(config: &Path, login: &str) -> String {
    let out = Command::new(SIHAI)
        .args(["user", "key", login, "--name", "test"])
        .arg("-c")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sihai user key");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A reply whose body is kept as bytes (a recording), with its headers.
pub struct BytesReply {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl BytesReply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// A GET over a fresh connection whose body is read as bytes; the body must be framed
/// by Content-Length (a binary download is), and must be exactly that long.
pub fn get_bytes(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> BytesReply {
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the reply");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head ending in an empty line");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let reply = BytesReply {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        headers: head,
        body,
    };
    if let Some(length) = reply.header("content-length") {
        assert_eq!(
            reply.body.len().to_string(),
            length,
            "the body is as long as announced: {}",
            reply.headers
        );
    } else {
        assert!(
            reply.header("transfer-encoding").is_none(),
            "a binary body framed by Content-Length: {}",
            reply.headers
        );
    }
    reply
}
