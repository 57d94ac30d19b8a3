//! Several UDP datagrams per system call: `sendmmsg(2)` and `recvmmsg(2)` on Linux.
//!
//! Under load the core consumes and produces messages in bursts. One system call per
//! burst instead of one per datagram saves the kernel entry and exit and, on the sending
//! side, wakes the receiving process once per burst instead of once per datagram (on
//! loopback that wake-up runs inside our `sendto`, and was the largest single cost of the
//! signalling thread). Elsewhere the same functions fall back to one datagram per call.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use sihai_sip::net::Peer;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per system call, each way.
pub(crate) const BATCH: usize = 32;

/// Larger than any IPv4 or IPv6 (non-jumbogram) UDP payload, so nothing is truncated.
pub(crate) const MAX_DATAGRAM: usize = 65535;

/// Receive buffers for one socket: one full-size datagram buffer per batch slot.
/// Allocated once per socket; pages the kernel never writes to are never touched.
pub(crate) struct RecvBuffers {
    slots: Vec<Box<[u8]>>,
    received: Vec<(usize, SocketAddr)>,
}

impl RecvBuffers {
    pub(crate) fn new() -> Self {
        RecvBuffers {
            slots: (0..BATCH)
                .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
                .collect(),
            received: Vec::with_capacity(BATCH),
        }
    }

    /// The datagrams of the last successful [`RecvBuffers::receive`]: payload and sender.
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.received
            .iter()
            .zip(&self.slots)
            .map(|(&(len, from), slot)| (&slot[..len], from))
    }

    /// Reads whatever is queued on `socket`, up to [`BATCH`] datagrams, without blocking
    /// (`WouldBlock` when nothing is, which also clears tokio's readiness so that
    /// `readable().await` waits again). Replaces what `datagrams` returns.
    pub(crate) fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received.clear();
        socket.try_io(Interest::READABLE, || {
            imp::receive(socket, &mut self.slots, &mut self.received)
        })?;
        Ok(self.received.len())
    }
}

