//! The media thread's sockets: each line's RTP and RTCP UDP sockets, read into
//! [`Pipeline::handle_datagram`] and written from [`Pipeline::poll_transmit`].
//!
//! The only network I/O of the media path; the pipeline itself never sees a
//! socket. It must not block (the sockets are non-blocking and registered with
//! the thread's `mio` poll) or allocate per packet (one receive buffer).
//!
//! The thread reads at its ticks, not as datagrams arrive (one wake-up per frame):
//! the poll says which sockets have something, and each datagram carries the kernel's
//! receive time (`SO_TIMESTAMPNS`), so the jitter buffer and RTCP still see when it came.

use std::io::IoSliceMut;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage,
};
use nix::sys::time::TimeSpec;

use super::api::LineSockets;
use super::pipeline::{Pipeline, Port, MAX_PACKET};

/// Datagrams read from one socket per call at most, so a flood cannot stall the clock
/// (a stream delivers one per packet; the rest wait for the next call).
const MAX_PACKETS_PER_READ: usize = 64;
/// Socket errors skipped in a row before giving up until the next call.
const MAX_SOCKET_ERRORS: usize = 4;

/// Every line's socket pair and the receive buffer.
pub(super) struct LineNet {
    lines: Vec<[mio::net::UdpSocket; 2]>,
    /// Per socket (line × 2 + port): the poll said it is readable and it has not been read
    /// dry since (the poll is edge-triggered: a socket left with datagrams is not reported
    /// again until the next one arrives).
    ready: Vec<bool>,
    recv: Vec<u8>,
    /// Room for one datagram's ancillary data: its receive time.
    control: Vec<u8>,
}

/// When a datagram arrived, on the media clock and on the wall clock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arrival {
    pub(super) at: Instant,
    pub(super) wall: SystemTime,
}

impl Arrival {
    /// The arrival of a datagram the kernel stamped `stamp` (wall clock), read at `now`
    /// (`wall` then), and not before `since`: the age is taken off the media clock, so a
    /// step of the wall clock between the two cannot move it outside `since..=now`.
    fn of(stamp: Option<SystemTime>, now: Instant, wall: SystemTime, since: Instant) -> Arrival {
        let Some(stamp) = stamp else {
            return Arrival { at: now, wall };
        };
        let age = wall.duration_since(stamp).unwrap_or(Duration::ZERO);
        let at = now.checked_sub(age).unwrap_or(since).max(since).min(now);
        Arrival {
            at,
            wall: wall.checked_sub(now - at).unwrap_or(wall),
        }
    }
}

impl LineNet {
    /// Takes the sockets (already non-blocking), one pair per line.
    pub(super) fn new(sockets: Vec<LineSockets>) -> LineNet {
        LineNet {
            ready: vec![false; 2 * sockets.len()],
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
            control: nix::cmsg_space!(TimeSpec),
        }
    }

    /// How many lines there are.
    pub(super) fn lines(&self) -> usize {
        self.lines.len()
    }

    /// Registers every socket with the media thread's poll (which the thread asks at each
    /// tick which sockets have datagrams) and asks the kernel to stamp each datagram's
    /// receive time.
    pub(super) fn register(&mut self, registry: &mio::Registry) -> std::io::Result<()> {
        for (index, pair) in self.lines.iter_mut().enumerate() {
            for (k, socket) in pair.iter_mut().enumerate() {
                setsockopt(&*socket, sockopt::ReceiveTimestampns, &true)?;
                registry.register(socket, mio::Token(2 * index + k), mio::Interest::READABLE)?;
            }
        }
        Ok(())
    }

    /// Notes the sockets a poll reported readable.
    pub(super) fn mark_ready(&mut self, events: &mio::Events) {
        for event in events {
            if let Some(ready) = self.ready.get_mut(event.token().0) {
                *ready = true;
            }
        }
    }

    /// Notes every socket as readable (the poll failed).
    pub(super) fn mark_all_ready(&mut self) {
        self.ready.fill(true);
    }

