//! End-to-end tests over real loopback sockets.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sihai_sip::framing::FrameLimits;
use sihai_sip::net::{Peer, Transport};
use sihai_transport::{Received, TransportConfig, TransportError, Transports};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

/// Upper bound on any wait for something that should happen.
const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for something that should not happen.
const QUIET: Duration = Duration::from_millis(100);

fn sip(method: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} sip:4008001234@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-{method}\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn config(listen: &[(Transport, &str)]) -> TransportConfig {
    TransportConfig {
        listen: listen
            .iter()
            .map(|&(t, a)| (t, a.parse().expect("test address")))
            .collect(),
        tcp_idle_timeout: Duration::from_secs(30),
        max_tcp_connections: 64,
        limits: FrameLimits::default(),
    }
}

async fn start(config: TransportConfig) -> (Transports, mpsc::Receiver<Received>) {
    let (sink, rx) = mpsc::channel(64);
    let transports = Transports::bind(config, sink).await.expect("bind");
    (transports, rx)
}

fn addr(transports: &Transports, transport: Transport) -> SocketAddr {
    transports
        .local_addrs()
        .into_iter()
        .find(|&(t, _)| t == transport)
        .map(|(_, a)| a)
        .expect("a listener of that transport")
}

async fn next(rx: &mut mpsc::Receiver<Received>) -> Received {
    timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for a message")
        .expect("sink open")
}

async fn nothing_more(rx: &mut mpsc::Receiver<Received>) {
    if let Ok(Some(extra)) = timeout(QUIET, rx.recv()).await {
        panic!("unexpected message: {:?}", extra.data);
    }
}

async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("timed out reading")
        .expect("read");
    buf
}

/// The server closed the connection: EOF, or a reset if it had unread bytes.
async fn expect_closed(stream: &mut TcpStream) {
    let mut buf = [0; 256];
    match timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("connection still open")
    {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection to be closed, got {other:?}"),
    }
}

/// Polls `cond` until it holds, failing after `WAIT`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

fn tcp_peer(addr: SocketAddr) -> Peer {
    Peer::new(Transport::Tcp, addr)
}

#[tokio::test]
async fn udp_receive_and_reply() {
    let (transports, mut rx) = start(config(&[(Transport::Udp, "127.0.0.1:0")])).await;
    let server = addr(&transports, Transport::Udp);
    assert_ne!(server.port(), 0);
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("client");
    let request = sip("OPTIONS", "");
    client.send_to(&request, server).await.expect("send");

    let got = next(&mut rx).await;
    assert_eq!(got.data, request);
    assert_eq!(
        got.source,
        Peer::new(Transport::Udp, client.local_addr().expect("addr"))
    );
    assert_eq!(got.local, server);

    let response = Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    transports
        .send_via(got.source, Some(got.local), response.clone())
        .await
        .expect("reply");
    let mut buf = [0; 1024];
    let (n, from) = timeout(WAIT, client.recv_from(&mut buf))
        .await
        .expect("reply")
        .expect("recv");
    assert_eq!(&buf[..n], &response[..]);
    assert_eq!(from, server);

    // CRLF keep-alive noise is not delivered.
    client.send_to(b"\r\n\r\n", server).await.expect("send");
    nothing_more(&mut rx).await;
    let stats = transports.stats();
    assert_eq!((stats.udp_datagrams_received, stats.messages_sent), (1, 1));
}

#[tokio::test]
async fn udp_reply_leaves_from_the_socket_named_by_via_local() {
    let (transports, mut rx) = start(config(&[
        (Transport::Udp, "127.0.0.1:0"),
        (Transport::Udp, "127.0.0.1:0"),
    ]))
    .await;
    let addrs = transports.local_addrs();
    let (first, second) = (addrs[0].1, addrs[1].1);
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("client");
    client
        .send_to(&sip("OPTIONS", ""), second)
        .await
        .expect("send");
    let got = next(&mut rx).await;
    assert_eq!(got.local, second);

    let mut buf = [0; 1024];
    transports
        .send_via(got.source, Some(got.local), Bytes::from_static(b"a"))
        .await
        .expect("send");
    let (_, from) = timeout(WAIT, client.recv_from(&mut buf))
        .await
        .expect("reply")
        .expect("recv");
    assert_eq!(from, second);

    transports
        .send(got.source, Bytes::from_static(b"b"))
        .await
        .expect("send");
    let (_, from) = timeout(WAIT, client.recv_from(&mut buf))
        .await
        .expect("reply")
        .expect("recv");
    assert_eq!(
        from, first,
        "without via_local the first socket of the family is used"
    );

    let v6 = Peer::new(Transport::Udp, "[::1]:5060".parse().expect("addr"));
    let err = transports
        .send(v6, Bytes::from_static(b"c"))
        .await
        .expect_err("no v6 socket");
    assert!(matches!(err, TransportError::NoUdpSocket { .. }), "{err}");
}

