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
//! - [`driver`]: owns the sockets and the clock and runs the user agent.
//! - [`headless`]: stdin words → [`sip::Command`], [`sip::Event`] → JSON lines.
#![forbid(unsafe_code)]

pub mod config;
pub mod driver;
pub mod headless;
pub mod sip;
