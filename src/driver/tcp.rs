//! SIP over TCP and TLS: one task per connection, messages framed by Content-Length.
//!
//! [`TcpConnections`] is owned by the run loop; one instance serves TCP, another TLS (its
//! outgoing connections run the handshake of [`TlsClient`] first; TLS connections are never
//! accepted). Both share the framing and the connection task, written for any byte stream. It keeps one connection per peer address,
//! reused for every message to that peer whichever side opened it: connections accepted on the
//! listener are registered under the peer's address (so responses go back on them), and a
//! [`Transmit`](crate::sip::Transmit) to a peer with no connection opens one. Each connection
//! task reads the stream, cuts it into whole messages with a [`Framer`] and hands them to the
//! run loop as [`TcpInput`]s through one bounded channel; it writes what the run loop queues
//! for it. Leading CRLFs (RFC 5626 keep-alives) are skipped. Malformed framing, a message over
//! [`MAX_MESSAGE`] bytes, EOF or an I/O error closes the connection with a log line.
//!
//! Keep-alive probing (RFC 5626 §4.4.1): when the core sends a CRLF ping (`"\r\n\r\n"`) on a
//! connection, the far end must answer something (its `"\r\n"` pong, or any bytes) within
//! [`PONG_TIMEOUT`]; otherwise the connection is taken for dead and closed, and the run loop
//! hears [`TcpInput::Closed`] like for any other end (the core then registers again).
//!
//! This module must not parse SIP beyond the framing headers; the only clock it reads is
//! tokio's, for the pong timeout.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::tls::TlsClient;

/// The largest SIP message accepted or framed, headers and body together (the core's contract:
/// nothing over 64 KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// At most this many connections are open at once; more are refused.
const MAX_CONNECTIONS: usize = 128;
/// Messages waiting to be written on one connection; more are dropped (the core retransmits
/// or times out).
const OUTGOING_QUEUE: usize = 32;
/// Messages from all connections waiting for the run loop.
const INPUT_QUEUE: usize = 256;
/// How long an outgoing connection may take to be established.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer size of one connection.
const READ_CHUNK: usize = 16 * 1024;
/// How long the far end has to answer a keep-alive ping (RFC 5626 §4.4.1: 10 s).
pub const PONG_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive ping as the core sends it.
const PING: &[u8] = b"\r\n\r\n";

/// Whether a connection answered its last keep-alive ping in time.
#[derive(Debug, Default)]
pub struct PongWatch {
    deadline: Option<Instant>,
}

impl PongWatch {
    /// `bytes` were written at `now`: a ping starts the wait for a pong (unless one is
    /// already awaited).
    pub fn on_sent(&mut self, now: Instant, bytes: &[u8]) {
        if bytes == PING && self.deadline.is_none() {
            self.deadline = Some(now + PONG_TIMEOUT);
        }
    }

    /// Bytes arrived: the far end is alive.
    pub fn on_received(&mut self) {
        self.deadline = None;
    }

    /// When the connection is to be declared dead, if a pong is awaited.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// What a connection task tells the run loop.
#[derive(Debug)]
pub enum TcpInput {
    /// One whole SIP message arrived from `peer`.
    Message {
        /// The remote address of the connection.
        peer: SocketAddr,
        /// The message.
        bytes: Vec<u8>,
    },
    /// The connection `id` to `peer` is gone.
    Closed {
        /// The remote address of the connection.
        peer: SocketAddr,
        /// Which connection (a newer one to the same peer may exist).
        id: u64,
        /// Why it could not be set up, when that is worth telling the user (a TLS connection
        /// whose handshake failed, or that could not be opened at all).
        error: Option<String>,
    },
}

/// Why a byte stream cannot be cut into SIP messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    /// The message (or its header block) is larger than [`MAX_MESSAGE`].
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    /// The header block has no Content-Length, which a stream needs (RFC 3261 §18.3).
    #[error("no Content-Length header")]
    NoContentLength,
    /// Content-Length is not a number, or appears twice with different values.
    #[error("bad Content-Length: {0}")]
    BadContentLength(String),
}

/// Cuts a byte stream into whole SIP messages by their Content-Length (RFC 3261 §18.3).
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole message, `None` when more bytes are needed. After an error the stream
    /// cannot be resynchronised and must be closed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        let skip = self
            .buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        self.buf.drain(..skip);
        let Some(head_end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() > MAX_MESSAGE {
                return Err(FramingError::TooLarge);
            }
            return Ok(None);
        };
        let body_len = content_length(&self.buf[..head_end])?;
        let total = head_end + 4 + body_len;
        if total > MAX_MESSAGE {
            return Err(FramingError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }
}