#[tokio::test]
async fn ipv6_udp_and_tcp() {
    let (sink, mut rx) = mpsc::channel(8);
    let config = config(&[(Transport::Udp, "[::1]:0"), (Transport::Tcp, "[::1]:0")]);
    let transports = match Transports::bind(config, sink).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("skipping IPv6 test: {e}");
            return;
        }
    };
    let client = UdpSocket::bind("[::1]:0").await.expect("v6 client");
    client
        .send_to(&sip("OPTIONS", "v6"), addr(&transports, Transport::Udp))
        .await
        .expect("send");
    let got = next(&mut rx).await;
    assert!(got.source.addr.is_ipv6());
    transports
        .send_via(got.source, Some(got.local), Bytes::from_static(b"pong"))
        .await
        .expect("reply");
    let mut buf = [0; 64];
    let (n, _) = timeout(WAIT, client.recv_from(&mut buf))
        .await
        .expect("reply")
        .expect("recv");
    assert_eq!(&buf[..n], b"pong");

    let mut stream = TcpStream::connect(addr(&transports, Transport::Tcp))
        .await
        .expect("connect");
    stream
        .write_all(&sip("INVITE", "v=0\r\n"))
        .await
        .expect("write");
    let got = next(&mut rx).await;
    assert_eq!(got.source.transport, Transport::Tcp);
    assert!(got.source.addr.is_ipv6());
}

/// IPV6_V6ONLY lets `[::]:P` and `0.0.0.0:P` be bound side by side.
#[tokio::test]
async fn ipv4_and_ipv6_wildcards_share_a_port() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let (v4, _rx4) = start(config(&[(transport, "0.0.0.0:0")])).await;
        let port = addr(&v4, transport).port();
        let (sink, _rx6) = mpsc::channel(8);
        let v6_addr = format!("[::]:{port}");
        match Transports::bind(config(&[(transport, &v6_addr)]), sink).await {
            Ok(v6) => assert_eq!(addr(&v6, transport).port(), port),
            Err(TransportError::Bind { source, .. })
                if source.kind() == io::ErrorKind::AddrNotAvailable
                    || source.raw_os_error() == Some(97) /* EAFNOSUPPORT */ =>
            {
                eprintln!("skipping {transport} [::] check, no IPv6: {source}");
            }
            Err(e) => panic!("{transport} [::]:{port} next to 0.0.0.0:{port}: {e}"),
        }
    }
}

#[tokio::test]
async fn bind_failure_names_the_address() {
    let holder = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let taken = holder.local_addr().expect("addr");
    let (sink, _rx) = mpsc::channel(8);
    let listen = [
        (Transport::Tcp, "127.0.0.1:0"),
        (Transport::Udp, &*taken.to_string()),
    ];
    let err = Transports::bind(config(&listen), sink)
        .await
        .err()
        .expect("address in use");
    assert!(
        matches!(err, TransportError::Bind { addr, .. } if addr == taken),
        "{err:?}"
    );
    assert!(err.to_string().contains(&taken.to_string()), "{err}");
}

#[tokio::test]
async fn tcp_two_messages_in_one_write() {
    let (transports, mut rx) = start(config(&[(Transport::Tcp, "127.0.0.1:0")])).await;
    let server = addr(&transports, Transport::Tcp);
    let mut stream = TcpStream::connect(server).await.expect("connect");
    let (a, b) = (sip("INVITE", "v=0\r\n"), sip("ACK", ""));
    stream
        .write_all(&[a.clone(), b.clone()].concat())
        .await
        .expect("write");

    let first = next(&mut rx).await;
    let second = next(&mut rx).await;
    assert_eq!((first.data, second.data), (Bytes::from(a), Bytes::from(b)));
    assert_eq!(first.source, tcp_peer(stream.local_addr().expect("addr")));
    assert_eq!(first.local, server);
    nothing_more(&mut rx).await;
}

