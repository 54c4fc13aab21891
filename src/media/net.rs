//! The media thread's sockets: each line's RTP and RTCP UDP sockets, read into
//! [`Pipeline::handle_datagram`] and written from [`Pipeline::poll_transmit`].
//!
//! The only network I/O of the media path; the pipeline itself never sees a
//! socket. It must not block (the sockets are non-blocking and registered with
//! the thread's `mio` poll) or allocate per packet (one receive buffer).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::api::LineSockets;
use super::pipeline::{Pipeline, Port, MAX_PACKET};

/// Datagrams read from one socket per call at most, so a flood cannot stall the clock
/// (a 20 ms stream delivers one; the rest wait for the next call).
const MAX_PACKETS_PER_READ: usize = 64;
/// Socket errors skipped in a row before giving up until the next call.
const MAX_SOCKET_ERRORS: usize = 4;

/// Every line's socket pair and the receive buffer.
pub(super) struct LineNet {
    lines: Vec<[mio::net::UdpSocket; 2]>,
    recv: Vec<u8>,
}

impl LineNet {
    /// Takes the sockets (already non-blocking), one pair per line.
    pub(super) fn new(sockets: Vec<LineSockets>) -> LineNet {
        LineNet {
            lines: sockets
                .into_iter()
                .map(|s| {
                    [
                        mio::net::UdpSocket::from_std(s.rtp),
                        mio::net::UdpSocket::from_std(s.rtcp),
                    ]
                })
                .collect(),
            recv: vec![0; MAX_PACKET],
        }
    }

    /// How many lines there are.
    pub(super) fn lines(&self) -> usize {
        self.lines.len()
    }

    /// Registers every socket with the media thread's poll, so packets are read (and their
    /// arrival timed) as they come rather than at the next tick.
    pub(super) fn register(&mut self, registry: &mio::Registry) -> std::io::Result<()> {
        for (index, pair) in self.lines.iter_mut().enumerate() {
            for (k, socket) in pair.iter_mut().enumerate() {
                registry.register(socket, mio::Token(2 * index + k), mio::Interest::READABLE)?;
            }
        }
        Ok(())
    }

    /// Hands whatever waits on every line's sockets to the pipeline.
    pub(super) fn receive_all(
        &mut self,
        pipeline: &mut Pipeline,
        now: Instant,
        wallclock: SystemTime,
    ) {
        for (line, pair) in self.lines.iter().enumerate() {
            for (socket, port) in pair.iter().zip([Port::Rtp, Port::Rtcp]) {
                for _ in 0..MAX_PACKETS_PER_READ {
                    let Some((len, src)) = receive_one(socket, &mut self.recv) else {
                        break;
                    };
                    pipeline.handle_datagram(now, wallclock, line, port, src, &self.recv[..len]);
                }
            }
        }
    }

    /// Sends everything the pipeline has queued (a send error loses that packet only).
    pub(super) fn flush(&mut self, pipeline: &mut Pipeline) {
        while let Some(t) = pipeline.poll_transmit() {
            if let Some(pair) = self.lines.get(t.line) {
                let socket = match t.port {
                    Port::Rtp => &pair[0],
                    Port::Rtcp => &pair[1],
                };
                let _ = socket.send_to(t.bytes, t.to);
            }
        }
    }
}

/// The next datagram waiting on `socket`, skipping the errors an earlier ICMP message leaves
/// behind (port unreachable); `None` when nothing more is waiting.
fn receive_one(socket: &mio::net::UdpSocket, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    for _ in 0..MAX_SOCKET_ERRORS {
        match socket.recv_from(buf) {
            // A dual-stack socket reports an IPv4 peer as IPv4-mapped: give the IPv4 address
            // the call's SDP names, so symmetric RTP sees the same peer.
            Ok((len, src)) => {
                return Some((len, SocketAddr::new(src.ip().to_canonical(), src.port())))
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(_) => {}
        }
    }
    None
}