    /// Hands whatever waits on the sockets [`LineNet::mark_ready`] noted to the pipeline,
    /// each datagram with its arrival (not before `since`, the previous read).
    pub(super) fn receive_ready(
        &mut self,
        pipeline: &mut Pipeline,
        now: Instant,
        wallclock: SystemTime,
        since: Instant,
    ) {
        for (index, ready) in self.ready.iter_mut().enumerate() {
            if !*ready {
                continue;
            }
            let (line, k) = (index / 2, index % 2);
            let Some(socket) = self.lines.get(line).map(|pair| &pair[k]) else {
                continue;
            };
            let port = if k == 0 { Port::Rtp } else { Port::Rtcp };
            *ready = false;
            for n in 0..=MAX_PACKETS_PER_READ {
                if n == MAX_PACKETS_PER_READ {
                    *ready = true; // more may wait: read on at the next tick
                    break;
                }
                let Some((len, src, stamp)) =
                    receive_one(socket, &mut self.recv, &mut self.control)
                else {
                    break;
                };
                let arrival = Arrival::of(stamp, now, wallclock, since);
                pipeline.handle_datagram(
                    arrival.at,
                    arrival.wall,
                    line,
                    port,
                    src,
                    &self.recv[..len],
                );
            }
        }
    }

    /// Hands whatever waits on every line's sockets to the pipeline (after an idle spell,
    /// whatever the poll said), as arrived `now`.
    pub(super) fn receive_all(
        &mut self,
        pipeline: &mut Pipeline,
        now: Instant,
        wallclock: SystemTime,
    ) {
        self.mark_all_ready();
        self.receive_ready(pipeline, now, wallclock, now);
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

/// The next datagram waiting on `socket`: its length, source and the kernel's receive time
/// (when it gave one), skipping the errors an earlier ICMP message leaves behind (port
/// unreachable); `None` when nothing more is waiting.
fn receive_one(
    socket: &mio::net::UdpSocket,
    buf: &mut [u8],
    control: &mut [u8],
) -> Option<(usize, SocketAddr, Option<SystemTime>)> {
    for _ in 0..MAX_SOCKET_ERRORS {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut *control),
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(msg) => {
                let Some(src) = msg.address.as_ref().and_then(socket_addr) else {
                    continue; // not an IP datagram: cannot be ours
                };
                let stamp = msg.cmsgs().ok().and_then(|mut cmsgs| {
                    cmsgs.find_map(|c| match c {
                        ControlMessageOwned::ScmTimestampns(ts) => wall_time(ts),
                        _ => None,
                    })
                });
                // A dual-stack socket reports an IPv4 peer as IPv4-mapped: give the IPv4
                // address the call's SDP names, so symmetric RTP sees the same peer.
                let src = SocketAddr::new(src.ip().to_canonical(), src.port());
                return Some((msg.bytes, src, stamp));
            }
            Err(nix::errno::Errno::EAGAIN) => return None,
            Err(_) => {}
        }
    }
    None
}

/// An IPv4 or IPv6 source address.
fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    match addr.family()? {
        nix::sys::socket::AddressFamily::Inet => addr
            .as_sockaddr_in()
            .map(|a| SocketAddr::V4(SocketAddrV4::from(*a))),
        nix::sys::socket::AddressFamily::Inet6 => addr
            .as_sockaddr_in6()
            .map(|a| SocketAddr::V6(SocketAddrV6::from(*a))),
        _ => None,
    }
}

/// A kernel time stamp (`CLOCK_REALTIME`) as wall-clock time.
fn wall_time(ts: TimeSpec) -> Option<SystemTime> {
    let secs = u64::try_from(ts.tv_sec()).ok()?;
    let nanos = u32::try_from(ts.tv_nsec()).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clocks() -> (Instant, SystemTime) {
        #[allow(clippy::disallowed_methods)] // the tests' one clock reading: their epoch
        let now = Instant::now() + Duration::from_secs(10);
        (now, UNIX_EPOCH + Duration::from_secs(1_800_000_000))
    }

    #[test]
    fn arrival_is_the_kernel_stamp_on_the_media_clock() {
        let (now, wall) = clocks();
        let since = now - Duration::from_millis(20);
        let a = Arrival::of(Some(wall - Duration::from_millis(7)), now, wall, since);
        assert_eq!(a.at, now - Duration::from_millis(7));
        assert_eq!(a.wall, wall - Duration::from_millis(7));
    }

    #[test]
    fn arrival_stays_between_the_previous_read_and_now() {
        let (now, wall) = clocks();
        let since = now - Duration::from_millis(20);
        // The wall clock stepped: a stamp from "the future" or from long ago.
        let future = Arrival::of(Some(wall + Duration::from_secs(3)), now, wall, since);
        assert_eq!((future.at, future.wall), (now, wall));
        let old = Arrival::of(Some(wall - Duration::from_secs(3600)), now, wall, since);
        assert_eq!(old.at, since);
        assert_eq!(old.wall, wall - Duration::from_millis(20));
        // No stamp: read now.
        let none = Arrival::of(None, now, wall, since);
        assert_eq!((none.at, none.wall), (now, wall));
    }
}