#[tokio::test]
async fn tcp_message_split_across_writes() {
    let (transports, mut rx) = start(config(&[(Transport::Tcp, "127.0.0.1:0")])).await;
    let mut stream = TcpStream::connect(addr(&transports, Transport::Tcp))
        .await
        .expect("connect");
    let msg = sip("MESSAGE", "hello, split world");
    let (head, tail) = msg.split_at(msg.len() - 7); // cut inside the body
    stream.write_all(head).await.expect("write");
    nothing_more(&mut rx).await; // the server has read the partial message and waits
    stream.write_all(tail).await.expect("write");
    assert_eq!(next(&mut rx).await.data, msg);
}

#[tokio::test]
async fn tcp_keepalive_ping_gets_pong() {
    let (transports, mut rx) = start(config(&[(Transport::Tcp, "127.0.0.1:0")])).await;
    let mut stream = TcpStream::connect(addr(&transports, Transport::Tcp))
        .await
        .expect("connect");
    stream.write_all(b"\r\n\r\n").await.expect("ping");
    assert_eq!(read_n(&mut stream, 2).await, b"\r\n");
    // The stream is still usable and the ping was not delivered.
    let msg = sip("OPTIONS", "");
    stream.write_all(&msg).await.expect("write");
    assert_eq!(next(&mut rx).await.data, msg);
    assert_eq!(transports.stats().keepalive_pongs, 1);
}

#[tokio::test]
async fn tcp_framing_error_closes_the_connection() {
    let (transports, mut rx) = start(config(&[(Transport::Tcp, "127.0.0.1:0")])).await;
    let mut stream = TcpStream::connect(addr(&transports, Transport::Tcp))
        .await
        .expect("connect");
    let good = sip("OPTIONS", "");
    stream.write_all(&good).await.expect("write");
    assert_eq!(next(&mut rx).await.data, good);

    stream
        .write_all(b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n")
        .await
        .expect("write");
    expect_closed(&mut stream).await;
    nothing_more(&mut rx).await;
    eventually("the connection is gone", || {
        transports.stats().tcp_connections_open == 0
    })
    .await;
    assert_eq!(transports.stats().framing_errors, 1);
}

#[tokio::test]
async fn tcp_response_reuses_the_inbound_connection() {
    let (transports, mut rx) = start(config(&[(Transport::Tcp, "127.0.0.1:0")])).await;
    let mut stream = TcpStream::connect(addr(&transports, Transport::Tcp))
        .await
        .expect("connect");
    stream
        .write_all(&sip("INVITE", "v=0\r\n"))
        .await
        .expect("write");
    let request = next(&mut rx).await;

    let response = Bytes::from_static(b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n");
    transports
        .send_via(request.source, Some(request.local), response.clone())
        .await
        .expect("send");
    assert_eq!(read_n(&mut stream, response.len()).await, response);
    let stats = transports.stats();
    assert_eq!(
        (stats.tcp_connections_open, stats.tcp_connections_connected),
        (1, 0)
    );
}

#[tokio::test]
async fn tcp_send_connects_when_there_is_no_connection_and_then_reuses_it() {
    let (transports, mut rx) = start(config(&[(Transport::Tcp, "127.0.0.1:0")])).await;
    let remote = TcpListener::bind("127.0.0.1:0").await.expect("remote");
    let remote_addr = remote.local_addr().expect("addr");

    let invite = sip("INVITE", "v=0\r\n");
    transports
        .send(tcp_peer(remote_addr), invite.clone().into())
        .await
        .expect("send");
    let (mut stream, _) = timeout(WAIT, remote.accept())
        .await
        .expect("connect")
        .expect("accept");
    assert_eq!(read_n(&mut stream, invite.len()).await, invite);

    // The remote answers over the same connection; it arrives from the remote's address.
    let ok = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    stream.write_all(ok).await.expect("write");
    let got = next(&mut rx).await;
    assert_eq!(
        (got.data, got.source),
        (Bytes::from_static(ok), tcp_peer(remote_addr))
    );
    assert_eq!(got.local, stream.peer_addr().expect("addr"));

    // A second request reuses the connection instead of opening another.
    let ack = sip("ACK", "");
    transports
        .send(tcp_peer(remote_addr), ack.clone().into())
        .await
        .expect("send");
    assert_eq!(read_n(&mut stream, ack.len()).await, ack);
    assert!(
        timeout(QUIET, remote.accept()).await.is_err(),
        "no second connection"
    );
    let stats = transports.stats();
    assert_eq!(
        (stats.tcp_connections_open, stats.tcp_connections_connected),
        (1, 1)
    );
}

#[tokio::test]
async fn tcp_connect_failure_names_the_address() {
    let (transports, _rx) = start(config(&[])).await;
    // Bind then drop a listener to get a port nobody listens on.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr")
    };
    let err = transports
        .send(tcp_peer(closed), Bytes::from_static(b"x"))
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(err, TransportError::Connect { addr, .. } if addr == closed),
        "{err:?}"
    );
    assert!(err.to_string().contains(&closed.to_string()));
    assert_eq!(transports.stats().send_errors, 1);
}