/// The Content-Length (or compact `l`) value of a header block.
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    for line in head.split(|b| *b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = String::from_utf8_lossy(line[colon + 1..].trim_ascii()).into_owned();
        let len: usize = value
            .parse()
            .map_err(|_| FramingError::BadContentLength(value.clone()))?;
        if found.is_some_and(|f| f != len) {
            return Err(FramingError::BadContentLength(format!(
                "{} and {len} both given",
                found.unwrap_or_default()
            )));
        }
        found = Some(len);
    }
    found.ok_or(FramingError::NoContentLength)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The run loop's handle on one connection task.
#[derive(Debug)]
struct Connection {
    id: u64,
    outgoing: mpsc::Sender<Vec<u8>>,
}

/// The open TCP (or TLS) connections, by peer address. Owned by the run loop.
#[derive(Debug)]
pub struct TcpConnections {
    conns: HashMap<SocketAddr, Connection>,
    next_id: u64,
    inputs: mpsc::Sender<TcpInput>,
    local_ip: IpAddr,
    tls: Option<TlsClient>,
}

impl TcpConnections {
    /// No connections yet; outgoing ones are bound to `local_ip` unless it is unspecified.
    /// The receiver yields what the connection tasks read.
    pub fn new(local_ip: IpAddr) -> (TcpConnections, mpsc::Receiver<TcpInput>) {
        TcpConnections::with_tls(local_ip, None)
    }

    /// Like [`TcpConnections::new`]; with `tls`, every outgoing connection is a TLS one
    /// checked by it.
    pub fn with_tls(
        local_ip: IpAddr,
        tls: Option<TlsClient>,
    ) -> (TcpConnections, mpsc::Receiver<TcpInput>) {
        let (inputs, rx) = mpsc::channel(INPUT_QUEUE);
        let conns = TcpConnections {
            conns: HashMap::new(),
            next_id: 0,
            inputs,
            local_ip,
            tls,
        };
        (conns, rx)
    }

    /// TLS: `peer`'s certificate must carry `host` (see [`TlsClient::add_name`]).
    pub fn add_server_name(&mut self, peer: SocketAddr, host: &str) {
        if let Some(tls) = self.tls.as_mut() {
            tls.add_name(peer, host);
        }
    }

    /// `TCP` or `TLS`, for log lines.
    fn label(&self) -> &'static str {
        if self.tls.is_some() {
            "TLS"
        } else {
            "TCP"
        }
    }

    /// Takes over a connection accepted on the listener. Must be called inside the runtime.
    pub fn accept(&mut self, stream: TcpStream, peer: SocketAddr) {
        // On a dual-stack listener an IPv4 peer is seen as an IPv4-mapped address.
        let peer = crate::sip::msg::unmapped(peer);
        if self.tls.is_some() {
            tracing::warn!(%peer, "incoming TLS connections are not served; closing");
            return;
        }
        if self.conns.len() >= MAX_CONNECTIONS {
            tracing::warn!(%peer, "too many SIP TCP connections; refusing a new one");
            return;
        }
        tracing::debug!(%peer, "SIP TCP connection accepted");
        self.spawn(peer, Some(stream));
    }

    /// Sends one message to `peer`, on its connection or a new one. Never blocks; a message
    /// that cannot be queued is dropped with a log line. Must be called inside the runtime.
    pub fn send(&mut self, peer: SocketAddr, payload: Vec<u8>) {
        let label = self.label();
        if payload.len() > MAX_MESSAGE {
            tracing::warn!(%peer, len = payload.len(), "not sending an oversized SIP message");
            return;
        }
        let payload = match self.conns.get(&peer) {
            Some(conn) => match conn.outgoing.try_send(payload) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(%peer, label, "SIP stream send queue full; message dropped");
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(payload)) => {
                    self.conns.remove(&peer);
                    payload
                }
            },
            None => payload,
        };
        if self.conns.len() >= MAX_CONNECTIONS {
            tracing::warn!(%peer, label, "too many SIP stream connections; message dropped");
            return;
        }
        let outgoing = self.spawn(peer, None);
        // A fresh queue has room for one message.
        if outgoing.try_send(payload).is_err() {
            tracing::warn!(%peer, label, "SIP stream connection ended at once; message dropped");
        }
    }

    /// Forgets connection `id` to `peer` after its task said it is closed. True when it was
    /// the peer's current connection (not one already replaced by a newer one).
    pub fn closed(&mut self, peer: SocketAddr, id: u64) -> bool {
        let current = self.conns.get(&peer).is_some_and(|c| c.id == id);
        if current {
            self.conns.remove(&peer);
        }
        current
    }

    fn spawn(&mut self, peer: SocketAddr, stream: Option<TcpStream>) -> mpsc::Sender<Vec<u8>> {
        let id = self.next_id;
        self.next_id += 1;
        let (outgoing, rx) = mpsc::channel(OUTGOING_QUEUE);
        self.conns.insert(
            peer,
            Connection {
                id,
                outgoing: outgoing.clone(),
            },
        );
        let inputs = self.inputs.clone();
        let local_ip = self.local_ip;
        let tls = self.tls.clone();
        tokio::spawn(async move {
            let error = match stream {
                Some(stream) => {
                    serve(peer, stream, rx, &inputs).await;
                    None
                }
                None => open_and_serve(local_ip, peer, tls.as_ref(), rx, &inputs).await,
            };
            // The run loop may be gone already; nothing to tell then.
            let _ = inputs.send(TcpInput::Closed { peer, id, error }).await;
        });
        outgoing
    }
}