/// Sends the datagrams in order from `socket` without blocking. Returns how many left:
/// fewer than all when the socket would block or a datagram failed; the error of the
/// first one is returned if none left.
pub(crate) fn send(socket: &UdpSocket, datagrams: &[(Peer, Bytes)]) -> io::Result<usize> {
    socket.try_io(Interest::WRITABLE, || imp::send(socket, datagrams))
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::mem;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use bytes::Bytes;
    use sihai_sip::net::Peer;
    use tokio::net::UdpSocket;

    use super::BATCH;

    pub(super) fn send(socket: &UdpSocket, datagrams: &[(Peer, Bytes)]) -> io::Result<usize> {
        let n = datagrams.len().min(BATCH);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: all-zero is a valid value of these plain C structs (null pointers,
        // zero lengths); every field the kernel reads is set below.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { mem::zeroed() };
        let mut iovecs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        for (i, (to, payload)) in datagrams[..n].iter().enumerate() {
            let name_len = write_sockaddr(&to.addr, &mut names[i]);
            iovecs[i] = libc::iovec {
                iov_base: payload.as_ptr().cast_mut().cast(),
                iov_len: payload.len(),
            };
            let header = &mut headers[i].msg_hdr;
            header.msg_name = (&raw mut names[i]).cast();
            header.msg_namelen = name_len;
            header.msg_iov = &raw mut iovecs[i];
            header.msg_iovlen = 1;
        }
        // SAFETY: `headers[..n]` point into `names` and `iovecs`, which outlive the call
        // and are not moved; the payloads are borrowed from `datagrams` for the call; the
        // kernel only reads them. `n <= BATCH` fits in a c_uint.
        let sent = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(sent as usize)
        }
    }

    pub(super) fn receive(
        socket: &UdpSocket,
        slots: &mut [Box<[u8]>],
        received: &mut Vec<(usize, SocketAddr)>,
    ) -> io::Result<()> {
        let n = slots.len().min(BATCH);
        // SAFETY: as in `send`.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { mem::zeroed() };
        let mut iovecs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        for (i, slot) in slots[..n].iter_mut().enumerate() {
            iovecs[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot.len(),
            };
            let header = &mut headers[i].msg_hdr;
            header.msg_name = (&raw mut names[i]).cast();
            header.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &raw mut iovecs[i];
            header.msg_iovlen = 1;
        }
        // SAFETY: each header points at its own slot (exclusively borrowed for the call),
        // its own name storage and iovec, none of which move during the call.
        let got = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        for i in 0..got as usize {
            let header = &headers[i];
            // A datagram larger than a slot cannot happen with 64 KiB slots; should one
            // ever be cut, it is dropped rather than parsed short.
            if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                continue;
            }
            if let Some(from) = read_sockaddr(&names[i]) {
                received.push((header.msg_len as usize, from));
            }
        }
        // `datagrams()` pairs `received[k]` with `slots[k]`: compact the slots the same
        // way when something was skipped (rare: only after a truncation).
        if received.len() != got as usize {
            compact(slots, &headers[..got as usize], &names[..got as usize]);
        }
        Ok(())
    }

    /// Moves the kept datagrams to the front of `slots`, in order (see `receive`).
    fn compact(
        slots: &mut [Box<[u8]>],
        headers: &[libc::mmsghdr],
        names: &[libc::sockaddr_storage],
    ) {
        let mut kept = 0;
        for (i, (header, name)) in headers.iter().zip(names).enumerate() {
            if header.msg_hdr.msg_flags & libc::MSG_TRUNC == 0 && read_sockaddr(name).is_some() {
                slots.swap(kept, i);
                kept += 1;
            }
        }
    }

    fn write_sockaddr(addr: &SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(v4) => {
                let raw = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { (&raw mut *storage).cast::<libc::sockaddr_in>().write(raw) };
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(v6) => {
                let raw = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { (&raw mut *storage).cast::<libc::sockaddr_in6>().write(raw) };
                mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }

    fn read_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the family says the kernel wrote a sockaddr_in here.
                let raw = unsafe { &*(&raw const *storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(raw.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(raw.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the kernel wrote a sockaddr_in6 here.
                let raw = unsafe { &*(&raw const *storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(raw.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(raw.sin6_port),
                    raw.sin6_flowinfo,
                    raw.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn socket_addresses_survive_the_round_trip_through_c() {
            for addr in [
                "127.0.0.1:5060",
                "10.1.2.3:65535",
                "[::1]:5061",
                "[fe80::1%3]:5060",
            ] {
                let addr: SocketAddr = addr.parse().expect("a test address");
                // SAFETY: all-zero is a valid sockaddr_storage.
                let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
                write_sockaddr(&addr, &mut storage);
                assert_eq!(read_sockaddr(&storage), Some(addr));
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::net::SocketAddr;

    use bytes::Bytes;
    use sihai_sip::net::Peer;
    use tokio::net::UdpSocket;

    pub(super) fn send(socket: &UdpSocket, datagrams: &[(Peer, Bytes)]) -> io::Result<usize> {
        let Some((to, payload)) = datagrams.first() else {
            return Ok(0);
        };
        socket.try_send_to(payload, to.addr).map(|_| 1)
    }

    pub(super) fn receive(
        socket: &UdpSocket,
        slots: &mut [Box<[u8]>],
        received: &mut Vec<(usize, SocketAddr)>,
    ) -> io::Result<()> {
        let (len, from) = socket.try_recv_from(&mut slots[0])?;
        received.push((len, from));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").await.expect("bind a");
        let b = UdpSocket::bind("127.0.0.1:0").await.expect("bind b");
        (a, b)
    }

    #[tokio::test]
    async fn a_burst_goes_out_and_comes_back_in_order_with_its_sender() {
        let (a, b) = pair().await;
        let to = b.local_addr().expect("b's address");
        let burst: Vec<(Peer, Bytes)> = (0..BATCH + 5)
            .map(|i| {
                let to = Peer::new(sihai_sip::net::Transport::Udp, to);
                (to, Bytes::from(format!("message {i}")))
            })
            .collect();
        let mut sent = 0;
        while sent < burst.len() {
            a.writable().await.expect("writable");
            match send(&a, &burst[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("send: {e}"),
            }
        }
        let mut buffers = RecvBuffers::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < burst.len() && std::time::Instant::now() < deadline {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(100), b.readable()).await;
            match buffers.receive(&b) {
                Ok(_) => got.extend(
                    buffers
                        .datagrams()
                        .map(|(data, from)| (String::from_utf8_lossy(data).into_owned(), from)),
                ),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("receive: {e}"),
            }
        }
        let expected: Vec<(String, SocketAddr)> = (0..BATCH + 5)
            .map(|i| (format!("message {i}"), a.local_addr().expect("a's address")))
            .collect();
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn nothing_queued_would_block() {
        let (_a, b) = pair().await;
        let mut buffers = RecvBuffers::new();
        let error = buffers.receive(&b).expect_err("nothing was sent");
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }
}