#[tokio::test]
async fn tcp_idle_timeout_closes_the_connection() {
    let mut config = config(&[(Transport::Tcp, "127.0.0.1:0")]);
    config.tcp_idle_timeout = Duration::from_millis(200);
    let (transports, _rx) = start(config).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr(&transports, Transport::Tcp))
        .await
        .expect("connect");
    expect_closed(&mut stream).await;
    assert!(
        started.elapsed() >= Duration::from_millis(180),
        "closed after {:?}",
        started.elapsed()
    );
    eventually("the connection is gone", || {
        transports.stats().tcp_connections_open == 0
    })
    .await;
    assert_eq!(transports.stats().tcp_idle_closed, 1);
}

#[tokio::test]
async fn tcp_traffic_keeps_the_connection_open() {
    let mut config = config(&[(Transport::Tcp, "127.0.0.1:0")]);
    config.tcp_idle_timeout = Duration::from_millis(500);
    let (transports, _rx) = start(config).await;
    let mut stream = TcpStream::connect(addr(&transports, Transport::Tcp))
        .await
        .expect("connect");
    for _ in 0..6 {
        sleep(Duration::from_millis(100)).await;
        stream.write_all(b"\r\n\r\n").await.expect("ping");
        assert_eq!(read_n(&mut stream, 2).await, b"\r\n");
    }
    assert_eq!(transports.stats().tcp_idle_closed, 0);
}

#[tokio::test]
async fn tcp_max_connections_is_enforced() {
    let mut config = config(&[(Transport::Tcp, "127.0.0.1:0")]);
    config.max_tcp_connections = 2;
    let (transports, mut rx) = start(config).await;
    let server = addr(&transports, Transport::Tcp);

    let mut admitted = Vec::new();
    for i in 0..2 {
        let mut stream = TcpStream::connect(server).await.expect("connect");
        stream
            .write_all(&sip("OPTIONS", &i.to_string()))
            .await
            .expect("write");
        next(&mut rx).await; // accepted and registered
        admitted.push(stream);
    }
    let mut third = TcpStream::connect(server)
        .await
        .expect("kernel accepts the handshake");
    expect_closed(&mut third).await;
    assert_eq!(transports.stats().tcp_connections_refused, 1);

    // Outbound connections count against the same limit.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("remote");
    let remote = listener.local_addr().expect("addr");
    let err = transports
        .send(tcp_peer(remote), Bytes::from_static(b"x"))
        .await;
    assert!(
        matches!(
            err,
            Err(TransportError::TooManyConnections { limit: 2, .. })
        ),
        "{err:?}"
    );

    // The admitted ones still work, and closing one makes room again.
    admitted[1]
        .write_all(&sip("OPTIONS", "still here"))
        .await
        .expect("write");
    next(&mut rx).await;
    drop(admitted.remove(0));
    eventually("a slot is free", || {
        transports.stats().tcp_connections_open == 1
    })
    .await;
    let mut fourth = TcpStream::connect(server).await.expect("connect");
    let msg = sip("OPTIONS", "4");
    fourth.write_all(&msg).await.expect("write");
    assert_eq!(next(&mut rx).await.data, msg);
}