/// Opens a connection to `peer` (a TLS one with `tls`) and serves it until it ends. Returns
/// why a TLS connection could not be set up.
async fn open_and_serve(
    local_ip: IpAddr,
    peer: SocketAddr,
    tls: Option<&TlsClient>,
    rx: mpsc::Receiver<Vec<u8>>,
    inputs: &mpsc::Sender<TcpInput>,
) -> Option<String> {
    let tcp = match connect(local_ip, peer).await {
        Ok(tcp) => tcp,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot open a SIP stream connection");
            return tls.map(|_| format!("TLS: cannot connect to {peer}: {e}"));
        }
    };
    let Some(tls) = tls else {
        serve(peer, tcp, rx, inputs).await;
        return None;
    };
    match tls.handshake(tcp, peer).await {
        Ok(stream) => {
            tracing::debug!(%peer, "SIP TLS connection established");
            serve(peer, stream, rx, inputs).await;
            None
        }
        Err(reason) => {
            tracing::warn!(%peer, %reason, "SIP TLS handshake failed; nothing is sent in clear text");
            Some(reason)
        }
    }
}

/// Opens a connection to `peer` from `local_ip` (any port), within [`CONNECT_TIMEOUT`].
async fn connect(local_ip: IpAddr, peer: SocketAddr) -> io::Result<TcpStream> {
    let socket = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if !local_ip.is_unspecified() && local_ip.is_ipv4() == peer.is_ipv4() {
        socket.bind(SocketAddr::new(local_ip, 0))?;
    }
    tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(peer))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// Reads and writes one connection (plain TCP or TLS) until it ends.
async fn serve<S: AsyncRead + AsyncWrite>(
    peer: SocketAddr,
    stream: S,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    inputs: &mpsc::Sender<TcpInput>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut framer = Framer::default();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut pong = PongWatch::default();
    loop {
        let pong_deadline = pong.deadline();
        tokio::select! {
            () = wait_until(pong_deadline) => {
                tracing::warn!(%peer, timeout_s = PONG_TIMEOUT.as_secs(), "no answer to a SIP keep-alive; closing the connection");
                return;
            }
            read = reader.read(&mut chunk) => {
                let n = match read {
                    Ok(0) => {
                        tracing::debug!(%peer, "SIP TCP connection closed by the peer");
                        return;
                    }
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "SIP TCP read failed; closing");
                        return;
                    }
                };
                pong.on_received();
                framer.push(&chunk[..n]);
                loop {
                    match framer.next_message() {
                        Ok(Some(bytes)) => {
                            if inputs.send(TcpInput::Message { peer, bytes }).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "malformed SIP TCP framing; closing the connection");
                            return;
                        }
                    }
                }
            }
            message = outgoing.recv() => {
                let Some(bytes) = message else { return };
                if let Err(e) = writer.write_all(&bytes).await {
                    tracing::warn!(%peer, error = %e, "SIP stream write failed; closing");
                    return;
                }
                if let Err(e) = writer.flush().await {
                    tracing::warn!(%peer, error = %e, "SIP stream write failed; closing");
                    return;
                }
                pong.on_sent(Instant::now(), &bytes);
            }
        }
    }
}

