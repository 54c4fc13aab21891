//! switchboard: a keyboard-driven terminal softphone for call-centre operators.
//!
//! ```text
//!   headless stdin / keys ──► Command ──► driver (tokio) ──► sip::UserAgent (sans-IO)
//!                                            │                      │
//!                                            │  Transmit / timeout ◄┘ (drained after every input)
//!                                            ▼
//!                                     UDP/TCP sockets, timers
//!                                            │
//!   JSON line / screen  ◄──── Event ◄────────┘
//! ```
//!
//! - [`config`]: the TOML configuration and its error reporting.
//! - [`sip`]: the SIP user agent; no sockets, no clock, no threads.
//! - [`directory`]: contacts and the fuzzy search behind the number picker.
//! - [`driver`]: owns the sockets and the clock and runs the user agent.
//! - [`front`]: the front ends' [`front::Command`]s and [`front::Event`]s: the core's
//!   [`sip::Command`] and [`sip::Event`] plus what only the driver and the media engine handle
//!   (routes, trace, sound check, devices, quality, recording files, stats).
//! - [`fuzzing`]: entry points for the fuzz targets and the corpus replay test.
//! - [`headless`]: stdin words → [`front::Command`], [`front::Event`] → JSON lines.
//! - [`history`]: finished calls from the [`sip::Event`] stream, kept in a JSON Lines file.
//! - [`hooks`]: the operator's shell commands run on call events (screen pop).
//! - [`media`]: the voice path (devices, codecs, RTP/RTCP, SRTP, jitter buffer, recording) on
//!   its own thread; never imports [`sip`].
//! - [`route`]: outbound routes by Asterisk number pattern.
//! - [`sound`]: the microphone and headset vocabulary of commands that are not SIP.
//! - [`tui`]: the operator's full-screen interface over the same commands and events.
//!
//! # Where this differs from the shared architecture sketch, and why
//!
//! - **Lines live in the core**, not the driver: "a new call takes the selected
//!   line, a call arriving takes a free one, selecting a line holds the other"
//!   is protocol behaviour (it sends re-INVITEs), so it is tested on simulated
//!   time with everything else in `sip::ua_tests`.
//! - **rsip parses, we build.** `sip::msg` parses with rsip and keeps headers
//!   as canonical name/value pairs (compact forms expanded, lists split, the
//!   Request-URI kept as written); requests and responses are written by a
//!   small builder, because rsip's typed headers miss Refer-To, Replaces and
//!   Event and re-render URIs.
//! - **Timers belong to their machines.** Each transaction, the registration
//!   and each call keep their own deadlines and report the earliest; there is
//!   no central timer table to keep in step.
//! - **The core logs through `tracing`** (a facade, no I/O of its own), so a
//!   dropped malformed message or a failed registration leaves a trace.
#![forbid(unsafe_code)]

pub mod config;
pub mod directory;
pub mod driver;
pub mod front;
pub mod fuzzing;
pub mod headless;
pub mod history;
pub mod hooks;
pub mod media;
pub mod route;
pub mod sip;
pub mod sound;
pub mod tui;