#[tokio::test]
async fn shutdown_closes_everything() {
    let (transports, mut rx) = start(config(&[
        (Transport::Udp, "127.0.0.1:0"),
        (Transport::Tcp, "127.0.0.1:0"),
    ]))
    .await;
    let listen = transports.local_addrs();
    let mut stream = TcpStream::connect(addr(&transports, Transport::Tcp))
        .await
        .expect("connect");
    stream.write_all(&sip("OPTIONS", "")).await.expect("write");
    let got = next(&mut rx).await;

    transports.shutdown();
    expect_closed(&mut stream).await;
    let err = transports.send(got.source, Bytes::from_static(b"x")).await;
    assert!(matches!(err, Err(TransportError::Shutdown)), "{err:?}");

    // Every task ends (so the sink closes) and the ports can be bound again.
    assert!(timeout(WAIT, rx.recv()).await.expect("tasks end").is_none());
    let (sink, _rx2) = mpsc::channel(8);
    let again = TransportConfig {
        listen,
        ..config(&[])
    };
    Transports::bind(again, sink)
        .await
        .expect("ports were released");
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_tasks() {
    let (transports, mut rx) = start(config(&[
        (Transport::Udp, "127.0.0.1:0"),
        (Transport::Tcp, "127.0.0.1:0"),
    ]))
    .await;
    let clone = transports.clone();
    drop(transports);
    assert!(
        timeout(QUIET, rx.recv()).await.is_err(),
        "a clone keeps it running"
    );
    drop(clone);
    assert!(timeout(WAIT, rx.recv()).await.expect("tasks end").is_none());
}

/// A burst larger than one system call's batch, to two UDP peers and one TCP peer, plus
/// one datagram no listener can send (IPv6 with only an IPv4 socket): everything
/// arrives, in order per peer, and only the impossible one is reported.
#[tokio::test]
async fn send_all_batches_udp_keeps_order_and_reports_failures() {
    let (transports, _rx) = start(config(&[
        (Transport::Udp, "127.0.0.1:0"),
        (Transport::Tcp, "127.0.0.1:0"),
    ]))
    .await;
    let udp_server = addr(&transports, Transport::Udp);
    let first = UdpSocket::bind("127.0.0.1:0").await.expect("first peer");
    let second = UdpSocket::bind("127.0.0.1:0").await.expect("second peer");
    let tcp_listener = TcpListener::bind("127.0.0.1:0").await.expect("tcp peer");
    let tcp_addr = tcp_listener.local_addr().expect("tcp addr");
    let udp = |s: &UdpSocket| Peer::new(Transport::Udp, s.local_addr().expect("addr"));
    let unreachable = Peer::new(Transport::Udp, "[::1]:5060".parse().expect("v6"));

    let mut messages = Vec::new();
    for i in 0..100 {
        let to = if i % 3 == 0 {
            udp(&second)
        } else {
            udp(&first)
        };
        messages.push((to, Bytes::from(format!("message {i}"))));
        if i == 50 {
            messages.push((tcp_peer(tcp_addr), Bytes::from(sip("OPTIONS", ""))));
            messages.push((unreachable, Bytes::from_static(b"nowhere")));
        }
    }
    let accept = tokio::spawn(async move {
        let (mut stream, _) = tcp_listener.accept().await.expect("accept");
        read_n(&mut stream, sip("OPTIONS", "").len()).await
    });
    let failed = transports.send_all(&mut messages).await;
    assert!(messages.is_empty(), "drained");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, unreachable);
    assert!(matches!(failed[0].1, TransportError::NoUdpSocket { .. }));

    for (socket, expected) in [
        (&first, (0..100).filter(|i| i % 3 != 0).collect::<Vec<_>>()),
        (&second, (0..100).filter(|i| i % 3 == 0).collect::<Vec<_>>()),
    ] {
        let mut buf = [0; 1024];
        for i in expected {
            let (n, from) = timeout(WAIT, socket.recv_from(&mut buf))
                .await
                .expect("datagram")
                .expect("recv");
            assert_eq!(&buf[..n], format!("message {i}").as_bytes());
            assert_eq!(from, udp_server);
        }
    }
    let over_tcp = timeout(WAIT, accept).await.expect("tcp").expect("task");
    assert_eq!(over_tcp, sip("OPTIONS", ""));
    let stats = transports.stats();
    assert_eq!((stats.messages_sent, stats.send_errors), (101, 1));
}

/// More datagrams than one receive batch, sent before the loop reads any: all are
/// delivered, in order, each with its sender.
#[tokio::test]
async fn a_burst_of_datagrams_is_delivered_whole_and_in_order() {
    let (transports, mut rx) = start(config(&[(Transport::Udp, "127.0.0.1:0")])).await;
    let server = addr(&transports, Transport::Udp);
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("client");
    for i in 0..50 {
        client
            .send_to(&sip("OPTIONS", &format!("{i:02}")), server)
            .await
            .expect("send");
    }
    for i in 0..50 {
        let got = next(&mut rx).await;
        assert_eq!(got.data, sip("OPTIONS", &format!("{i:02}")));
        assert_eq!(got.source.addr, client.local_addr().expect("addr"));
    }
    nothing_more(&mut rx).await;
}
