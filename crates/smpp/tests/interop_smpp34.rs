//! The session against an SMPP implementation sihai did not write: the SMSC of the
//! `smpp34` package from PyPI (crates/smpp/tests/smsc/smpp34_smsc.py), installed into
//! target/smsc-venv by scripts/test. A std TcpStream is the whole I/O edge here: the
//! test drives the sans-IO session over it and checks what the SMSC decoded.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;
use sihai_smpp::text::decode_ucs2;
use sihai_smpp::{CloseReason, Event, OutgoingSms, Session, SessionConfig, SessionState};

struct Smsc {
    child: Child,
    lines: Receiver<Value>,
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smsc {
    fn start(port: u16) -> Smsc {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = repo.join("target/smsc-venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: install the test SMSC with \
             `python3 -m venv target/smsc-venv && target/smsc-venv/bin/pip install smpp34==1.5.0` \
             (scripts/test does)",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(repo.join("crates/smpp/tests/smsc/smpp34_smsc.py"))
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SMSC starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && sender.send(value).is_err()
                {
                    break;
                }
            }
        });
        let smsc = Smsc { child, lines };
        let first = smsc.next_line();
        assert_eq!(first["event"], "listening", "{first}");
        smsc
    }

    fn next_line(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the SMSC printed a line within 10 s")
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Runs the session over a real socket until `done` says so or 10 s pass; returns
/// every event it gave.
fn drive(
    session: &mut Session,
    stream: &mut Option<TcpStream>,
    port: u16,
    mut done: impl FnMut(&Session, &[Event]) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        let now = Instant::now();
        if session.poll_timeout().is_some_and(|at| at <= now) {
            session.handle_timeout(now);
        }
        while let Some(bytes) = session.poll_transmit() {
            if let Some(stream) = stream.as_mut() {
                stream.write_all(&bytes).expect("write to the SMSC");
            }
        }
        while let Some(event) = session.poll_event() {
            match &event {
                Event::Connect => match TcpStream::connect(("127.0.0.1", port)) {
                    Ok(connected) => {
                        connected
                            .set_read_timeout(Some(Duration::from_millis(20)))
                            .expect("read timeout");
                        *stream = Some(connected);
                        session.handle_connected(Instant::now());
                    }
                    Err(_) => session.handle_disconnected(Instant::now()),
                },
                Event::Close { .. } => *stream = None,
                _ => {}
            }
            seen.push(event);
        }
        while let Some(bytes) = session.poll_transmit() {
            if let Some(stream) = stream.as_mut() {
                stream.write_all(&bytes).expect("write to the SMSC");
            }
        }
        if done(session, &seen) {
            return seen;
        }
        match stream.as_mut().map(|stream| stream.read(&mut buffer)) {
            Some(Ok(0)) => {
                *stream = None;
                session.handle_disconnected(Instant::now());
            }
            Some(Ok(count)) => session.handle_input(&buffer[..count], Instant::now()),
            Some(Err(error))
                if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Some(Err(_)) => {
                *stream = None;
                session.handle_disconnected(Instant::now());
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("the session did not finish within 10 s; events: {seen:?}");
}

#[test]
fn the_smpp34_smsc_receives_a_bind_and_ucs2_submits_short_and_concatenated() {
    let port = free_port();
    let smsc = Smsc::start(port);
    let mut session = Session::new(
        SessionConfig {
            system_id: "sihai".into(),
            password: "secret".into(),
            system_type: "400".into(),
            source_addr: "10690400".into(),
            ..SessionConfig::default()
        },
        Instant::now(),
    );
    let short = "【四海】4008001234 未接来电：13800138000，时间 05-06 12:30";
    let long = "【四海】您的400号码 4008001234 有一个未接来电，来电号码 13800138000，时间 2024-05-06 12:30:05，原因：无人接听。请尽快回电，祝您生意兴隆！";
    assert!(
        long.encode_utf16().count() > 70,
        "the long text needs two parts"
    );
    session
        .submit(
            OutgoingSms {
                key: 1,
                destination: "8613800138000".into(),
                text: short.into(),
            },
            Instant::now(),
        )
        .expect("queued");
    session
        .submit(
            OutgoingSms {
                key: 2,
                destination: "8613800138000".into(),
                text: long.into(),
            },
            Instant::now(),
        )
        .expect("queued");
    let submitted = |events: &[Event]| {
        events
            .iter()
            .filter(|event| matches!(event, Event::Submitted { .. }))
            .count()
    };
    // Kept across both drives: dropping it would close the connection.
    let mut stream = None;
    let events = drive(&mut session, &mut stream, port, |_, events| {
        submitted(events) == 2
    });
    assert!(
        matches!(events.get(1), Some(Event::Bound { smsc_system_id }) if smsc_system_id == "smpp34-smsc"),
        "{events:?}"
    );

    let bound = smsc.next_line();
    assert_eq!(bound["event"], "bound");
    assert_eq!(bound["system_id"], "sihai");
    let mut received = Vec::new();
    for _ in 0..3 {
        let line = smsc.next_line();
        assert_eq!(line["event"], "submit_sm", "{line}");
        assert_eq!(line["data_coding"], 8);
        assert_eq!(line["source_addr"], "10690400");
        assert_eq!(line["destination_addr"], "8613800138000");
        assert_eq!(line["registered_delivery"], 1);
        let hex = line["short_message"].as_str().expect("hex");
        let octets: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex digit"))
            .collect();
        let has_udh = line["esm_class"] == 0x40;
        let text = decode_ucs2(&octets, has_udh).expect("UTF-16BE");
        received.push((
            line["message_id"].as_str().unwrap_or_default().to_string(),
            has_udh,
            octets,
            text,
        ));
    }
    // The SMSC handles PDUs concurrently, so its lines come in any order: the short
    // message first, then the parts by their UDH index.
    received.sort_by_key(|(_, has_udh, octets, _)| (*has_udh, octets.get(5).copied()));
    assert_eq!(received[0].3, short);
    assert!(!received[0].1);
    assert!(
        received[1].1 && received[2].1,
        "the long text's parts carry a UDH"
    );
    assert_eq!(&received[1].2[..6], &[5, 0, 3, 0, 2, 1]);
    assert_eq!(&received[2].2[..6], &[5, 0, 3, 0, 2, 2]);
    assert_eq!(format!("{}{}", received[1].3, received[2].3), long);

    // The message ids the session reports are those the SMSC gave out.
    let ids: Vec<(u64, Vec<String>)> = events
        .iter()
        .filter_map(|event| match event {
            Event::Submitted { key, message_ids } => Some((*key, message_ids.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            (1, vec![received[0].0.clone()]),
            (2, vec![received[1].0.clone(), received[2].0.clone()])
        ]
    );

    session.unbind(Instant::now());
    // The SMSC answers unbind_resp and may close at once; either ends the session.
    let events = drive(&mut session, &mut stream, port, |session, _| {
        session.state() == SessionState::Closed
    });
    assert!(
        events.is_empty()
            || events
                == vec![Event::Close {
                    reason: CloseReason::Unbound
                }],
        "{events:?}"
    );
    assert_eq!(smsc.next_line()["event"], "unbound");
}
