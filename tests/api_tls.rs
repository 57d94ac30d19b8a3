//! The admin API over HTTPS (`[api] tls_certificate`, `tls_private_key`), through the
//! built daemon: a client that trusts the test CA logs in over TLS and gets a `Secure`
//! session cookie that works; a plain-HTTP request to the same port gets no HTTP answer;
//! a daemon whose key does not match its certificate refuses to start and says why.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use support::api::add_user;
use support::{Daemon, SIHAI, free_port};

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`.
struct Pki {
    ca: rustls::pki_types::CertificateDer<'static>,
    certificate: String,
    private_key: String,
}

fn make_pki(dir: &Path) -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sihai test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-signed CA");
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().expect("server key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server")
        .signed_by(&key, &issuer)
        .expect("server certificate");
    let certificate = dir.join("api-cert.pem");
    let private_key = dir.join("api-key.pem");
    std::fs::write(&certificate, cert.pem()).expect("write the certificate");
    std::fs::write(&private_key, key.serialize_pem()).expect("write the key");
    Pki {
        ca: ca_cert.der().clone(),
        certificate: certificate.display().to_string(),
        private_key: private_key.display().to_string(),
    }
}

fn api_section(port: u16, pki: &Pki) -> String {
    format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n\n\
         [[enterprise]]\nid = \"acme\"\nname = \"Acme\"\n",
        pki.certificate, pki.private_key
    )
}

/// One HTTP/1.1 request over TLS, trusting only `ca`; the whole response as text.
fn https(
    addr: SocketAddr,
    ca: &rustls::pki_types::CertificateDer<'static>,
    request: &str,
) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("trust the test CA");
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    let connection = rustls::ClientConnection::new(Arc::new(config), name).expect("a TLS client");
    let tcp = TcpStream::connect(addr).expect("connect to the API");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    tls.write_all(request.as_bytes()).expect("send over TLS");
    let mut raw = Vec::new();
    // The server closes after `Connection: close`; rustls reports a missing
    // close_notify as an error, after the bytes, which are what this test reads.
    let _ = tls.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).into_owned()
}

#[test]
fn the_api_serves_https_with_a_secure_session_cookie_and_no_plain_http() {
    let files = tempfile::tempdir().expect("a directory for the PEM files");
    let pki = make_pki(files.path());
    let port = free_port();
    let daemon = Daemon::start_with("", &api_section(port, &pki));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    add_user(
        &daemon.config_path(),
        "acme-admin",
        "enterprise_admin",
        Some("acme"),
    );

    let body = r#"{"login":"acme-admin","password":"acme-admin-secret-pw"}"#;
    let login = https(
        addr,
        &pki.ca,
        &format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let cookie_line = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("a session cookie: {login}"));
    assert!(
        cookie_line.contains("; Secure") && cookie_line.contains("HttpOnly"),
        "{cookie_line}"
    );
    let cookie = cookie_line
        .split_once(':')
        .map(|(_, v)| v.trim())
        .and_then(|v| v.split(';').next())
        .expect("cookie value");
    let me = https(
        addr,
        &pki.ca,
        &format!(
            "GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
        ),
    );
    assert!(me.starts_with("HTTP/1.1 200"), "{me}");
    assert!(me.contains("\"acme-admin\""), "{me}");

    // Plain HTTP on the TLS port is no HTTP exchange: the bytes are not a ClientHello.
    let plain = support::api::http(addr, "GET", "/api/v1/openapi.json", &[], None);
    assert_eq!(plain.status, 0, "{}", plain.body);
    daemon.stop();
}

#[test]
fn a_key_that_is_not_the_certificates_stops_the_start_with_the_reason() {
    let files = tempfile::tempdir().expect("a directory for the PEM files");
    let pki = make_pki(files.path());
    let other = tempfile::tempdir().expect("another directory");
    let other_pki = make_pki(other.path());
    let config_dir = tempfile::tempdir().expect("a directory for the configuration");
    let config = config_dir.path().join("sihai.toml");
    let sip_port = free_port();
    let mut text = support::config_text(sip_port, config_dir.path(), "", "");
    text.push_str(&api_section(
        free_port(),
        &Pki {
            private_key: other_pki.private_key,
            ..pki
        },
    ));
    std::fs::write(&config, text).expect("write the configuration");
    let mut child = std::process::Command::new(SIHAI)
        .args(["run", "-c"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sihai");
    // Bounded: a daemon that started anyway is killed and the test fails.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while child.try_wait().expect("wait").is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("the daemon's output");
    assert!(!out.status.success(), "the daemon must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TLS") && stderr.contains("api-key.pem"),
        "the reason names the files: {stderr}"
    );
}