/// Sleeps until `deadline`; forever without one.
async fn wait_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_waits_for_a_pong_and_any_bytes_answer_it() {
        let t0 = Instant::now();
        let mut watch = PongWatch::default();
        watch.on_sent(t0, b"INVITE sip:x SIP/2.0\r\n\r\n");
        assert_eq!(watch.deadline(), None, "only a ping awaits an answer");
        watch.on_sent(t0, PING);
        assert_eq!(watch.deadline(), Some(t0 + PONG_TIMEOUT));
        // A second ping does not push the deadline back.
        watch.on_sent(t0 + Duration::from_secs(5), PING);
        assert_eq!(watch.deadline(), Some(t0 + PONG_TIMEOUT));
        watch.on_received();
        assert_eq!(watch.deadline(), None);
    }

    #[test]
    fn a_silent_peer_after_a_ping_closes_the_connection() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let server_addr = listener.local_addr().expect("addr");
            let (mut conns, mut inputs) = TcpConnections::new("127.0.0.1".parse().unwrap());
            conns.send(server_addr, PING.to_vec());
            // The far end accepts and reads, but never answers.
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut got = [0u8; 4];
            stream.read_exact(&mut got).await.expect("read the ping");
            assert_eq!(got, PING);
            let closed = tokio::time::timeout(PONG_TIMEOUT + Duration::from_secs(5), inputs.recv())
                .await
                .expect("closed within the pong timeout");
            match closed {
                Some(TcpInput::Closed { peer, id, .. }) => {
                    assert_eq!(peer, server_addr);
                    assert!(conns.closed(peer, id), "the current connection");
                }
                other => panic!("expected closed, got {other:?}"),
            }
        });
    }

    const INVITE: &[u8] =
        b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP x\r\nContent-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn frames_split_and_joined_messages() {
        let mut framer = Framer::default();
        let stream = [b"\r\n\r\n".as_slice(), INVITE, b"\r\n", INVITE].concat();
        for (i, byte) in stream.iter().enumerate() {
            framer.push(std::slice::from_ref(byte));
            let got = framer.next_message().expect("well framed");
            let complete = i + 1 == 4 + INVITE.len() || i + 1 == stream.len();
            assert_eq!(got.is_some(), complete, "after byte {i}");
            if let Some(message) = got {
                assert_eq!(message, INVITE);
            }
        }
        framer.push(&[INVITE, INVITE].concat());
        assert_eq!(framer.next_message(), Ok(Some(INVITE.to_vec())));
        assert_eq!(framer.next_message(), Ok(Some(INVITE.to_vec())));
        assert_eq!(framer.next_message(), Ok(None));
    }

    #[test]
    fn compact_and_case_insensitive_content_length() {
        let mut framer = Framer::default();
        framer.push(
            b"SIP/2.0 200 OK\r\nl:  0 \r\n\r\nOPTIONS x SIP/2.0\r\ncontent-LENGTH: 2\r\n\r\nab",
        );
        assert_eq!(
            framer.next_message(),
            Ok(Some(b"SIP/2.0 200 OK\r\nl:  0 \r\n\r\n".to_vec()))
        );
        assert!(framer
            .next_message()
            .is_ok_and(|m| m.is_some_and(|m| m.ends_with(b"ab"))));
    }

    #[test]
    fn bad_framing_is_an_error() {
        let cases: [(&[u8], FramingError); 4] = [
            (
                b"BYE x SIP/2.0\r\nVia: y\r\n\r\n",
                FramingError::NoContentLength,
            ),
            (
                b"BYE x SIP/2.0\r\nContent-Length: -1\r\n\r\n",
                FramingError::BadContentLength("-1".into()),
            ),
            (
                b"BYE x SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n",
                FramingError::BadContentLength("1 and 2 both given".into()),
            ),
            (
                b"BYE x SIP/2.0\r\nContent-Length: 70000\r\n\r\n",
                FramingError::TooLarge,
            ),
        ];
        for (bytes, expected) in cases {
            let mut framer = Framer::default();
            framer.push(bytes);
            assert_eq!(framer.next_message(), Err(expected));
        }
        let mut framer = Framer::default();
        framer.push(&vec![b'a'; MAX_MESSAGE + 1]);
        assert_eq!(framer.next_message(), Err(FramingError::TooLarge));
    }

    #[test]
    fn messages_travel_both_ways_on_one_connection() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let server_addr = listener.local_addr().expect("addr");
            let (mut conns, mut inputs) = TcpConnections::new("127.0.0.1".parse().unwrap());
            conns.send(server_addr, INVITE.to_vec());
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut got = vec![0u8; INVITE.len()];
            stream.read_exact(&mut got).await.expect("read");
            assert_eq!(got, INVITE);
            // The answer comes back on the same connection, as one message.
            stream.write_all(b"\r\n\r\n").await.expect("keep-alive");
            stream.write_all(INVITE).await.expect("write");
            match inputs.recv().await {
                Some(TcpInput::Message { peer, bytes }) => {
                    assert_eq!(peer, server_addr);
                    assert_eq!(bytes, INVITE);
                }
                other => panic!("expected a message, got {other:?}"),
            }
            // Garbage framing closes the connection, and the run loop is told.
            stream
                .write_all(b"X y SIP/2.0\r\n\r\n")
                .await
                .expect("write");
            match inputs.recv().await {
                Some(TcpInput::Closed { peer, id, .. }) => {
                    assert_eq!(peer, server_addr);
                    conns.closed(peer, id);
                    assert!(conns.conns.is_empty());
                }
                other => panic!("expected closed, got {other:?}"),
            }
        });
    }
}
